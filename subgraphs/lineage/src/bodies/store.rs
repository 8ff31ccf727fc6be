//! Bodies' SQL: the claims and records of `artifact_bodies`. Every statement names the tenant, except the
//! sweeper's, which runs as the `body-sweeper` system task across tenants.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    #[graphql(name = "ArtifactBodyState")]
    pub enum BodyState {
        /// An upload is under way.
        Uploading = "uploading",
        /// In blob storage, whole, its sha256 checked.
        Stored = "stored",
    }
}

/// A body's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyRow {
    pub storage_ref: String,
    pub content_hash: String,
    pub state: BodyState,
    pub upload_id: Option<uuid::Uuid>,
    pub size: Option<i64>,
    pub touched_at: DateTime<Utc>,
    pub stored_at: Option<DateTime<Utc>>,
}

/// Claims the body at `storage_ref` for upload `upload_id`: when there is no row, or only a claim not
/// touched for `stale_secs`. Whether it was claimed.
pub async fn claim(
    tx: &mut Tx,
    tenant: &TenantId,
    storage_ref: &str,
    content_hash: &str,
    upload_id: uuid::Uuid,
    stale_secs: f64,
) -> Result<bool> {
    let claimed = sqlx::query_scalar!(
        "INSERT INTO artifact_bodies (tenant_id, storage_ref, content_hash, state, upload_id)
         VALUES ($1, $2, $3, 'uploading', $4)
         ON CONFLICT (tenant_id, storage_ref) DO UPDATE SET upload_id = EXCLUDED.upload_id, touched_at = now()
          WHERE artifact_bodies.state = 'uploading'
            AND artifact_bodies.touched_at < now() - make_interval(secs => $5)
         RETURNING upload_id",
        tenant.as_str(),
        storage_ref,
        content_hash,
        upload_id,
        stale_secs,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(claimed.flatten() == Some(upload_id))
}

pub async fn get(tx: &mut Tx, tenant: &TenantId, storage_ref: &str) -> Result<Option<BodyRow>> {
    Ok(sqlx::query_as!(
        BodyRow,
        r#"SELECT storage_ref, content_hash, state AS "state: BodyState", upload_id, size, touched_at, stored_at
             FROM artifact_bodies WHERE tenant_id = $1 AND storage_ref = $2"#,
        tenant.as_str(),
        storage_ref,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The rows of `refs` that exist.
pub async fn of_refs(tx: &mut Tx, tenant: &TenantId, refs: &[String]) -> Result<Vec<BodyRow>> {
    Ok(sqlx::query_as!(
        BodyRow,
        r#"SELECT storage_ref, content_hash, state AS "state: BodyState", upload_id, size, touched_at, stored_at
             FROM artifact_bodies WHERE tenant_id = $1 AND storage_ref = ANY($2)"#,
        tenant.as_str(),
        refs,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Renews upload `upload_id`'s claim; false when it no longer holds it.
pub async fn touch(tx: &mut Tx, tenant: &TenantId, storage_ref: &str, upload_id: uuid::Uuid) -> Result<bool> {
    let n = sqlx::query!(
        "UPDATE artifact_bodies SET touched_at = now()
          WHERE tenant_id = $1 AND storage_ref = $2 AND state = 'uploading' AND upload_id = $3",
        tenant.as_str(),
        storage_ref,
        upload_id,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records upload `upload_id`'s body as stored; false when the upload no longer holds the claim.
pub async fn stored(
    tx: &mut Tx,
    tenant: &TenantId,
    storage_ref: &str,
    upload_id: uuid::Uuid,
    size: i64,
) -> Result<Option<BodyRow>> {
    Ok(sqlx::query_as!(
        BodyRow,
        r#"UPDATE artifact_bodies SET state = 'stored', size = $4, stored_at = now(), upload_id = NULL,
                  touched_at = now()
            WHERE tenant_id = $1 AND storage_ref = $2 AND state = 'uploading' AND upload_id = $3
           RETURNING storage_ref, content_hash, state AS "state: BodyState", upload_id, size, touched_at, stored_at"#,
        tenant.as_str(),
        storage_ref,
        upload_id,
        size,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Gives up upload `upload_id`'s claim.
pub async fn release(tx: &mut Tx, tenant: &TenantId, storage_ref: &str, upload_id: uuid::Uuid) -> Result<()> {
    sqlx::query!(
        "DELETE FROM artifact_bodies
          WHERE tenant_id = $1 AND storage_ref = $2 AND state = 'uploading' AND upload_id = $3",
        tenant.as_str(),
        storage_ref,
        upload_id,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A claim nobody renewed.
#[derive(Clone, Debug)]
pub struct StaleClaim {
    pub tenant_id: TenantId,
    pub storage_ref: String,
    pub upload_id: Option<uuid::Uuid>,
}

/// Claims not touched for `stale_secs`, oldest first, at most `limit`, locked for this sweep (in the
/// `body-sweeper` system transaction; a claim another sweeper holds is skipped).
pub async fn stale(tx: &mut Tx, stale_secs: f64, limit: i64) -> Result<Vec<StaleClaim>> {
    Ok(sqlx::query_as!(
        StaleClaim,
        r#"SELECT tenant_id AS "tenant_id: TenantId", storage_ref, upload_id
             FROM artifact_bodies
            WHERE state = 'uploading' AND touched_at < now() - make_interval(secs => $1)
            ORDER BY touched_at LIMIT $2
              FOR UPDATE SKIP LOCKED"#,
        stale_secs,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Deletes a stale claim (in the sweeper's transaction).
pub async fn drop_claim(tx: &mut Tx, claim: &StaleClaim) -> Result<()> {
    sqlx::query!(
        "DELETE FROM artifact_bodies
          WHERE tenant_id = $1 AND storage_ref = $2 AND state = 'uploading' AND upload_id = $3",
        claim.tenant_id.as_str(),
        claim.storage_ref,
        claim.upload_id,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
