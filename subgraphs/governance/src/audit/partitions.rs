//! The audit log's monthly partitions, created [`MONTHS_AHEAD`] months ahead: a pass at start and daily.

use std::sync::Arc;
use std::time::Duration;

use kernel::Result;
use tokio_util::sync::CancellationToken;

use super::store;
use crate::State;

pub const MONTHS_AHEAD: i32 = 3;
const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Creates the missing partitions; how many.
pub async fn run_once(state: &State) -> Result<i32> {
    let mut tx = state.kernel.db.shared().begin().await?;
    let n = store::ensure_partitions(&mut tx, MONTHS_AHEAD).await?;
    tx.commit().await?;
    Ok(n)
}

pub async fn run(state: Arc<State>, shutdown: CancellationToken) {
    loop {
        match run_once(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(created = n, "audit partitions created"),
            Err(e) => {
                let e = anyhow::Error::from(e);
                tracing::warn!(error = format!("{e:#}"), "creating audit partitions failed; retrying later");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
