//! The rollup worker: every `USAGE_ROLLUP_INTERVAL_SECS` it closes the hours whose late window has passed
//! (hourly rollups from the raw records) and the days those complete (daily rollups from the hours), and
//! moves the watermarks (see the module documentation of `usage`). One transaction per pass; replicas
//! take turns (the pass locks the watermarks).

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;

use super::store::{self, Rolled};
use crate::State;

/// Closes everything before `late_window` ago, by the database's clock.
pub async fn run_once(db: &kernel::db::Db, late_window: Duration) -> Result<Vec<Rolled>> {
    let mut tx = db.shared().begin().await?;
    let rolled = store::rollup(&mut tx, late_window).await?;
    tx.commit().await?;
    Ok(rolled)
}

/// The worker's pass (every `USAGE_ROLLUP_INTERVAL_SECS`).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let window = Duration::from_secs(state.config.usage_late_window_secs);
    for r in run_once(&state.kernel.db, window).await?.iter().filter(|r| r.rows > 0) {
        tracing::info!(grain = r.grain, rolled_to = %r.rolled_to, rows = r.rows, "usage rolled up");
    }
    Ok(())
}
