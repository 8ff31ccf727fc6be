//! Artifact bodies: the bytes of a version, in blob storage (`kernel::blob`: a local folder by default,
//! Azure Blob by configuration), never in a GraphQL string.
//!
//! A client uploads and downloads a body over HTTP through the public endpoint, which passes
//! `/api/v1/` to lineage streamed (the edge's pass routes), with the same bearer token as `/graphql`
//! ([`routes`]):
//!
//! ```text
//! PUT /api/v1/artifacts/{artifactId}/versions/{version}/body    (lineage:write)
//! GET /api/v1/artifacts/{artifactId}/versions/{version}/body    (lineage:read; Range: bytes=N- to resume)
//! ```
//!
//! The version is recorded first (`recordArtifactVersion`), its `contentHash` declared; the upload must
//! be that content. An upload:
//!
//! 1. claims the body (`artifact_bodies`, committed) — a body already stored is answered at once and not
//!    read again; one under another live upload is `CONFLICT`;
//! 2. streams the request into a multipart upload of at most [`PART`] bytes a part and [`IN_FLIGHT`] parts
//!    in flight, so its memory is bounded whatever the size, hashing (sha256) as it goes and renewing its
//!    claim; more than `ARTIFACT_MAX_BODY_BYTES` ends it with 413;
//! 3. aborts the multipart upload — nothing is stored — when the sha256 is not the declared one (or the
//!    client stops sending), and gives up its claim, so the upload can simply be made again;
//! 4. completes it, and records the body as stored with `ArtifactBodyStored` in one transaction; should
//!    that transaction fail, the blob is deleted before the error is answered.
//!
//! A process that dies between writing and recording leaves a claim that nobody renews: the sweeper
//! ([`sweeper`]) deletes its blob and the claim once it is stale, so no blob outlives its metadata. (With
//! the local folder store, a process that dies in the middle of a multipart upload also leaves its staging
//! file, `<path>#<n>`, which the sweeper does not see; Azure Blob drops uncommitted blocks by itself after
//! a week.)
//! Versions of an artifact with identical content share one storage reference, hence one body.

pub mod routes;
pub mod store;
pub mod sweeper;

use std::time::Duration;

use axum::body::Body;
use futures::StreamExt;
use kernel::blob::Blob;
use kernel::envelope::EventMeta;
use kernel::{Authorized, Error, Result, TenantId, Work};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::artifacts::{self, Artifact, ArtifactVersion};
use crate::events::ArtifactBodyStored;
use crate::ids::ArtifactId;
pub use store::{BodyRow, BodyState};

/// Bytes per part of a multipart upload (Azure block, local staging write).
pub const PART: usize = 8 << 20;
/// Parts written at once: with the part being filled, an upload holds at most `(IN_FLIGHT + 1) × PART`.
pub const IN_FLIGHT: usize = 2;
/// A claim nobody renewed for this long is stale: another upload may take it, the sweeper removes it.
pub const CLAIM_STALE: Duration = Duration::from_secs(600);
/// How often a streaming upload renews its claim.
const CLAIM_RENEW: Duration = Duration::from_secs(30);
/// The longest silence from a client while it uploads.
const IDLE: Duration = Duration::from_secs(60);

/// Where bodies go, and how big one may be.
#[derive(Clone, Debug)]
pub struct Bodies {
    pub blob: Blob,
    pub max_bytes: u64,
}

/// The object a storage reference names: `blob://artifacts/{tenant}/{project}/{artifact}/{version}` is
/// `artifacts/{tenant}/{project}/{artifact}/{version}` in the store.
pub fn object_path(storage_ref: &str) -> Result<Path> {
    let rest = storage_ref
        .strip_prefix("blob://")
        .filter(|r| r.starts_with("artifacts/"))
        .ok_or_else(|| Error::internal(anyhow::anyhow!("`{storage_ref}` is not a blob:// storage reference")))?;
    Ok(Path::from_iter(rest.split('/')))
}

/// What an upload did.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    pub artifact_id: String,
    pub version: String,
    pub content_hash: String,
    pub storage_ref: String,
    pub size: i64,
    /// `false` when the body was stored already (by an earlier upload, or an earlier version with the same
    /// content) and nothing was read.
    pub stored_now: bool,
}

/// The version `id`@`version` of the caller's tenant, with its artifact and its body's row.
pub async fn version_of(
    state: &crate::State,
    tenant: &TenantId,
    id: &ArtifactId,
    version: &semver::Version,
) -> Result<(ArtifactVersion, Artifact, Option<BodyRow>)> {
    let mut tx = state.kernel.db.tenant_tx(tenant).await?;
    let artifact = artifacts::store::get(&mut tx, tenant, id).await?.ok_or_else(|| artifacts::not_found(id))?;
    let v = artifacts::store::version(&mut tx, tenant, id, &version.to_string())
        .await?
        .ok_or_else(|| Error::not_found(format!("artifact `{id}` has no version {version}")))?;
    let body = store::get(&mut tx, tenant, &v.storage_ref).await?;
    tx.commit().await?;
    Ok((v, artifact, body))
}

