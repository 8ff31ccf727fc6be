//! Artifacts' and versions' SQL. Every statement names the tenant.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Error, Result, TenantId};

use super::{Artifact, ArtifactVersion, Classification, NewArtifact, NewVersion, VersionStatus};
use crate::ids::{ArtifactId, ModuleId, ProjectId};

/// Inserts the artifact; `None` if the tenant has one with its id.
pub async fn insert(tx: &mut Tx, tenant: &TenantId, a: &NewArtifact) -> Result<Option<Artifact>> {
    Ok(sqlx::query_as!(
        Artifact,
        r#"INSERT INTO artifacts (tenant_id, artifact_id, artifact_type, name, project_id, module_id, classification)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id, artifact_id) DO NOTHING
           RETURNING tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type,
                     name, project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                     classification AS "classification: Classification", created_at, updated_at"#,
        tenant.as_str(),
        &a.artifact_id as &ArtifactId,
        a.artifact_type,
        a.name,
        a.project_id as Option<ProjectId>,
        a.module_id as Option<ModuleId>,
        a.classification.as_str(),
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn get(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId) -> Result<Option<Artifact>> {
    Ok(sqlx::query_as!(
        Artifact,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type, name,
                  project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                  classification AS "classification: Classification", created_at, updated_at
             FROM artifacts WHERE tenant_id = $1 AND artifact_id = $2"#,
        tenant.as_str(),
        id as &ArtifactId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The artifacts of `ids` that exist.
pub async fn get_many(tx: &mut Tx, tenant: &TenantId, ids: &[ArtifactId]) -> Result<Vec<Artifact>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    Ok(sqlx::query_as!(
        Artifact,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type, name,
                  project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                  classification AS "classification: Classification", created_at, updated_at
             FROM artifacts WHERE tenant_id = $1 AND artifact_id = ANY($2)"#,
        tenant.as_str(),
        &ids as &[&str],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The artifact, locked for this transaction (its versions change one writer at a time).
pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId) -> Result<Option<Artifact>> {
    Ok(sqlx::query_as!(
        Artifact,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type, name,
                  project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                  classification AS "classification: Classification", created_at, updated_at
             FROM artifacts WHERE tenant_id = $1 AND artifact_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as &ArtifactId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn classify(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId, c: Classification) -> Result<Artifact> {
    Ok(sqlx::query_as!(
        Artifact,
        r#"UPDATE artifacts SET classification = $3, updated_at = now() WHERE tenant_id = $1 AND artifact_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type,
                     name, project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                     classification AS "classification: Classification", created_at, updated_at"#,
        tenant.as_str(),
        id as &ArtifactId,
        c.as_str(),
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// Where the artifacts of a page come from: the tenant's, a project's or a module's.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    Tenant,
    Project(ProjectId),
    Module(ModuleId),
}

/// The artifacts of `scope` in id order after `after`, at most `limit`.
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    scope: Scope,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Artifact>> {
    let (project, module) = match scope {
        Scope::Tenant => (None, None),
        Scope::Project(p) => (Some(p), None),
        Scope::Module(m) => (None, Some(m)),
    };
    Ok(sqlx::query_as!(
        Artifact,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", artifact_type, name,
                  project_id AS "project_id: ProjectId", module_id AS "module_id: ModuleId",
                  classification AS "classification: Classification", created_at, updated_at
             FROM artifacts
            WHERE tenant_id = $1 AND ($2::uuid IS NULL OR project_id = $2) AND ($3::uuid IS NULL OR module_id = $3)
              AND ($4::text IS NULL OR artifact_id > $4)
            ORDER BY artifact_id LIMIT $5"#,
        tenant.as_str(),
        project as Option<ProjectId>,
        module as Option<ModuleId>,
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// A version's place in the newest-first order: its numbers, whether it is a release, when it was
/// recorded, and the version itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Precedence {
    pub major: i64,
    pub minor: i64,
    pub patch: i64,
    pub release: bool,
    pub created_at: DateTime<Utc>,
    pub version: String,
}

impl Precedence {
    pub fn of(v: &ArtifactVersion) -> Option<Self> {
        let s = v.semver()?;
        Some(Self {
            major: i64::try_from(s.major).ok()?,
            minor: i64::try_from(s.minor).ok()?,
            patch: i64::try_from(s.patch).ok()?,
            release: s.pre.is_empty(),
            created_at: v.created_at,
            version: v.version.clone(),
        })
    }

    /// As a page cursor.
    pub fn cursor(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(cursor: &str) -> Result<Self> {
        serde_json::from_str(cursor).map_err(|_| Error::bad_input("after", "after is not a cursor this API issued"))
    }
}

pub async fn version(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &ArtifactId,
    version: &str,
) -> Result<Option<ArtifactVersion>> {
    Ok(sqlx::query_as!(
        ArtifactVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version, content_hash,
                  status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id, produced_by_task_id,
                  trace_id, source_blueprint_id, storage_ref, created_at, updated_at, published_at, attributes
             FROM artifact_versions WHERE tenant_id = $1 AND artifact_id = $2 AND version = $3"#,
        tenant.as_str(),
        id as &ArtifactId,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The artifact's published version.
pub async fn published(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId) -> Result<Option<ArtifactVersion>> {
    Ok(sqlx::query_as!(
        ArtifactVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version, content_hash,
                  status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id, produced_by_task_id,
                  trace_id, source_blueprint_id, storage_ref, created_at, updated_at, published_at, attributes
             FROM artifact_versions WHERE tenant_id = $1 AND artifact_id = $2 AND status = 'Published'"#,
        tenant.as_str(),
        id as &ArtifactId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// When retention deleted the artifact's `version`, if it did.
pub async fn expired(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId, version: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar!(
        "SELECT expired_at FROM expired_versions WHERE tenant_id = $1 AND artifact_id = $2 AND version = $3",
        tenant.as_str(),
        id as &ArtifactId,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The storage of the artifact's first version with this content, if any.
pub async fn storage_of(tx: &mut Tx, tenant: &TenantId, id: &ArtifactId, content_hash: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT storage_ref FROM artifact_versions WHERE tenant_id = $1 AND artifact_id = $2 AND content_hash = $3
          ORDER BY created_at LIMIT 1",
        tenant.as_str(),
        id as &ArtifactId,
        content_hash,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn insert_version(tx: &mut Tx, tenant: &TenantId, v: &NewVersion, storage: &str) -> Result<ArtifactVersion> {
    let number =
        |n: u64| i64::try_from(n).map_err(|_| Error::bad_input("version", "a version's numbers fit in 63 bits"));
    let (major, minor, patch) = (number(v.version.major)?, number(v.version.minor)?, number(v.version.patch)?);
    let version = v.version.to_string();
    sqlx::query_as!(
        ArtifactVersion,
        r#"INSERT INTO artifact_versions
               (tenant_id, artifact_id, version, major, minor, patch, release, content_hash, status,
                produced_by_agent_id, produced_by_skill_id, produced_by_task_id, trace_id, source_blueprint_id,
                storage_ref, attributes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
           RETURNING tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version,
                     content_hash, status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id,
                     produced_by_task_id, trace_id, source_blueprint_id, storage_ref, created_at, updated_at,
                     published_at, attributes"#,
        tenant.as_str(),
        &v.artifact_id as &ArtifactId,
        version,
        major,
        minor,
        patch,
        v.version.pre.is_empty(),
        v.content_hash,
        v.status.as_str(),
        v.produced_by_agent_id,
        v.produced_by_skill_id,
        v.produced_by_task_id,
        v.trace_id,
        v.source_blueprint_id,
        storage,
        v.attributes,
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match e.as_database_error().and_then(|d| d.constraint()) {
        // PostgreSQL measures the stored JSON, which can be longer than the compact form checked before.
        Some("artifact_versions_attributes_check") => {
            Error::bad_input("attributes", "attributes are at most 16 KiB of JSON as stored")
        }
        Some("artifact_versions_pkey") => {
            Error::conflict(format!("version {version} of artifact `{}` was recorded meanwhile", v.artifact_id))
        }
        _ => Error::from(e),
    })
}

pub async fn set_status(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &ArtifactId,
    version: &str,
    status: VersionStatus,
) -> Result<ArtifactVersion> {
    Ok(sqlx::query_as!(
        ArtifactVersion,
        r#"UPDATE artifact_versions
              SET status = $4, updated_at = now(),
                  published_at = CASE WHEN $4 = 'Published' THEN now() ELSE published_at END
            WHERE tenant_id = $1 AND artifact_id = $2 AND version = $3
           RETURNING tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version,
                     content_hash, status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id,
                     produced_by_task_id, trace_id, source_blueprint_id, storage_ref, created_at, updated_at,
                     published_at, attributes"#,
        tenant.as_str(),
        id as &ArtifactId,
        version,
        status.as_str(),
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The artifact's versions newest first (in `statuses` only, when given), after `after`, at most `limit`.
pub async fn versions(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &ArtifactId,
    statuses: Option<&[VersionStatus]>,
    after: Option<&Precedence>,
    limit: i64,
) -> Result<Vec<ArtifactVersion>> {
    let statuses: Option<Vec<String>> = statuses.map(|s| s.iter().map(|s| s.as_str().to_owned()).collect());
    let rows = sqlx::query_as!(
        ArtifactVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version, content_hash,
                  status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id, produced_by_task_id,
                  trace_id, source_blueprint_id, storage_ref, created_at, updated_at, published_at, attributes
             FROM artifact_versions
            WHERE tenant_id = $1 AND artifact_id = $2 AND ($3::text[] IS NULL OR status = ANY($3))
              AND ($4::bigint IS NULL
                   OR (major, minor, patch, release, created_at, version) < ($4, $5, $6, $7, $8, $9))
            ORDER BY major DESC, minor DESC, patch DESC, release DESC, created_at DESC, version DESC
            LIMIT $10"#,
        tenant.as_str(),
        id as &ArtifactId,
        statuses.as_deref(),
        after.map(|a| a.major),
        after.map_or(0, |a| a.minor),
        after.map_or(0, |a| a.patch),
        after.is_some_and(|a| a.release),
        after.map_or_else(Utc::now, |a| a.created_at),
        after.map_or("", |a| a.version.as_str()),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows)
}

/// A page of the artifact's released (published or superseded) versions, newest first.
pub async fn released_page(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &ArtifactId,
    after: Option<&Precedence>,
    limit: i64,
) -> Result<Vec<ArtifactVersion>> {
    versions(tx, tenant, id, Some(&[VersionStatus::Published, VersionStatus::Superseded]), after, limit).await
}

/// The versions each of `tasks` produced (at most 100 a task, as workflow takes), in (task, artifact,
/// version) order.
pub async fn of_tasks(tx: &mut Tx, tenant: &TenantId, tasks: &[uuid::Uuid]) -> Result<Vec<ArtifactVersion>> {
    Ok(sqlx::query_as!(
        ArtifactVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", artifact_id AS "artifact_id: ArtifactId", version, content_hash,
                  status AS "status: VersionStatus", produced_by_agent_id, produced_by_skill_id, produced_by_task_id,
                  trace_id, source_blueprint_id, storage_ref, created_at, updated_at, published_at, attributes
             FROM artifact_versions
            WHERE tenant_id = $1 AND produced_by_task_id = ANY($2)
            ORDER BY produced_by_task_id, artifact_id, version LIMIT $3"#,
        tenant.as_str(),
        tasks,
        (tasks.len() as i64).saturating_mul(100),
    )
    .fetch_all(&mut **tx)
    .await?)
}
