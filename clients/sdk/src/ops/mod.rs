//! The typed operations, one module per domain, each a method on [`crate::Client`]; each module's docs
//! show its tasks.

pub mod catalogue;
pub mod governance;
pub mod identity;
pub mod lineage;
pub mod tenancy;
pub mod workflow;
