//! The sweeper of abandoned uploads: a claim nobody renewed for [`super::CLAIM_STALE`] belongs to an
//! upload that died (its process stopped, or its metadata transaction failed and the blob could not be
//! deleted then). Its blob — whatever of it was completed — is deleted, then the claim, so no blob
//! outlives its metadata and the body can be uploaded again. Runs as the `body-sweeper` system task
//! across tenants; replicas may sweep at once (claims are locked `SKIP LOCKED`).

use std::sync::Arc;

use kernel::Result;
use object_store::ObjectStoreExt;

use super::{blob_error, object_path, store};
use crate::State;

/// Claims handled per transaction.
const BATCH: i64 = 100;

/// One sweep: every stale claim, a batch at a time. How many were removed.
pub async fn sweep(state: &State, stale: std::time::Duration) -> Result<usize> {
    let mut removed = 0;
    loop {
        let mut tx = kernel::db::system_tx(state.kernel.db.shared(), SWEEPER).await?;
        let claims = store::stale(&mut tx, stale.as_secs_f64(), BATCH).await?;
        for claim in &claims {
            let path = object_path(&claim.storage_ref)?;
            match state.bodies.blob.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(blob_error(e)),
            }
            store::drop_claim(&mut tx, claim).await?;
        }
        tx.commit().await?;
        removed += claims.len();
        if (claims.len() as i64) < BATCH {
            return Ok(removed);
        }
    }
}

/// The system task's name, which the `sweeper` policy on `artifact_bodies` lets through.
pub const SWEEPER: &str = "body-sweeper";

/// The worker's pass.
pub async fn pass(state: Arc<State>) -> Result<()> {
    let removed = sweep(&state, super::CLAIM_STALE).await?;
    if removed > 0 {
        tracing::info!(removed, "abandoned uploads swept");
    }
    Ok(())
}
