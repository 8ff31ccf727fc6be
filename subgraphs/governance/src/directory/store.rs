//! The directory's SQL: the latest role binding per principal and role (the newest `occurredAt` wins).

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

/// Records that `principal` holds (`bound`) or no longer holds `role` as of `at`, unless a newer fact is kept.
pub async fn set_role(
    tx: &mut Tx,
    tenant: &TenantId,
    principal: &str,
    role: &str,
    bound: bool,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO principal_roles (tenant_id, principal, role_key, bound, changed_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, principal, role_key) DO UPDATE
         SET bound = EXCLUDED.bound, changed_at = EXCLUDED.changed_at
         WHERE principal_roles.changed_at <= EXCLUDED.changed_at",
        tenant.as_str(),
        principal,
        role,
        bound,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
