//! Pools' and tasks' SQL. Every statement names the tenant.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};
use sqlx::types::Json;

use super::Pool;
use crate::events::ArtifactRef;
use crate::ids::{InstanceId, TaskId};
use kernel::contracts::governance::models::Policy;

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    #[graphql(name = "AgentTaskStatus")]
    pub enum TaskStatus {
        /// An agent holds it (under the lease with `fencingToken`).
        Assigned = "Assigned",
        /// Waiting for an agent: none was free, or its lease was lost.
        Unassigned = "Unassigned",
        Completed = "Completed",
        Failed = "Failed",
        /// Its step stopped (timed out, failed elsewhere, the instance ended or was cancelled).
        Cancelled = "Cancelled",
    }
}

/// An agent task, as its index keeps it.
#[derive(Clone, Debug, PartialEq, async_graphql::SimpleObject)]
#[graphql(name = "AgentTask", complex)]
pub struct TaskRow {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    pub id: TaskId,
    pub instance_id: InstanceId,
    pub step_id: String,
    pub attempt: i32,
    /// Whether it undoes its step (a failure unwinding the instance).
    pub compensation: bool,
    pub skill: String,
    pub pool: String,
    pub agent_id: Option<String>,
    /// The lease's resource (`pool:<pool>/<agent>/<slot>`).
    #[graphql(skip)]
    pub resource: Option<String>,
    /// The token the holder reports with; a report with an older one is refused.
    pub fencing_token: Option<i64>,
    pub status: TaskStatus,
    pub percent: i16,
    pub message: String,
    #[graphql(skip)]
    pub outputs: Json<Vec<ArtifactRef>>,
    /// Why it failed.
    pub reason: Option<String>,
    /// The model policies that decided for it when it was first offered: its completion is checked
    /// against them (none while it waits for a policy; `None` for a task offered before workflow kept them,
    /// which is not checked).
    #[graphql(skip)]
    pub model_policies: Option<Json<Vec<Policy>>>,
    pub assigned_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_graphql::ComplexObject]
impl TaskRow {
    /// What it produced (artifact versions lineage knows by id), once completed.
    async fn outputs(&self) -> &[ArtifactRef] {
        &self.outputs.0
    }

    /// The model policies its agent works under (governance's, as they stood when the task was first
    /// offered): the models they allow and their token limit. A completion outside them fails the attempt.
    async fn model_policies(&self) -> Vec<super::models::TaskModelPolicy> {
        self.model_policies.iter().flat_map(|p| p.0.iter()).map(Into::into).collect()
    }
}

