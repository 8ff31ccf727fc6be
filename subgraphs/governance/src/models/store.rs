//! Model policies' SQL.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::{ModelAllowance, ModelPolicy};
use crate::ids::{ModelPolicyId, ProjectRef};
use crate::policies::PolicyStatus;

/// A draft to insert.
pub struct Draft<'a> {
    pub name: &'a str,
    pub project_id: Option<ProjectRef>,
    pub skill_key: Option<&'a str>,
    pub allowed: &'a [ModelAllowance],
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i64>,
    pub by: &'a str,
}

pub async fn insert_next(tx: &mut Tx, tenant: &TenantId, id: ModelPolicyId, d: &Draft<'_>) -> Result<ModelPolicy> {
    sqlx::query_as!(
        ModelPolicy,
        r#"INSERT INTO model_policies (tenant_id, model_policy_id, name, version, project_id, skill_key, allowed,
                                       max_tokens_per_task, max_cost_per_day_cents, created_by)
           SELECT $1, $2, $3, COALESCE(max(version), 0) + 1, $4, $5, $6, $7, $8, $9
           FROM model_policies WHERE tenant_id = $1 AND name = $3
           RETURNING tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                     allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                     max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        id as ModelPolicyId,
        d.name,
        d.project_id as Option<ProjectRef>,
        d.skill_key,
        serde_json::to_value(d.allowed).map_err(|e| Error::internal(e))?,
        d.max_tokens_per_task,
        d.max_cost_per_day_cents,
        d.by,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("model_policies_name_version_key", || {
        Error::conflict(format!("another version of model policy `{}` was drafted at the same time; try again", d.name))
    })
}

pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: ModelPolicyId) -> Result<Option<ModelPolicy>> {
    Ok(sqlx::query_as!(
        ModelPolicy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                  allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                  max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM model_policies WHERE tenant_id = $1 AND model_policy_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as ModelPolicyId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn set_status(tx: &mut Tx, tenant: &TenantId, id: ModelPolicyId, to: PolicyStatus) -> Result<ModelPolicy> {
    sqlx::query_as!(
        ModelPolicy,
        r#"UPDATE model_policies SET status = $3, updated_at = now(),
                  published_at = CASE WHEN $3 = 'Published' THEN now() ELSE published_at END,
                  deprecated_at = CASE WHEN $3 = 'Deprecated' THEN now() ELSE deprecated_at END
           WHERE tenant_id = $1 AND model_policy_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                     allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                     max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        id as ModelPolicyId,
        to.as_str(),
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("model_policies_immutable", || Error::conflict("the model policy is immutable"))
}

/// The published policies whose scope can cover a task in `project` with `skill`.
pub async fn in_force(
    tx: &mut Tx,
    tenant: &TenantId,
    project: Option<ProjectRef>,
    skill: Option<&str>,
) -> Result<Vec<ModelPolicy>> {
    Ok(sqlx::query_as!(
        ModelPolicy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                  allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                  max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM model_policies
           WHERE tenant_id = $1 AND status = 'Published'
             AND (project_id IS NULL OR project_id = $2) AND (skill_key IS NULL OR skill_key = $3)"#,
        tenant.as_str(),
        project as Option<ProjectRef>,
        skill,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Model policies in (name, version) order after `after`, optionally one name's.
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    name: Option<&str>,
    after: Option<(&str, i32)>,
    limit: i64,
) -> Result<Vec<ModelPolicy>> {
    Ok(sqlx::query_as!(
        ModelPolicy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                  allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                  max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM model_policies
           WHERE tenant_id = $1 AND ($2::text IS NULL OR name = $2)
             AND ($3::text IS NULL OR (name, version) > ($3, $4))
           ORDER BY name, version LIMIT $5"#,
        tenant.as_str(),
        name,
        after.map(|a| a.0),
        after.map(|a| a.1),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Every tenant's published versions, by tenant (a platform transaction: the operator's re-publication), at
/// most `limit`, after (tenant, policy id) `after`.
pub async fn published_everywhere(
    tx: &mut Tx,
    after: Option<(&str, ModelPolicyId)>,
    limit: i64,
) -> Result<Vec<ModelPolicy>> {
    Ok(sqlx::query_as!(
        ModelPolicy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", model_policy_id, name, version, project_id AS "project_id: ProjectRef", skill_key,
                  allowed AS "allowed: sqlx::types::Json<Vec<ModelAllowance>>", max_tokens_per_task,
                  max_cost_per_day_cents, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM model_policies
          WHERE status = 'Published' AND ($1::text IS NULL OR (tenant_id, model_policy_id) > ($1, $2))
          ORDER BY tenant_id, model_policy_id LIMIT $3"#,
        after.map(|a| a.0),
        after.map(|a| a.1) as Option<ModelPolicyId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}
