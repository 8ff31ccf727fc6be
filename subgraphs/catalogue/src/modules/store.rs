//! Modules' SQL.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;

use super::filter::Compiled;
use super::Module;
use crate::ids::{ModuleId, ProjectId};

pub struct NewModule<'a> {
    pub module_id: ModuleId,
    pub project_id: ProjectId,
    pub name: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub owner: &'a str,
    pub tags: &'a [String],
    pub metadata: &'a Value,
}

pub async fn insert(tx: &mut Tx, tenant: &TenantId, m: &NewModule<'_>) -> Result<Module> {
    sqlx::query_as!(
        Module,
        // The module's rank in the tenant's build order (`graph`) comes from the `modules_ranked` trigger.
        r#"INSERT INTO modules (tenant_id, module_id, project_id, name, version, kind, owner, tags, metadata)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                     metadata, created_at, updated_at"#,
        tenant.as_str(),
        m.module_id as ModuleId,
        m.project_id as ProjectId,
        m.name,
        m.version,
        m.kind,
        m.owner,
        m.tags,
        m.metadata,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("modules_name_key", || Error::conflict(format!("the project already has a module `{}`", m.name)))
}

pub async fn update(tx: &mut Tx, tenant: &TenantId, m: &Module) -> Result<Module> {
    Ok(sqlx::query_as!(
        Module,
        r#"UPDATE modules SET version = $3, kind = $4, owner = $5, tags = $6, metadata = $7, updated_at = now()
           WHERE tenant_id = $1 AND module_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                     metadata, created_at, updated_at"#,
        tenant.as_str(),
        m.module_id as ModuleId,
        m.version,
        m.kind,
        m.owner,
        &m.tags,
        m.metadata,
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The module as it is (no lock: under the tenant's graph lock, or before locking its project).
pub async fn get(tx: &mut Tx, tenant: &TenantId, id: ModuleId) -> Result<Option<Module>> {
    Ok(sqlx::query_as!(
        Module,
        r#"SELECT tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                  metadata, created_at, updated_at
           FROM modules WHERE tenant_id = $1 AND module_id = $2"#,
        tenant.as_str(),
        id as ModuleId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: ModuleId) -> Result<Option<Module>> {
    Ok(sqlx::query_as!(
        Module,
        r#"SELECT tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                  metadata, created_at, updated_at
           FROM modules WHERE tenant_id = $1 AND module_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as ModuleId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn delete(tx: &mut Tx, tenant: &TenantId, id: ModuleId) -> Result<()> {
    sqlx::query!("DELETE FROM dependencies WHERE tenant_id = $1 AND from_module = $2", tenant.as_str(), id as ModuleId)
        .execute(&mut **tx)
        .await?;
    sqlx::query!("DELETE FROM modules WHERE tenant_id = $1 AND module_id = $2", tenant.as_str(), id as ModuleId)
        .execute(&mut **tx)
        .await
        .on_constraint("dependencies_to_fkey", || Error::conflict("other modules depend on this module"))?;
    Ok(())
}

/// Modules by id within `tenants` (`None`: every tenant the transaction may see).
pub async fn by_ids(tx: &mut Tx, tenants: Option<&[String]>, ids: &[ModuleId]) -> Result<Vec<Module>> {
    Ok(sqlx::query_as!(
        Module,
        r#"SELECT tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                  metadata, created_at, updated_at
           FROM modules WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND module_id = ANY($2)"#,
        tenants,
        ids as &[ModuleId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Records the object paths a module's metadata has (for the unknown-path check of filters).
pub async fn record_paths(tx: &mut Tx, tenant: &TenantId, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO module_metadata_paths (tenant_id, path) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        tenant.as_str(),
        paths,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Which of `paths` some module of the tenant has had.
pub async fn known_paths(tx: &mut Tx, tenant: &TenantId, paths: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT path FROM module_metadata_paths WHERE tenant_id = $1 AND path = ANY($2)"#,
        tenant.as_str(),
        paths,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Plans the rest of the transaction's statements for their actual parameters. The filter statements below
/// switch conditions on and off with `$n IS NULL OR …`; a cached generic plan cannot tell which are on, so it
/// could not use the index of the one that is (PostgreSQL moves to generic plans after five executions).
pub async fn custom_plans(tx: &mut Tx) -> Result<()> {
    sqlx::query_scalar!(r#"SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS "v!""#)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// One page of a tenant's modules matching `f`, in (name, id) order after `after`, optionally in one project.
pub async fn search(
    tx: &mut Tx,
    tenant: &TenantId,
    project: Option<ProjectId>,
    f: &Compiled,
    after: Option<(&str, ModuleId)>,
    limit: i64,
) -> Result<Vec<Module>> {
    Ok(sqlx::query_as!(
        Module,
        r#"SELECT tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                  metadata, created_at, updated_at
           FROM modules m
           WHERE m.tenant_id = $1
             AND ($2::uuid IS NULL OR m.project_id = $2)
             AND ($3::text IS NULL OR m.kind = $3)
             AND ($4::text[] IS NULL OR m.tags @> $4)
             AND ($5::jsonb IS NULL OR m.metadata @> $5)
             AND ($6::jsonb IS NULL OR NOT EXISTS (
                   SELECT 1 FROM jsonb_array_elements($6) c
                   WHERE m.metadata #> ARRAY(SELECT jsonb_array_elements_text(c->'path')) IS DISTINCT FROM c->'value'))
             AND ($7::text IS NULL OR m.name ILIKE $7)
             AND ($8::text IS NULL OR (m.name, m.module_id) > ($8, $9::uuid))
           ORDER BY m.name, m.module_id
           LIMIT $10"#,
        tenant.as_str(),
        project as Option<ProjectId>,
        f.kind,
        f.tags.as_deref(),
        f.contains.as_ref().map(|c| serde_json::from_str::<Value>(c).unwrap_or(Value::Null)),
        f.equals.as_ref().map(|c| serde_json::from_str::<Value>(c).unwrap_or(Value::Null)),
        f.search,
        after.map(|a| a.0),
        after.map(|a| a.1) as Option<ModuleId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Up to `limit` modules of each project matching `f`, in (name, id) order after `after`.
pub async fn page_of_projects(
    tx: &mut Tx,
    tenants: Option<&[String]>,
    projects: &[ProjectId],
    f: &Compiled,
    after: Option<(&str, ModuleId)>,
    limit: i64,
) -> Result<Vec<Module>> {
    Ok(sqlx::query_as!(
        Module,
        r#"SELECT tenant_id AS "tenant_id!: TenantId", module_id AS "module_id!", project_id AS "project_id!",
                  name AS "name!", version AS "version!", kind AS "kind!", owner AS "owner!", tags AS "tags!",
                  metadata AS "metadata!", created_at AS "created_at!", updated_at AS "updated_at!"
           FROM (SELECT m.*, row_number() OVER (PARTITION BY m.project_id ORDER BY m.name, m.module_id) AS n
                 FROM modules m
                 WHERE ($1::text[] IS NULL OR m.tenant_id = ANY($1)) AND m.project_id = ANY($2)
                   AND ($3::text IS NULL OR m.kind = $3)
                   AND ($4::text[] IS NULL OR m.tags @> $4)
                   AND ($5::jsonb IS NULL OR m.metadata @> $5)
                   AND ($6::jsonb IS NULL OR NOT EXISTS (
                         SELECT 1 FROM jsonb_array_elements($6) c
                         WHERE m.metadata #> ARRAY(SELECT jsonb_array_elements_text(c->'path'))
                               IS DISTINCT FROM c->'value'))
                   AND ($7::text IS NULL OR m.name ILIKE $7)
                   AND ($8::text IS NULL OR (m.name, m.module_id) > ($8, $9::uuid))) ranked
           WHERE n <= $10
           ORDER BY project_id, name, module_id"#,
        tenants,
        projects as &[ProjectId],
        f.kind,
        f.tags.as_deref(),
        f.contains.as_ref().map(|c| serde_json::from_str::<Value>(c).unwrap_or(Value::Null)),
        f.equals.as_ref().map(|c| serde_json::from_str::<Value>(c).unwrap_or(Value::Null)),
        f.search,
        after.map(|a| a.0),
        after.map(|a| a.1) as Option<ModuleId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}
