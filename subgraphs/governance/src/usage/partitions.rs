//! Usage records' daily partitions: created [`DAYS_AHEAD`] days ahead, and dropped whole once their day
//! ended more than `USAGE_RAW_RETENTION_DAYS` ago (default 90) — unless it is not rolled up yet or a tenant
//! with records in it is under legal hold (tenancy's `TenantLegalHoldChanged`, projected in
//! `legal_holds`); such a partition is kept whole, and the pass says why. Rollups older than
//! `USAGE_ROLLUP_RETENTION_YEARS` (default 7) are deleted, a held tenant's excepted. A pass at start and
//! daily.

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;

use super::store;
use crate::retention::Pass;
use crate::State;

pub const DAYS_AHEAD: i32 = 7;
pub const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Creates the missing partitions and drops those past `raw_days` that may go; deletes rollups past
/// `rollup_years`.
pub async fn run_once(db: &kernel::db::Db, raw_days: i32, rollup_years: i32) -> Result<Pass> {
    let mut tx = db.shared().begin().await?;
    let created = store::ensure_partitions(&mut tx, DAYS_AHEAD, raw_days).await?;
    let pass = Pass::new(created, store::expire(&mut tx, raw_days, rollup_years).await?);
    tx.commit().await?;
    Ok(pass)
}

/// The worker's pass (every [`INTERVAL`]).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let c = &state.config;
    let pass = run_once(&state.kernel.db, c.usage_raw_retention_days, c.usage_rollup_retention_years).await?;
    pass.log("usage");
    Ok(())
}
