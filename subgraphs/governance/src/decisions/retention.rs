//! Retention of decisions: kept [`KEEP_YEARS`] years, then deleted in batches by
//! `governance_decisions_expire` (the owner's function: the app role cannot delete), except a tenant's under
//! legal hold, which stay until tenancy lifts the hold (`TenantLegalHoldChanged`, projected in `legal_holds`).

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;

use super::store;
use crate::State;

/// Seven years, as the seed's retention for decisions says.
pub const KEEP_YEARS: i32 = 7;
const BATCH: i32 = 10_000;
/// How often the worker runs (and once at start).
pub const INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// One pass: deletes expired decisions in batches until none is left; returns how many.
pub async fn run_once(state: &State) -> Result<i64> {
    let mut total = 0;
    loop {
        let mut tx = state.kernel.db.shared().begin().await?;
        let n = store::expire(&mut tx, KEEP_YEARS, BATCH).await?;
        tx.commit().await?;
        total += n;
        if n < i64::from(BATCH) {
            return Ok(total);
        }
    }
}

/// The worker: a pass at start and every [`INTERVAL`] until `shutdown`.
/// The worker's pass (every [`INTERVAL`]).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let n = run_once(&state).await?;
    if n > 0 {
        tracing::info!(deleted = n, "decisions past retention deleted");
    }
    Ok(())
}
