//! The legal-hold projection's SQL.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

/// Records whether `tenant` is on legal hold as of `at`, unless a newer fact is kept.
pub async fn set(tx: &mut Tx, tenant: &TenantId, on_hold: bool, at: DateTime<Utc>) -> Result<()> {
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