/// A body row's content must be the version's: anything else is a broken invariant, never served.
fn check_content(v: &ArtifactVersion, row: &BodyRow) -> Result<()> {
    if row.content_hash == v.content_hash {
        return Ok(());
    }
    Err(Error::internal(anyhow::anyhow!(
        "the body at {} is {}, but version {}@{} declares {}",
        v.storage_ref,
        row.content_hash,
        v.artifact_id,
        v.version,
        v.content_hash
    )))
}

/// Uploads the body of `id`@`version` from `body` (see the module's documentation).
pub async fn upload(
    state: &crate::State,
    bodies: &Bodies,
    tenant: &Authorized,
    meta: EventMeta,
    id: &ArtifactId,
    version: &semver::Version,
    body: Body,
) -> Result<Uploaded> {
    let db = &state.kernel.db;
    let upload_id = uuid::Uuid::new_v4();
    // One transaction: the artifact locked (as recording a version and retention do, so neither runs
    // between the read and the claim), the version read, its body claimed.
    let mut tx = db.tenant_tx(tenant).await?;
    let artifact = artifacts::store::lock(&mut tx, tenant, id).await?.ok_or_else(|| artifacts::not_found(id))?;
    let v = artifacts::store::version(&mut tx, tenant, id, &version.to_string())
        .await?
        .ok_or_else(|| Error::not_found(format!("artifact `{id}` has no version {version}")))?;
    let existing = store::get(&mut tx, tenant, &v.storage_ref).await?;
    let claimed = match &existing {
        Some(row @ BodyRow { state: BodyState::Stored, .. }) => {
            check_content(&v, row)?;
            false
        }
        _ => {
            store::claim(&mut tx, tenant, &v.storage_ref, &v.content_hash, upload_id, CLAIM_STALE.as_secs_f64()).await?
        }
    };
    // What holds the body when this upload does not: read again only after a claim that did not take.
    let now = match (claimed, existing) {
        (true, _) => None,
        (false, Some(row @ BodyRow { state: BodyState::Stored, .. })) => Some(row),
        (false, _) => store::get(&mut tx, tenant, &v.storage_ref).await?,
    };
    tx.commit().await?;
    let answer = |size: i64, stored_now: bool| Uploaded {
        artifact_id: id.to_string(),
        version: v.version.clone(),
        content_hash: v.content_hash.clone(),
        storage_ref: v.storage_ref.clone(),
        size,
        stored_now,
    };
    if !claimed {
        return match now {
            Some(BodyRow { state: BodyState::Stored, size, .. }) => Ok(answer(size.unwrap_or_default(), false)),
            _ => Err(Error::conflict(format!(
                "the body of {id}@{} is being uploaded by another request; try again once it ends (an abandoned \
                 upload is given up after {} s)",
                v.version,
                CLAIM_STALE.as_secs()
            ))),
        };
    }
    let path = object_path(&v.storage_ref)?;
    let streamed = stream_into(state, bodies, tenant, &v, upload_id, &path, body).await;
    let size = match streamed {
        Ok(size) => size,
        Err(e) => {
            release(state, tenant, &v.storage_ref, upload_id).await;
            return Err(e);
        }
    };
    // Recorded with its event in one transaction, the version still there (the artifact locked again);
    // if that fails, the blob goes too — while the claim is still this upload's.
    let recorded = async {
        let mut work = Work::tenant(db, tenant, meta).await?;
        artifacts::store::lock(&mut work, tenant, id).await?.ok_or_else(|| artifacts::not_found(id))?;
        if artifacts::store::version(&mut work, tenant, id, &v.version).await?.is_none() {
            return Err(Error::not_found(format!("version {} of artifact `{id}` was deleted meanwhile", v.version)));
        }
        let row = store::stored(&mut work, tenant, &v.storage_ref, upload_id, size).await?;
        if row.is_none() {
            return Err(Error::conflict(format!(
                "the upload of {id}@{} stalled past {} s and was given up; upload it again",
                v.version,
                CLAIM_STALE.as_secs()
            )));
        }
        let e = ArtifactBodyStored {
            artifact_id: id.clone(),
            project_id: artifact.project_id,
            version: v.version.clone(),
            content_hash: v.content_hash.clone(),
            storage_ref: v.storage_ref.clone(),
            size,
        };
        work.emit(tenant, &e).await?;
        work.commit().await
    }
    .await;
    if let Err(e) = recorded {
        // Another upload may hold the claim now (this one stalled past it) and have stored the same
        // content: its blob is not deleted. When the claim cannot be read, the sweeper decides later.
        if holds_claim(state, tenant, &v.storage_ref, upload_id).await {
            if let Err(gone) = bodies.blob.store.delete(&path).await {
                tracing::warn!(error = %gone, %path, "a body whose record failed is left for the sweeper");
            } else {
                release(state, tenant, &v.storage_ref, upload_id).await;
            }
        }
        return Err(e);
    }
    Ok(answer(size, true))
}

