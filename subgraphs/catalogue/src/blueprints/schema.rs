//! Blueprints' share of the roots (work in progress).
