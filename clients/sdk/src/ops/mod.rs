//! The typed operations, one module per domain, each a method on [`crate::Client`].

pub mod catalogue;
pub mod identity;
pub mod lineage;
pub mod tenancy;
