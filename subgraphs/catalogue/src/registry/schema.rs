//! The registries' share of the roots (work in progress).
