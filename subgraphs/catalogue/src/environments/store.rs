//! Environments' SQL.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;

use super::{ChangeStatus, Environment, EnvironmentChange, EnvironmentName};
use crate::ids::{ChangeId, ProjectId};

/// The four environments of a new project, each with an empty configuration.
pub async fn create_all(tx: &mut Tx, tenant: &TenantId, project_id: ProjectId) -> Result<()> {
    let names: Vec<&str> = EnvironmentName::ALL.iter().map(|e| e.as_str()).collect();
    sqlx::query!(
        "INSERT INTO environments (tenant_id, project_id, name) SELECT $1, $2, unnest($3::text[])",
        tenant.as_str(),
        project_id as ProjectId,
        &names as &[&str],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn get(
    tx: &mut Tx,
    tenant: &TenantId,
    project_id: ProjectId,
    name: EnvironmentName,
) -> Result<Option<Environment>> {
    Ok(sqlx::query_as!(
        Environment,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, name AS "name: EnvironmentName", config, version,
                  updated_at
           FROM environments WHERE tenant_id = $1 AND project_id = $2 AND name = $3"#,
        tenant.as_str(),
        project_id as ProjectId,
        name.as_str(),
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn lock(
    tx: &mut Tx,
    tenant: &TenantId,
    project_id: ProjectId,
    name: EnvironmentName,
) -> Result<Option<Environment>> {
    Ok(sqlx::query_as!(
        Environment,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, name AS "name: EnvironmentName", config, version,
                  updated_at
           FROM environments WHERE tenant_id = $1 AND project_id = $2 AND name = $3 FOR UPDATE"#,
        tenant.as_str(),
        project_id as ProjectId,
        name.as_str(),
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Every environment of the given projects (within `tenants`; `None` for operators).
pub async fn of_projects(tx: &mut Tx, tenants: Option<&[String]>, projects: &[ProjectId]) -> Result<Vec<Environment>> {
    Ok(sqlx::query_as!(
        Environment,
        r#"SELECT tenant_id AS "tenant_id: TenantId", project_id, name AS "name: EnvironmentName", config, version,
                  updated_at
           FROM environments
           WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND project_id = ANY($2)
           ORDER BY project_id, array_position(ARRAY['dev', 'test', 'staging', 'prod'], name)"#,
        tenants,
        projects as &[ProjectId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn set_config(
    tx: &mut Tx,
    tenant: &TenantId,
    project_id: ProjectId,
    name: EnvironmentName,
    config: &Value,
) -> Result<Environment> {
    sqlx::query_as!(
        Environment,
        r#"UPDATE environments SET config = $4, version = version + 1, updated_at = now()
           WHERE tenant_id = $1 AND project_id = $2 AND name = $3
           RETURNING tenant_id AS "tenant_id: TenantId", project_id, name AS "name: EnvironmentName", config, version,
                     updated_at"#,
        tenant.as_str(),
        project_id as ProjectId,
        name.as_str(),
        config,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("projects_read_only", || Error::conflict("the project is archived and read-only"))
}

pub struct NewChange<'a> {
    pub change_id: ChangeId,
    pub project_id: ProjectId,
    pub environment: EnvironmentName,
    pub config: &'a Value,
    pub reason: &'a str,
    pub requested_by: &'a str,
    pub status: ChangeStatus,
    pub base_version: i32,
    /// The `RequestApproval` command's event id, for a change that waits for governance.
    pub approval_request: Option<&'a str>,
}

pub async fn insert_change(tx: &mut Tx, tenant: &TenantId, c: &NewChange<'_>) -> Result<EnvironmentChange> {
    sqlx::query_as!(
        EnvironmentChange,
        r#"INSERT INTO environment_changes
               (tenant_id, change_id, project_id, environment, config, reason, requested_by, status, base_version,
                approval_request)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           RETURNING tenant_id AS "tenant_id: TenantId", change_id, project_id,
                     environment AS "environment: EnvironmentName", config, reason, requested_by,
                     status AS "status: ChangeStatus", base_version, applied_version, decided_by, decision_note,
                     requested_at, decided_at"#,
        tenant.as_str(),
        c.change_id as ChangeId,
        c.project_id as ProjectId,
        c.environment.as_str(),
        c.config,
        c.reason,
        c.requested_by,
        c.status.as_str(),
        c.base_version,
        c.approval_request,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("environment_changes_one_pending", || {
        Error::conflict(format!(
            "a change to {} is already waiting for approval; it must be decided first",
            c.environment.as_str()
        ))
    })
}

/// The event id of the `RequestApproval` command a change waits on (`None` for a change recorded before it
/// was kept, or one that never waited).
pub async fn approval_request_of(tx: &mut Tx, tenant: &TenantId, change_id: ChangeId) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT approval_request FROM environment_changes WHERE tenant_id = $1 AND change_id = $2",
        tenant.as_str(),
        change_id as ChangeId,
    )
    .fetch_optional(&mut **tx)
    .await?
    .flatten())
}

/// A change, locked, for deciding it.
pub async fn lock_change(tx: &mut Tx, tenant: &TenantId, change_id: ChangeId) -> Result<Option<EnvironmentChange>> {
    Ok(sqlx::query_as!(
        EnvironmentChange,
        r#"SELECT tenant_id AS "tenant_id: TenantId", change_id, project_id,
                  environment AS "environment: EnvironmentName", config, reason, requested_by,
                  status AS "status: ChangeStatus", base_version, applied_version, decided_by, decision_note,
                  requested_at, decided_at
           FROM environment_changes WHERE tenant_id = $1 AND change_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        change_id as ChangeId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn decide(
    tx: &mut Tx,
    tenant: &TenantId,
    change_id: ChangeId,
    status: ChangeStatus,
    applied_version: Option<i32>,
    decided_by: Option<&str>,
    note: Option<&str>,
) -> Result<EnvironmentChange> {
    Ok(sqlx::query_as!(
        EnvironmentChange,
        r#"UPDATE environment_changes
           SET status = $3, applied_version = $4, decided_by = $5, decision_note = $6, decided_at = now()
           WHERE tenant_id = $1 AND change_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", change_id, project_id,
                     environment AS "environment: EnvironmentName", config, reason, requested_by,
                     status AS "status: ChangeStatus", base_version, applied_version, decided_by, decision_note,
                     requested_at, decided_at"#,
        tenant.as_str(),
        change_id as ChangeId,
        status.as_str(),
        applied_version,
        decided_by,
        note,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn pending_of_project(
    tx: &mut Tx,
    tenant: &TenantId,
    project_id: ProjectId,
) -> Result<Vec<EnvironmentChange>> {
    Ok(sqlx::query_as!(
        EnvironmentChange,
        r#"SELECT tenant_id AS "tenant_id: TenantId", change_id, project_id,
                  environment AS "environment: EnvironmentName", config, reason, requested_by,
                  status AS "status: ChangeStatus", base_version, applied_version, decided_by, decision_note,
                  requested_at, decided_at
           FROM environment_changes WHERE tenant_id = $1 AND project_id = $2 AND status = 'Pending'
           FOR UPDATE"#,
        tenant.as_str(),
        project_id as ProjectId,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The newest changes of one environment first.
pub async fn changes_of(
    tx: &mut Tx,
    tenant: &TenantId,
    project_id: ProjectId,
    name: EnvironmentName,
    limit: i64,
) -> Result<Vec<EnvironmentChange>> {
    Ok(sqlx::query_as!(
        EnvironmentChange,
        r#"SELECT tenant_id AS "tenant_id: TenantId", change_id, project_id,
                  environment AS "environment: EnvironmentName", config, reason, requested_by,
                  status AS "status: ChangeStatus", base_version, applied_version, decided_by, decision_note,
                  requested_at, decided_at
           FROM environment_changes WHERE tenant_id = $1 AND project_id = $2 AND environment = $3
           ORDER BY requested_at DESC, change_id DESC LIMIT $4"#,
        tenant.as_str(),
        project_id as ProjectId,
        name.as_str(),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}
