//! Agent and skill registries (work in progress).

pub mod schema;
