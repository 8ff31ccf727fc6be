//! Agent and skill registries (work in progress).

pub mod schema;

use kernel::db::Tx;
use kernel::{Result, TenantId};

/// Of the agent and skill keys a blueprint names, those with no published version the tenant can use
/// (its own or the platform's): `(agents, skills)`.
pub async fn missing_references(
    _tx: &mut Tx,
    _tenant: &TenantId,
    agents: &[String],
    skills: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    // Until the registries land nothing is published, so every reference is missing.
    Ok((agents.to_vec(), skills.to_vec()))
}
