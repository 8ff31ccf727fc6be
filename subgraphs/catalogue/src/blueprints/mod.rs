//! Blueprints (work in progress: versions, validation, context maps).

pub mod projection;
pub mod retention;
pub mod schema;

use kernel::{Result, TenantId, Work};
use uuid::Uuid;

/// The `ValidateBlueprint` command.
pub async fn validate_command(_work: &mut Work, _tenant: &TenantId, _blueprint: Uuid, _version: i32) -> Result<()> {
    Err(kernel::Error::not_found("blueprints are not there yet"))
}