pub async fn pool(tx: &mut Tx, tenant: &TenantId, pool: &str) -> Result<Option<Pool>> {
    Ok(sqlx::query_as!(
        Pool,
        r#"SELECT tenant_id AS "tenant_id: TenantId", pool, agents, concurrency, lease_ttl_seconds, updated_at
             FROM agent_pools WHERE tenant_id = $1 AND pool = $2"#,
        tenant.as_str(),
        pool,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn pools(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Pool>> {
    Ok(sqlx::query_as!(
        Pool,
        r#"SELECT tenant_id AS "tenant_id: TenantId", pool, agents, concurrency, lease_ttl_seconds, updated_at
             FROM agent_pools WHERE tenant_id = $1 ORDER BY pool LIMIT 1000"#,
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn configure(
    tx: &mut Tx,
    tenant: &TenantId,
    pool: &str,
    agents: &[String],
    concurrency: i32,
    lease_ttl_seconds: i32,
) -> Result<Pool> {
    Ok(sqlx::query_as!(
        Pool,
        r#"INSERT INTO agent_pools (tenant_id, pool, agents, concurrency, lease_ttl_seconds) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, pool) DO UPDATE
              SET agents = EXCLUDED.agents, concurrency = EXCLUDED.concurrency,
                  lease_ttl_seconds = EXCLUDED.lease_ttl_seconds, updated_at = now()
           RETURNING tenant_id AS "tenant_id: TenantId", pool, agents, concurrency, lease_ttl_seconds, updated_at"#,
        tenant.as_str(),
        pool,
        agents,
        concurrency,
        lease_ttl_seconds,
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// A task's row.
pub async fn task(tx: &mut Tx, tenant: &TenantId, id: TaskId) -> Result<Option<TaskRow>> {
    Ok(sqlx::query_as!(
        TaskRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", task_id AS "id: TaskId", instance_id AS "instance_id: InstanceId",
                  step_id, attempt, compensation, skill, pool, agent_id, resource, fencing_token,
                  status AS "status: TaskStatus", percent, message, outputs AS "outputs: Json<Vec<ArtifactRef>>",
                  reason, model_policies AS "model_policies: Json<Vec<Policy>>", assigned_at, updated_at
             FROM agent_tasks WHERE tenant_id = $1 AND task_id = $2"#,
        tenant.as_str(),
        id as TaskId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// An instance's tasks, oldest first (at most 1,000).
pub async fn of_instance(tx: &mut Tx, tenant: &TenantId, instance: InstanceId) -> Result<Vec<TaskRow>> {
    Ok(sqlx::query_as!(
        TaskRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", task_id AS "id: TaskId", instance_id AS "instance_id: InstanceId",
                  step_id, attempt, compensation, skill, pool, agent_id, resource, fencing_token,
                  status AS "status: TaskStatus", percent, message, outputs AS "outputs: Json<Vec<ArtifactRef>>",
                  reason, model_policies AS "model_policies: Json<Vec<Policy>>", assigned_at, updated_at
             FROM agent_tasks WHERE tenant_id = $1 AND instance_id = $2 ORDER BY assigned_at, task_id LIMIT 1000"#,
        tenant.as_str(),
        instance as InstanceId,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// An agent's tasks in `status` (all of them when `None`), oldest first, after the task `after`.
pub async fn of_agent(
    tx: &mut Tx,
    tenant: &TenantId,
    pool: &str,
    agent: &str,
    status: Option<TaskStatus>,
    limit: i64,
) -> Result<Vec<TaskRow>> {
    Ok(sqlx::query_as!(
        TaskRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", task_id AS "id: TaskId", instance_id AS "instance_id: InstanceId",
                  step_id, attempt, compensation, skill, pool, agent_id, resource, fencing_token,
                  status AS "status: TaskStatus", percent, message, outputs AS "outputs: Json<Vec<ArtifactRef>>",
                  reason, model_policies AS "model_policies: Json<Vec<Policy>>", assigned_at, updated_at
             FROM agent_tasks
            WHERE tenant_id = $1 AND pool = $2 AND agent_id = $3 AND ($4::text IS NULL OR status = $4)
            ORDER BY assigned_at, task_id LIMIT $5"#,
        tenant.as_str(),
        pool,
        agent,
        status.map(|s| s.as_str()),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// What a new holder of a task is.
pub struct Holder<'a> {
    pub agent: &'a str,
    pub resource: &'a str,
    pub token: i64,
}

/// A task as its step's run offers it to the pool.
pub struct NewTask<'a> {
    pub id: TaskId,
    pub instance: InstanceId,
    pub step: &'a str,
    pub attempt: u32,
    pub compensation: bool,
    pub skill: &'a str,
    pub pool: &'a str,
    /// Its terms (kept from the first offer that found any: a task leased again keeps them); `None` for a
    /// task offered before workflow kept terms.
    pub model_policies: Option<&'a [Policy]>,
}

/// Records the task (new, or leased again): held by `holder`, or waiting for an agent.
pub async fn assigned(tx: &mut Tx, tenant: &TenantId, task: &NewTask<'_>, holder: Option<Holder<'_>>) -> Result<()> {
    let status = if holder.is_some() { TaskStatus::Assigned } else { TaskStatus::Unassigned };
    sqlx::query!(
        "INSERT INTO agent_tasks (tenant_id, task_id, instance_id, step_id, attempt, compensation, skill, pool,
                                  agent_id, resource, fencing_token, status, model_policies)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (tenant_id, task_id) DO UPDATE
            SET agent_id = EXCLUDED.agent_id, resource = EXCLUDED.resource, fencing_token = EXCLUDED.fencing_token,
                status = EXCLUDED.status, reason = NULL, updated_at = now(),
                model_policies = CASE WHEN agent_tasks.model_policies = '[]' THEN EXCLUDED.model_policies
                                      ELSE agent_tasks.model_policies END",
        tenant.as_str(),
        task.id as TaskId,
        task.instance as InstanceId,
        task.step,
        i32::try_from(task.attempt).unwrap_or(i32::MAX),
        task.compensation,
        task.skill,
        task.pool,
        holder.as_ref().map(|h| h.agent),
        holder.as_ref().map(|h| h.resource),
        holder.as_ref().map(|h| h.token),
        status.as_str(),
        task.model_policies.map(Json) as _,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A task waiting for an agent, and why.
pub async fn waiting(tx: &mut Tx, tenant: &TenantId, id: TaskId, reason: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE agent_tasks SET reason = $3, updated_at = now() WHERE tenant_id = $1 AND task_id = $2",
        tenant.as_str(),
        id as TaskId,
        reason,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn progressed(tx: &mut Tx, tenant: &TenantId, id: TaskId, percent: i16, message: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE agent_tasks SET percent = $3, message = $4, updated_at = now() WHERE tenant_id = $1 AND task_id = $2",
        tenant.as_str(),
        id as TaskId,
        percent,
        message,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The task ended: completed (with its outputs) or failed (with why).
pub async fn ended(
    tx: &mut Tx,
    tenant: &TenantId,
    id: TaskId,
    status: TaskStatus,
    outputs: &[ArtifactRef],
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE agent_tasks SET status = $3, outputs = $4, reason = $5, percent = CASE WHEN $3 = 'Completed' THEN 100 ELSE percent END,
                updated_at = now()
          WHERE tenant_id = $1 AND task_id = $2",
        tenant.as_str(),
        id as TaskId,
        status.as_str(),
        Json(outputs) as _,
        reason,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancels the instance's live tasks — of `step` only, when given — and returns the leases they held
/// (resource, task, token), to release.
pub async fn cancel_live(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: InstanceId,
    step: Option<&str>,
    reason: &str,
) -> Result<Vec<(String, TaskId, i64)>> {
    let rows = sqlx::query!(
        r#"UPDATE agent_tasks SET status = 'Cancelled', reason = $4, updated_at = now()
            WHERE tenant_id = $1 AND instance_id = $2 AND ($3::text IS NULL OR step_id = $3)
              AND status IN ('Assigned', 'Unassigned')
           RETURNING resource, task_id AS "task_id: TaskId", fencing_token"#,
        tenant.as_str(),
        instance as InstanceId,
        step,
        reason,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().filter_map(|r| Some((r.resource?, r.task_id, r.fencing_token?))).collect())
}
