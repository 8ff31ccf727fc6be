//! Retention per artifact type: a tenant's policy (`setArtifactRetention`) keeps versions of a type
//! `keepDays` after they were recorded. The retention worker ([`run_once`]) then deletes them — never the
//! artifact's published version, never while the tenant is under legal hold (tenancy's
//! `TenantLegalHoldChanged`, projected by [`LEGAL_HOLDS`]) — with `ArtifactVersionExpired`, and their
//! bodies with the last version that refers to each: metadata deleted and blobs queued in one
//! transaction, the blobs deleted after it commits (a deletion that fails stays queued for the next pass).
//! The lineage graph keeps the versions' nodes: what happened stays known after the bytes are gone.

pub mod schema;
pub mod store;

use std::sync::Arc;

use kernel::contracts::tenancy::LegalHolds;
use kernel::envelope::EventMeta;
use kernel::Result;
use object_store::ObjectStoreExt;

use crate::bodies::{blob_error, object_path};
use crate::events::ArtifactVersionExpired;
use crate::State;

/// Lineage's legal-hold consumer (queue `lineage.legal-holds`).
pub const LEGAL_HOLDS: LegalHolds = LegalHolds { name: "lineage.legal-holds" };

/// The system task's name, which the tables' `retention` policies let through.
pub const RETENTION: &str = "retention";

/// Versions (or queued blobs) handled per transaction.
const BATCH: i64 = 200;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub expired: usize,
    pub blobs_deleted: usize,
}

/// One pass: every expired version, a batch at a time, then every queued blob.
pub async fn run_once(state: &State) -> Result<Report> {
    let db = state.kernel.db.shared();
    let mut report = Report::default();
    loop {
        let mut tx = kernel::db::system_tx(db, RETENTION).await?;
        let meta = EventMeta::system("lineage.retention", "artifact retention");
        let expired = store::expired(&mut tx, BATCH).await?;
        if expired.is_empty() {
            break;
        }
        store::delete(&mut tx, &expired).await?;
        let events: Vec<ArtifactVersionExpired> = expired
            .iter()
            .map(|v| ArtifactVersionExpired {
                artifact_id: v.artifact_id.clone(),
                project_id: v.project_id,
                version: v.version.clone(),
                storage_ref: v.storage_ref.clone(),
            })
            .collect();
        // Every tenant's outbox rows in one round trip, each under its own tenant's row-level security.
        kernel::outbox::enqueue_batch(&mut tx, expired.iter().zip(&events).map(|(v, e)| (&v.tenant_id, &meta, e)))
            .await?;
        tx.commit().await?;
        report.expired += expired.len();
        if (expired.len() as i64) < BATCH {
            break;
        }
    }
    loop {
        let mut tx = kernel::db::system_tx(db, RETENTION).await?;
        let queued = store::queued(&mut tx, BATCH).await?;
        for (tenant, storage_ref) in &queued {
            match state.bodies.blob.store.delete(&object_path(storage_ref)?).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    // Left queued; the deletions done so far are kept.
                    tx.commit().await?;
                    return Err(blob_error(e));
                }
            }
            store::dequeue(&mut tx, tenant, storage_ref).await?;
            report.blobs_deleted += 1;
        }
        tx.commit().await?;
        if (queued.len() as i64) < BATCH {
            return Ok(report);
        }
    }
}

/// The worker's pass.
pub async fn pass(state: Arc<State>) -> Result<()> {
    let r = run_once(&state).await?;
    if r != Report::default() {
        tracing::info!(expired = r.expired, blobs_deleted = r.blobs_deleted, "artifact retention applied");
    }
    Ok(())
}
