//! Projects' SQL. Every statement names the tenant; row-level security holds it to the transaction's.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::{NewProject, Project, ProjectStatus};
use crate::ids::{PrincipalId, ProjectId};

/// Inserts the project unless the tenant has one with its slug already (then `None`).
pub async fn insert_if_absent(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ProjectId,
    p: &NewProject,
) -> Result<Option<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"INSERT INTO projects (tenant_id, project_id, slug, name, description, owner_principal_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, slug) DO NOTHING
           RETURNING tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                     status AS "status: ProjectStatus", created_at, updated_at, archived_at"#,
        tenant.as_str(),
        id as ProjectId,
        p.slug,
        p.name,
        p.description,
        p.owner_principal_id as Option<PrincipalId>,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn insert(tx: &mut Tx, tenant: &TenantId, id: ProjectId, p: &NewProject) -> Result<Project> {
    sqlx::query_as!(
        Project,
        r#"INSERT INTO projects (tenant_id, project_id, slug, name, description, owner_principal_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                     status AS "status: ProjectStatus", created_at, updated_at, archived_at"#,
        tenant.as_str(),
        id as ProjectId,
        p.slug,
        p.name,
        p.description,
        p.owner_principal_id as Option<PrincipalId>,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("projects_slug_key", || Error::conflict(format!("project slug `{}` is taken", p.slug)))
}

pub async fn by_slug(tx: &mut Tx, tenant: &TenantId, slug: &str) -> Result<Option<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                  status AS "status: ProjectStatus", created_at, updated_at, archived_at
           FROM projects WHERE tenant_id = $1 AND slug = $2"#,
        tenant.as_str(),
        slug,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Projects by id within `tenants` (`None`: every tenant the transaction may see, for operators).
pub async fn by_ids(tx: &mut Tx, tenants: Option<&[String]>, ids: &[ProjectId]) -> Result<Vec<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                  status AS "status: ProjectStatus", created_at, updated_at, archived_at
           FROM projects WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND project_id = ANY($2)"#,
        tenants,
        ids as &[ProjectId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The project, share-locked: changes inside it may go on side by side, while archiving waits for them.
pub async fn share(tx: &mut Tx, tenant: &TenantId, id: ProjectId) -> Result<Option<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                  status AS "status: ProjectStatus", created_at, updated_at, archived_at
           FROM projects WHERE tenant_id = $1 AND project_id = $2 FOR SHARE"#,
        tenant.as_str(),
        id as ProjectId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The project, locked for a change to the project itself.
pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: ProjectId) -> Result<Option<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                  status AS "status: ProjectStatus", created_at, updated_at, archived_at
           FROM projects WHERE tenant_id = $1 AND project_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as ProjectId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Up to `limit` projects of each tenant in slug order after `after`, archived ones only when asked.
pub async fn page_of_tenants(
    tx: &mut Tx,
    tenants: &[String],
    after: Option<&str>,
    limit: i64,
    include_archived: bool,
) -> Result<Vec<Project>> {
    Ok(sqlx::query_as!(
        Project,
        r#"SELECT tenant_id AS "tenant_id!: TenantId", project_id AS "project_id!", slug AS "slug!", name AS "name!",
                  description AS "description!", owner_principal_id AS "owner_principal_id: PrincipalId", status AS "status!: ProjectStatus",
                  created_at AS "created_at!", updated_at AS "updated_at!", archived_at
           FROM (SELECT p.*, row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.slug) AS n
                 FROM projects p
                 WHERE p.tenant_id = ANY($1) AND ($2::text IS NULL OR p.slug > $2)
                   AND ($3 OR p.status = 'Active')) ranked
           WHERE n <= $4
           ORDER BY tenant_id, slug"#,
        tenants,
        after,
        include_archived,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn update(tx: &mut Tx, tenant: &TenantId, p: &Project) -> Result<Project> {
    sqlx::query_as!(
        Project,
        r#"UPDATE projects SET name = $3, description = $4, owner_principal_id = $5, status = $6,
                  archived_at = $7, updated_at = now()
           WHERE tenant_id = $1 AND project_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", project_id, slug, name, description,
                  owner_principal_id AS "owner_principal_id: PrincipalId",
                     status AS "status: ProjectStatus", created_at, updated_at, archived_at"#,
        tenant.as_str(),
        p.project_id as ProjectId,
        p.name,
        p.description,
        p.owner_principal_id as Option<PrincipalId>,
        p.status.as_str(),
        p.archived_at,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("projects_read_only", || Error::conflict(format!("project `{}` is archived and read-only", p.slug)))
}