/// Whether upload `upload_id` still holds the claim on `storage_ref` (false when that cannot be read).
async fn holds_claim(state: &crate::State, tenant: &TenantId, storage_ref: &str, upload_id: uuid::Uuid) -> bool {
    let read = async {
        let mut tx = state.kernel.db.tenant_tx(tenant).await?;
        let row = store::get(&mut tx, tenant, storage_ref).await?;
        tx.commit().await?;
        Ok::<_, Error>(row)
    };
    matches!(read.await, Ok(Some(BodyRow { state: BodyState::Uploading, upload_id: Some(u), .. })) if u == upload_id)
}

/// Gives up a claim (best effort: a claim left behind goes stale and is swept).
async fn release(state: &crate::State, tenant: &TenantId, storage_ref: &str, upload_id: uuid::Uuid) {
    let released = async {
        let mut tx = state.kernel.db.tenant_tx(tenant).await?;
        store::release(&mut tx, tenant, storage_ref, upload_id).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = released {
        tracing::warn!(error = e.describe(), storage_ref, "an upload's claim is left to go stale");
    }
}

/// Streams `body` into a multipart upload at `path`, hashing it: its size once completed, and nothing
/// stored (the upload aborted) when it is too large, broken off, or not the declared content.
async fn stream_into(
    state: &crate::State,
    bodies: &Bodies,
    tenant: &TenantId,
    v: &ArtifactVersion,
    upload_id: uuid::Uuid,
    path: &Path,
    body: Body,
) -> Result<i64> {
    let upload = bodies.blob.store.put_multipart(path).await.map_err(blob_error)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut renewed = tokio::time::Instant::now();
    let mut stream = body.into_data_stream();
    let read: Result<()> = async {
        loop {
            let chunk = match tokio::time::timeout(IDLE, stream.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "an upload was broken off");
                    return Err(Error::bad_input(
                        "body",
                        "the upload was broken off before its end; nothing was stored",
                    ));
                }
                Err(_) => {
                    let why = format!("nothing was sent for {} s; nothing was stored", IDLE.as_secs());
                    return Err(Error::bad_input("body", why));
                }
            };
            size += chunk.len() as u64;
            if size > bodies.max_bytes {
                let why = format!("a body is at most {} bytes; nothing was stored", bodies.max_bytes);
                return Err(Error::bad_input("body", why).with("limit", bodies.max_bytes));
            }
            hasher.update(&chunk);
            writer.wait_for_capacity(IN_FLIGHT).await.map_err(blob_error)?;
            writer.put(chunk);
            if renewed.elapsed() >= CLAIM_RENEW {
                let mut tx = state.kernel.db.tenant_tx(tenant).await?;
                let held = store::touch(&mut tx, tenant, &v.storage_ref, upload_id).await?;
                tx.commit().await?;
                if !held {
                    return Err(Error::conflict("the upload stalled and was given up; upload it again"));
                }
                renewed = tokio::time::Instant::now();
            }
        }
    }
    .await;
    let read = read.and_then(|()| {
        let hash = format!("sha256:{}", hex::encode(hasher.finalize()));
        if hash == v.content_hash {
            return Ok(());
        }
        let why = format!(
            "the body's sha256 is {hash}, but version {} declares {}; nothing was stored",
            v.version, v.content_hash
        );
        Err(Error::bad_input("body", why).with("contentHash", hash))
    });
    if let Err(e) = read {
        if let Err(aborted) = writer.abort().await {
            tracing::warn!(error = %aborted, %path, "a refused upload's parts could not be aborted");
        }
        return Err(e);
    }
    // Still this upload's claim? (It stalled past the stale limit otherwise, and another upload may be
    // writing the same path.)
    let mut tx = state.kernel.db.tenant_tx(tenant).await?;
    let held = store::touch(&mut tx, tenant, &v.storage_ref, upload_id).await?;
    tx.commit().await?;
    if !held {
        if let Err(aborted) = writer.abort().await {
            tracing::warn!(error = %aborted, %path, "a given-up upload's parts could not be aborted");
        }
        return Err(Error::conflict("the upload stalled and was given up; upload it again"));
    }
    writer.finish().await.map_err(blob_error)?;
    i64::try_from(size).map_err(|_| Error::bad_input("body", "too large"))
}

/// A blob store's failure, as clients see it: unavailable, the details logged.
pub fn blob_error(e: object_store::Error) -> Error {
    tracing::warn!(error = %e, "blob storage failed");
    Error::unavailable("blob storage is unavailable; try again")
}
