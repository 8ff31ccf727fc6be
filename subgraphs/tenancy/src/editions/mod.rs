//! Editions: versioned bundles of a quota template and a feature set that tenants subscribe to.
//! Draft → Published → Retired; a published edition is immutable (a change is a new version).

pub mod schema;
pub mod store;
