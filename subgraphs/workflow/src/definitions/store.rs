//! Definitions' and known skills' SQL. Every statement names the tenant (a tenant also reads the
//! platform's rows, which row-level security shows it).

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use sqlx::types::Json;

use super::spec::Spec;
use super::{Definition, DefinitionStatus, NewDefinition};

struct Row {
    tenant_id: TenantId,
    key: String,
    version: i32,
    name: String,
    description: String,
    spec: Json<Spec>,
    content_hash: String,
    status: DefinitionStatus,
    published_at: chrono::DateTime<chrono::Utc>,
    published_by: Option<String>,
    deprecated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Row> for Definition {
    fn from(r: Row) -> Self {
        Definition {
            tenant_id: r.tenant_id,
            key: r.key,
            version: r.version,
            name: r.name,
            description: r.description,
            spec: r.spec.0,
            content_hash: r.content_hash,
            status: r.status,
            published_at: r.published_at,
            published_by: r.published_by,
            deprecated_at: r.deprecated_at,
        }
    }
}

pub async fn insert(
    tx: &mut Tx,
    owner: &TenantId,
    d: &NewDefinition,
    version: i32,
    hash: &str,
    by: Option<&str>,
) -> Result<Definition> {
    let row = sqlx::query_as!(
        Row,
        r#"INSERT INTO workflow_definitions (tenant_id, key, version, name, description, spec, content_hash, published_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING tenant_id AS "tenant_id: TenantId", key, version, name, description,
                     spec AS "spec: Json<Spec>", content_hash, status AS "status: DefinitionStatus",
                     published_at, published_by, deprecated_at"#,
        owner.as_str(),
        d.key,
        version,
        d.name,
        d.description,
        Json(&d.spec) as _,
        hash,
        by,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("workflow_definitions_pkey", || {
        Error::conflict(format!("workflow definition `{}` version {version} exists", d.key))
    })?;
    Ok(row.into())
}

/// The latest version of `owner`'s `key`, deprecated or not.
pub async fn latest(tx: &mut Tx, owner: &TenantId, key: &str) -> Result<Option<Definition>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT tenant_id AS "tenant_id: TenantId", key, version, name, description,
                  spec AS "spec: Json<Spec>", content_hash, status AS "status: DefinitionStatus",
                  published_at, published_by, deprecated_at
             FROM workflow_definitions WHERE tenant_id = $1 AND key = $2
            ORDER BY version DESC LIMIT 1"#,
        owner.as_str(),
        key,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn get(tx: &mut Tx, owner: &TenantId, key: &str, version: i32) -> Result<Option<Definition>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT tenant_id AS "tenant_id: TenantId", key, version, name, description,
                  spec AS "spec: Json<Spec>", content_hash, status AS "status: DefinitionStatus",
                  published_at, published_by, deprecated_at
             FROM workflow_definitions WHERE tenant_id = $1 AND key = $2 AND version = $3"#,
        owner.as_str(),
        key,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

/// The latest version of each of `owner`'s keys after `after` in key order, at most `limit`.
pub async fn page(tx: &mut Tx, owner: &TenantId, after: Option<&str>, limit: i64) -> Result<Vec<Definition>> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT DISTINCT ON (key) tenant_id AS "tenant_id: TenantId", key, version, name, description,
                  spec AS "spec: Json<Spec>", content_hash, status AS "status: DefinitionStatus",
                  published_at, published_by, deprecated_at
             FROM workflow_definitions
            WHERE tenant_id = $1 AND ($2::text IS NULL OR key > $2)
            ORDER BY key, version DESC LIMIT $3"#,
        owner.as_str(),
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn deprecate(tx: &mut Tx, owner: &TenantId, key: &str, version: i32) -> Result<Definition> {
    let row = sqlx::query_as!(
        Row,
        r#"UPDATE workflow_definitions SET status = 'Deprecated', deprecated_at = now()
            WHERE tenant_id = $1 AND key = $2 AND version = $3
           RETURNING tenant_id AS "tenant_id: TenantId", key, version, name, description,
                     spec AS "spec: Json<Spec>", content_hash, status AS "status: DefinitionStatus",
                     published_at, published_by, deprecated_at"#,
        owner.as_str(),
        key,
        version,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// The published, not deprecated, versions of skill `key` the tenant may use: its own and the platform's.
pub async fn skill_versions(tx: &mut Tx, tenant: &TenantId, key: &str) -> Result<Vec<String>> {
    let platform = TenantId::platform();
    Ok(sqlx::query_scalar!(
        "SELECT version FROM workflow_skills
          WHERE tenant_id IN ($1, $2) AND skill_key = $3 AND NOT deprecated ORDER BY version",
        tenant.as_str(),
        platform.as_str(),
        key,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Records a skill version catalogue published (or, with `deprecated`, deprecated) for `owner`.
pub async fn record_skill(tx: &mut Tx, owner: &TenantId, key: &str, version: &str, deprecated: bool) -> Result<()> {
    sqlx::query!(
        "INSERT INTO workflow_skills (tenant_id, skill_key, version, deprecated) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, skill_key, version)
         DO UPDATE SET deprecated = workflow_skills.deprecated OR EXCLUDED.deprecated, updated_at = now()",
        owner.as_str(),
        key,
        version,
        deprecated,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
