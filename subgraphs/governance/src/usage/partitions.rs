//! Usage records' daily partitions: created [`DAYS_AHEAD`] days ahead, and dropped whole once their day
//! ended more than `USAGE_RAW_RETENTION_DAYS` ago (default 90) — unless it is not rolled up yet or a tenant
//! with records in it is under legal hold (tenancy's `TenantLegalHoldChanged`, projected in
//! `legal_holds`); such a partition is kept whole, and the pass says why. Rollups older than
//! `USAGE_ROLLUP_RETENTION_YEARS` (default 7) are deleted, a held tenant's excepted. A pass at start and
//! daily.

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;
use tokio_util::sync::CancellationToken;

use super::store;
use crate::State;

pub const DAYS_AHEAD: i32 = 7;
const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// What a pass did.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    pub created: i32,
    pub dropped: Vec<String>,
    /// Partitions past retention that were kept, and why.
    pub kept: Vec<(String, String)>,
}

/// Creates the missing partitions and drops those past `raw_days` that may go; deletes rollups past
/// `rollup_years`.
pub async fn run_once(db: &kernel::db::Db, raw_days: i32, rollup_years: i32) -> Result<Pass> {
    let mut tx = db.shared().begin().await?;
    let created = store::ensure_partitions(&mut tx, DAYS_AHEAD, raw_days).await?;
    let mut pass = Pass { created, ..Default::default() };
    for (name, dropped, reason) in store::expire(&mut tx, raw_days, rollup_years).await? {
        if dropped {
            pass.dropped.push(name);
        } else {
            pass.kept.push((name, reason.unwrap_or_default()));
        }
    }
    tx.commit().await?;
    Ok(pass)
}

pub async fn run(state: Arc<State>, shutdown: CancellationToken) {
    let c = &state.config;
    kernel::periodic::every("usage partition maintenance", INTERVAL, shutdown, || async {
        let pass = run_once(&state.kernel.db, c.usage_raw_retention_days, c.usage_rollup_retention_years).await?;
        if pass.created > 0 {
            tracing::info!(created = pass.created, "usage partitions created");
        }
        if !pass.dropped.is_empty() {
            tracing::info!(dropped = ?pass.dropped, "usage partitions past retention dropped");
        }
        for (partition, reason) in &pass.kept {
            tracing::info!(partition, reason, "usage partition past retention kept");
        }
        Ok(())
    })
    .await
}
