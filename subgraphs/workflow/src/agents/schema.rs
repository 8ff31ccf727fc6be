//! Agent pools and tasks in the API: operators configure pools; agents find their tasks and report on
//! them with their fencing token (`agent:report`).

use async_graphql::{Context, InputObject, Object, ID};
use chrono::Utc;
use kernel::permissions::workflow::{AGENT_REPORT, READ, WRITE};
use kernel::{Authorize, Authorized, Error, Result, Work};

use super::store::{self, TaskRow, TaskStatus};
use super::{Pool, MAX_AGENTS, MAX_AGENT_ID, MAX_CONCURRENCY};
use crate::events::ArtifactRef;
use crate::ids::TaskId;
use crate::saga::engine::{Engine, Report};
use crate::state;

/// Most outputs one task reports.
pub const MAX_OUTPUTS: usize = 100;

#[derive(InputObject)]
pub struct ConfigureAgentPoolInput {
    /// 1–63 lower-case letters, digits, hyphens and underscores (the name definitions' steps use).
    pub pool: String,
    /// The agents: each the subject its tokens carry (a principal's id — an OAuth client's or a service
    /// account's), which is how a report is known to come from the agent holding the task. 1 to 256, each
    /// 1–100 printable ASCII characters other than `/`.
    pub agents: Vec<String>,
    /// Tasks one agent runs at once (1 to 64).
    #[graphql(default = 1)]
    pub concurrency: i32,
    /// Seconds a lease lasts unrenewed (1 to 3,600): an agent reports progress within it.
    #[graphql(default = 30)]
    pub lease_ttl_seconds: i32,
}

#[derive(InputObject)]
pub struct AgentTaskProgressInput {
    pub task_id: ID,
    pub fencing_token: i64,
    /// 0 to 100.
    pub percent: i32,
    #[graphql(default)]
    pub message: String,
}

#[derive(InputObject)]
pub struct CompleteAgentTaskInput {
    pub task_id: ID,
    pub fencing_token: i64,
    /// The artifact versions it produced (at most 100).
    #[graphql(default)]
    pub outputs: Vec<ArtifactRef>,
    /// The model it used (its provider and name, as governance's model policies name them), and its
    /// tokens and time: metered to governance, and checked against the task's model policies (outside
    /// them, the attempt fails).
    pub provider: String,
    pub model: String,
    pub tokens: i64,
    pub duration_ms: i64,
}

#[derive(InputObject)]
pub struct FailAgentTaskInput {
    pub task_id: ID,
    pub fencing_token: i64,
    pub reason: String,
}

