//! Retention's SQL: the policies (per tenant), and the retention task's reads and deletes across tenants
//! (as the `retention` system task, which the tables' `retention` policies let through).

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

use crate::ids::{ArtifactId, ProjectId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub artifact_type: String,
    pub keep_days: i32,
    pub updated_at: DateTime<Utc>,
}

pub async fn policies(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Policy>> {
    Ok(sqlx::query_as!(
        Policy,
        "SELECT artifact_type, keep_days, updated_at FROM artifact_retention WHERE tenant_id = $1 ORDER BY artifact_type",
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn set(tx: &mut Tx, tenant: &TenantId, artifact_type: &str, keep_days: i32) -> Result<Policy> {
    Ok(sqlx::query_as!(
        Policy,
        "INSERT INTO artifact_retention (tenant_id, artifact_type, keep_days) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, artifact_type) DO UPDATE SET keep_days = EXCLUDED.keep_days, updated_at = now()
         RETURNING artifact_type, keep_days, updated_at",
        tenant.as_str(),
        artifact_type,
        keep_days,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn clear(tx: &mut Tx, tenant: &TenantId, artifact_type: &str) -> Result<bool> {
    let n = sqlx::query!(
        "DELETE FROM artifact_retention WHERE tenant_id = $1 AND artifact_type = $2",
        tenant.as_str(),
        artifact_type,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A version past its type's retention.
#[derive(Clone, Debug)]
pub struct Expired {
    pub tenant_id: TenantId,
    pub artifact_id: ArtifactId,
    pub project_id: Option<ProjectId>,
    pub version: String,
    pub storage_ref: String,
}

/// Versions past their type's retention, oldest first, at most `limit`, locked for this pass: never a
/// published one, never a tenant's under legal hold.
pub async fn expired(tx: &mut Tx, limit: i64) -> Result<Vec<Expired>> {
    Ok(sqlx::query_as!(
        Expired,
        r#"SELECT v.tenant_id AS "tenant_id: TenantId", v.artifact_id AS "artifact_id: ArtifactId",
                  a.project_id AS "project_id: ProjectId", v.version, v.storage_ref
             FROM artifact_versions v
             JOIN artifacts a ON a.tenant_id = v.tenant_id AND a.artifact_id = v.artifact_id
             JOIN artifact_retention r ON r.tenant_id = v.tenant_id AND r.artifact_type = a.artifact_type
             LEFT JOIN legal_holds h ON h.tenant_id = v.tenant_id
            WHERE v.status <> 'Published'
              AND v.created_at < now() - make_interval(days => r.keep_days)
              AND NOT coalesce(h.on_hold, false)
            ORDER BY v.created_at LIMIT $1
              FOR UPDATE OF v, a SKIP LOCKED"#,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Deletes `versions` (their numbers kept in `expired_versions`, never recorded again), and queues for
/// deletion the bodies no version refers to any more (their records gone with them); the storage
/// references queued.
pub async fn delete(tx: &mut Tx, versions: &[Expired]) -> Result<Vec<(TenantId, String)>> {
    let tenants: Vec<&str> = versions.iter().map(|v| v.tenant_id.as_str()).collect();
    let ids: Vec<&str> = versions.iter().map(|v| v.artifact_id.as_str()).collect();
    let numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    let rows = sqlx::query!(
        r#"WITH doomed AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS d(t, a, n)),
           gone AS (
               DELETE FROM artifact_versions v USING doomed d
                WHERE v.tenant_id = d.t AND v.artifact_id = d.a AND v.version = d.n
               RETURNING v.tenant_id, v.artifact_id, v.version, v.content_hash, v.storage_ref),
           -- Their numbers are never recorded again.
           tombstones AS (
               INSERT INTO expired_versions (tenant_id, artifact_id, version, content_hash)
               SELECT tenant_id, artifact_id, version, content_hash FROM gone ON CONFLICT DO NOTHING),
           -- (One snapshot: the deleted versions are still visible here, so they are left out by hand.)
           unreferenced AS (
               SELECT DISTINCT g.tenant_id, g.storage_ref FROM gone g
                WHERE NOT EXISTS (
                    SELECT 1 FROM artifact_versions o
                     WHERE o.tenant_id = g.tenant_id AND o.storage_ref = g.storage_ref
                       AND NOT EXISTS (SELECT 1 FROM doomed d
                                        WHERE d.t = o.tenant_id AND d.a = o.artifact_id AND d.n = o.version))),
           records AS (
               DELETE FROM artifact_bodies b USING unreferenced u
                WHERE b.tenant_id = u.tenant_id AND b.storage_ref = u.storage_ref)
           INSERT INTO body_deletions (tenant_id, storage_ref)
           SELECT tenant_id, storage_ref FROM unreferenced ON CONFLICT DO NOTHING
           RETURNING tenant_id AS "tenant_id: TenantId", storage_ref"#,
        &tenants as &[&str],
        &ids as &[&str],
        &numbers as &[&str],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.storage_ref)).collect())
}

/// Queued blob deletions, oldest first, at most `limit`, locked for this pass.
pub async fn queued(tx: &mut Tx, limit: i64) -> Result<Vec<(TenantId, String)>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id: TenantId", storage_ref FROM body_deletions
            ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED"#,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.storage_ref)).collect())
}

pub async fn dequeue(tx: &mut Tx, tenant: &TenantId, storage_ref: &str) -> Result<()> {
    sqlx::query!("DELETE FROM body_deletions WHERE tenant_id = $1 AND storage_ref = $2", tenant.as_str(), storage_ref,)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
