//! The audit log's monthly partitions: created [`MONTHS_AHEAD`] months ahead, and dropped whole once their
//! month ended more than `AUDIT_RETENTION_MONTHS` ago (default 84: seven years) — unless a tenant with
//! entries in one is under legal hold (tenancy's `TenantLegalHoldChanged`, projected in `legal_holds`) or
//! has entries in it not exported yet; such a partition is kept whole, and the pass says why. A pass at
//! start and daily.

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;

use super::store;
use crate::retention::Pass;
use crate::State;

pub const MONTHS_AHEAD: i32 = 3;
pub const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Creates the missing partitions and drops those past `keep_months` that may go.
pub async fn run_once(db: &kernel::db::Db, keep_months: i32) -> Result<Pass> {
    let mut tx = db.shared().begin().await?;
    let created = store::ensure_partitions(&mut tx, MONTHS_AHEAD).await?;
    let pass = Pass::new(created, store::expire_partitions(&mut tx, keep_months).await?);
    tx.commit().await?;
    Ok(pass)
}

/// The worker's pass (every [`INTERVAL`]).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let pass = run_once(&state.kernel.db, state.config.audit_retention_months).await?;
    pass.log("audit");
    Ok(())
}