/// A caller that reads tasks: a member (`workflow:read`) or an agent (`agent:report`).
fn reader(ctx: &Context<'_>) -> Result<Authorized> {
    ctx.authorize(READ).or_else(|_| ctx.authorize(AGENT_REPORT))
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// The tenant's agent pools, by name.
    async fn agent_pools(&self, ctx: &Context<'_>) -> Result<Vec<Pool>> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let pools = store::pools(&mut tx, tenant.tenant()).await?;
        tx.commit().await?;
        Ok(pools)
    }

    /// Resolves `AgentTask` references from other subgraphs (lineage's outputs; the caller's tenant's only).
    #[graphql(entity)]
    async fn find_agent_task_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<TaskRow> {
        self.agent_task(ctx, id.clone())
            .await?
            .ok_or_else(|| Error::not_found(format!("no agent task `{}`", id.as_str())))
    }

    async fn agent_task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<TaskRow>> {
        let tenant = reader(ctx)?;
        let id = TaskId::from_id("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let task = store::task(&mut tx, tenant.tenant(), id).await?;
        tx.commit().await?;
        Ok(task)
    }

    /// An agent's tasks (those in `status`, default `Assigned`), oldest first — what an agent polls for. An
    /// agent (`agent:report` without `workflow:read`) lists only its own.
    async fn agent_tasks(
        &self,
        ctx: &Context<'_>,
        pool: String,
        agent_id: String,
        status: Option<TaskStatus>,
        #[graphql(desc = "At most this many, 1 to 100 (default 20).")] first: Option<i32>,
    ) -> Result<Vec<TaskRow>> {
        let tenant = reader(ctx)?;
        let agent_id = agent_id.trim().to_owned();
        if ctx.authorize(READ).is_err() && ctx.request_context().caller.subject != agent_id {
            return Err(Error::forbidden("an agent lists its own tasks (`agentId` is the subject of its token)"));
        }
        let limit = i64::from(first.unwrap_or(20));
        if !(1..=100).contains(&limit) {
            return Err(Error::bad_input("first", "`first` is 1 to 100"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let status = Some(status.unwrap_or(TaskStatus::Assigned));
        let tasks = store::of_agent(&mut tx, tenant.tenant(), pool.trim(), &agent_id, status, limit).await?;
        tx.commit().await?;
        Ok(tasks)
    }
}

#[derive(Default)]
pub struct AgentMutation;

impl AgentMutation {
    async fn report(ctx: &Context<'_>, task: &ID, token: i64, report: Report) -> Result<TaskRow> {
        let tenant = ctx.authorize(AGENT_REPORT)?;
        let id = TaskId::from_id("taskId", task)?;
        let kernel = &state(ctx).kernel;
        let mut work = Work::tenant(&kernel.db, &tenant, ctx.event_meta()).await?;
        let row = store::task(&mut work, tenant.tenant(), id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no agent task `{id}`")))?;
        // A completion sent again (its answer was lost) answers the task as it is, writing nothing.
        if row.status == TaskStatus::Completed
            && row.fencing_token == Some(token)
            && matches!(report, Report::Complete { .. })
        {
            return Ok(row);
        }
        let mut engine = Engine::load(&mut work, kernel, tenant.tenant(), row.instance_id, Utc::now()).await?;
        // Read again under the instance's lock: a reassignment may have moved the task since.
        let row = store::task(&mut work, tenant.tenant(), id)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("agent task {id} vanished")))?;
        let caller = ctx.request_context().caller.subject.clone();
        engine.report(&mut work, &row, &caller, token, report).await?;
        let after = store::task(&mut work, tenant.tenant(), id).await?;
        work.commit().await?;
        engine.release().await?;
        after.ok_or_else(|| Error::internal(anyhow::anyhow!("agent task {id} vanished")))
    }
}

#[Object]
impl AgentMutation {
    /// Configures a pool (new, or replacing its agents and limits; leases held go on until they end).
    async fn configure_agent_pool(&self, ctx: &Context<'_>, input: ConfigureAgentPoolInput) -> Result<Pool> {
        let tenant = ctx.authorize(WRITE)?;
        let pool = input.pool.trim();
        if !(1..=63).contains(&pool.len())
            || !pool.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(Error::bad_input(
                "pool",
                "a pool's name is 1–63 lower-case letters, digits, hyphens or underscores",
            ));
        }
        if input.agents.is_empty() || input.agents.len() > MAX_AGENTS {
            return Err(Error::bad_input("agents", format!("a pool has 1 to {MAX_AGENTS} agents")));
        }
        let mut agents = Vec::with_capacity(input.agents.len());
        for a in &input.agents {
            let a = a.trim().to_owned();
            if a.is_empty() || a.len() > MAX_AGENT_ID || !a.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                return Err(Error::bad_input(
                    "agents",
                    format!("an agent's id is 1–{MAX_AGENT_ID} printable ASCII characters other than `/`"),
                ));
            }
            if agents.contains(&a) {
                return Err(Error::bad_input("agents", format!("agent `{a}` is named twice")));
            }
            agents.push(a);
        }
        if !(1..=MAX_CONCURRENCY).contains(&input.concurrency) {
            return Err(Error::bad_input("concurrency", format!("`concurrency` is 1 to {MAX_CONCURRENCY}")));
        }
        if !(1..=3600).contains(&input.lease_ttl_seconds) {
            return Err(Error::bad_input("leaseTtlSeconds", "`leaseTtlSeconds` is 1 to 3600"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let p = store::configure(&mut tx, tenant.tenant(), pool, &agents, input.concurrency, input.lease_ttl_seconds)
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Reports progress with the task's fencing token, which renews the agent's lease. `CONFLICT`, nothing
    /// written, for a token that is not the task's latest, a task no longer running, or a lease that
    /// expired (the task is then assigned again).
    async fn report_agent_task_progress(&self, ctx: &Context<'_>, input: AgentTaskProgressInput) -> Result<TaskRow> {
        let percent = u8::try_from(input.percent).ok().filter(|p| *p <= 100);
        let percent = percent.ok_or_else(|| Error::bad_input("percent", "`percent` is 0 to 100"))?;
        let message = match input.message.trim() {
            "" => String::new(),
            m => kernel::error::text("message", m, 1000)?,
        };
        Self::report(ctx, &input.task_id, input.fencing_token, Report::Progress { percent, message }).await
    }

    /// Completes the task with its outputs; its usage (model tokens, time) is metered once. `CONFLICT`,
    /// nothing written, for a stale fencing token or a task no longer running.
    async fn complete_agent_task(&self, ctx: &Context<'_>, input: CompleteAgentTaskInput) -> Result<TaskRow> {
        if input.outputs.len() > MAX_OUTPUTS {
            return Err(Error::bad_input("outputs", format!("a task reports at most {MAX_OUTPUTS} outputs")));
        }
        for o in &input.outputs {
            check_output(o)?;
        }
        let provider = kernel::error::text("provider", &input.provider, 100)?;
        let model = kernel::error::text("model", &input.model, 100)?;
        if !(0..=1_000_000_000_000).contains(&input.tokens) {
            return Err(Error::bad_input("tokens", "`tokens` is 0 to 10^12"));
        }
        if !(0..=365 * 24 * 3_600_000).contains(&input.duration_ms) {
            return Err(Error::bad_input("durationMs", "`durationMs` is 0 to a year"));
        }
        let report = Report::Complete {
            outputs: input.outputs,
            provider,
            model,
            tokens: input.tokens,
            duration_ms: input.duration_ms,
        };
        Self::report(ctx, &input.task_id, input.fencing_token, report).await
    }

    /// Fails this attempt of the task (its step retries while its policy allows). `CONFLICT`, nothing
    /// written, for a stale fencing token or a task no longer running.
    async fn fail_agent_task(&self, ctx: &Context<'_>, input: FailAgentTaskInput) -> Result<TaskRow> {
        let reason = kernel::error::text("reason", &input.reason, 1000)?;
        Self::report(ctx, &input.task_id, input.fencing_token, Report::Fail { reason }).await
    }
}

/// An output names an artifact version lineage can find: an id, a semver version, a sha256 content hash.
fn check_output(o: &ArtifactRef) -> Result<()> {
    if o.artifact_id.trim().is_empty() || o.artifact_id.len() > 200 {
        return Err(Error::bad_input("outputs", "an output's `artifactId` is 1–200 characters"));
    }
    if semver::Version::parse(&o.version).is_err() || o.version.len() > 100 {
        return Err(Error::bad_input(
            "outputs",
            format!("output `{}`: `version` is not a semver version", kernel::error::clip(&o.artifact_id, 80)),
        ));
    }
    let hex = o.content_hash.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::bad_input(
            "outputs",
            format!(
                "output `{}`: `contentHash` is `sha256:` and 64 lower-case hex digits",
                kernel::error::clip(&o.artifact_id, 80)
            ),
        ));
    }
    Ok(())
}
