//! The directory's SQL: the latest role binding and legal hold per tenant (the newest `occurredAt` wins).

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

/// Records whether `tenant` is on legal hold as of `at`, unless a newer fact is kept.
pub async fn set_legal_hold(tx: &mut Tx, tenant: &TenantId, on_hold: bool, at: DateTime<Utc>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO legal_holds (tenant_id, on_hold, changed_at) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET on_hold = EXCLUDED.on_hold, changed_at = EXCLUDED.changed_at
         WHERE legal_holds.changed_at <= EXCLUDED.changed_at",
        tenant.as_str(),
        on_hold,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
