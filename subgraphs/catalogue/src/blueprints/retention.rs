//! Retention of validation runs and results: both tables are partitioned by UTC month on `recorded_at`.
//! The worker keeps [`MONTHS_AHEAD`] months of partitions ahead of time and drops whole partitions older
//! than `VALIDATION_RETENTION_MONTHS` (never a row at a time). The app role owns no table, so both go
//! through SECURITY DEFINER functions the migration owner owns (`catalogue_validation_partitions_ensure`
//! and `…_drop`); they serialize on an advisory lock, so replicas may run this at the same time.

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;

use super::store;
use crate::State;

/// Months of partitions kept ready after the current one.
pub const MONTHS_AHEAD: i32 = 3;
/// How often the worker runs (and once at start).
pub const INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
}

/// One pass: creates the partitions ahead, then (in a transaction of its own, so a drop that times out
/// waiting for readers does not undo the new partitions) drops the expired ones.
pub async fn run_once(state: &State) -> Result<Report> {
    let keep = i32::try_from(state.config.validation_retention_months).unwrap_or(i32::MAX);
    let mut tx = state.kernel.db.shared().begin().await?;
    let created = store::ensure_partitions(&mut tx, MONTHS_AHEAD).await?;
    tx.commit().await?;
    let mut tx = state.kernel.db.shared().begin().await?;
    let dropped = store::drop_partitions(&mut tx, keep).await?;
    tx.commit().await?;
    Ok(Report { created, dropped })
}

/// The worker's pass (every [`INTERVAL`]).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let r = run_once(&state).await?;
    if !r.created.is_empty() || !r.dropped.is_empty() {
        tracing::info!(created = ?r.created, dropped = ?r.dropped, "validation result partitions maintained");
    }
    Ok(())
}
