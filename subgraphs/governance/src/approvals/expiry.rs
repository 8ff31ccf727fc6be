//! The expiry worker: every [`crate::Config::approval_expiry_interval_secs`] it expires the pending requests
//! past their `expiresAt` (`ApprovalExpired`, with the request's correlation id). Each request is expired in
//! a transaction of its own that re-checks it under a lock, so a vote racing the worker either lands first
//! (and the worker leaves the request alone) or finds it expired; replicas may run the worker side by side.

use std::sync::Arc;

use kernel::Result;

use super::store;
use crate::State;

const BATCH: i32 = 500;

/// One pass; returns how many requests it expired.
pub async fn run_once(state: &State) -> Result<usize> {
    let mut expired = 0;
    loop {
        let mut tx = state.kernel.db.shared().begin().await?;
        let due = store::expired(&mut tx, BATCH).await?;
        tx.commit().await?;
        let mut progressed = false;
        for (tenant, id) in &due {
            if super::expire(&state.kernel.db, tenant, *id).await? {
                expired += 1;
                progressed = true;
            }
        }
        if due.len() < BATCH as usize || !progressed {
            return Ok(expired);
        }
    }
}

/// The worker's pass (every `APPROVAL_EXPIRY_INTERVAL_SECS`).
pub async fn pass(state: Arc<State>) -> Result<()> {
    let n = run_once(&state).await?;
    if n > 0 {
        tracing::info!(expired = n, "approval requests expired");
    }
    Ok(())
}
