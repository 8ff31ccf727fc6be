//! The saga's share of the mutation root: start, cancel, assign now.

use async_graphql::{Context, InputObject, Json, Object, ID};
use chrono::Utc;
use kernel::permissions::workflow::WRITE;
use kernel::{Authorize, Error, Result, Work};
use serde_json::Value;

use super::engine::{self, Engine, NewInstance};
use crate::agents::store::TaskRow;
use crate::ids::{InstanceId, ProjectId};
use crate::process::ProcessState;
use crate::state;

#[derive(InputObject)]
pub struct StartWorkflowInput {
    /// The definition's key.
    pub definition_key: String,
    /// A published version (default: the latest).
    pub version: Option<i32>,
    /// Start the platform registry's definition rather than the tenant's own.
    #[graphql(default)]
    pub platform: bool,
    /// The catalogue project it runs for.
    pub project_id: Option<ID>,
    /// The instance's input: a JSON object of at most 64 KiB.
    pub input: Option<Json<Value>>,
}

#[derive(Default)]
pub struct SagaMutation;

#[Object]
impl SagaMutation {
    /// Starts an instance of a published definition version and runs it until it waits (for an agent, a
    /// timer or an approval). `NOT_FOUND` for an unknown definition, `CONFLICT` for a deprecated one,
    /// `BAD_USER_INPUT` for an input that is not a JSON object of at most 64 KiB.
    async fn start_workflow(&self, ctx: &Context<'_>, input: StartWorkflowInput) -> Result<ProcessState> {
        let tenant = ctx.authorize(WRITE)?;
        let project_id = input.project_id.as_ref().map(|p| ProjectId::from_id("projectId", p)).transpose()?;
        let body = input.input.map_or_else(|| serde_json::json!({}), |j| j.0);
        engine::check_input(&body)?;
        let started_by = ctx.request_context().caller.subject.clone();
        let kernel = &state(ctx).kernel;
        let mut work = Work::tenant(&kernel.db, &tenant, ctx.event_meta()).await?;
        let definition =
            engine::startable(&mut work, tenant.tenant(), &input.definition_key, input.version, input.platform).await?;
        let new = NewInstance {
            instance: InstanceId::new_v7(),
            definition,
            project_id,
            input: body,
            started_by,
            continues: None,
        };
        let mut engine = Engine::start(&mut work, kernel, tenant.tenant(), new, Utc::now()).await?;
        let out = engine.process_state();
        work.commit().await?;
        engine.release().await?;
        out.ok_or_else(|| Error::internal(anyhow::anyhow!("a started instance without a state")))
    }

    /// Cancels a running instance: its timers and agent tasks stop (`CONFLICT` if it has ended).
    async fn cancel_workflow(&self, ctx: &Context<'_>, instance_id: ID, reason: String) -> Result<ProcessState> {
        let tenant = ctx.authorize(WRITE)?;
        let instance = InstanceId::from_id("instanceId", &instance_id)?;
        let reason = kernel::error::text("reason", &reason, 500)?;
        let by = ctx.request_context().caller.subject.clone();
        let kernel = &state(ctx).kernel;
        let mut work = Work::tenant(&kernel.db, &tenant, ctx.event_meta()).await?;
        let mut engine = Engine::load(&mut work, kernel, tenant.tenant(), instance, Utc::now()).await?;
        engine.cancel(&mut work, &reason, &by).await?;
        let out = engine.process_state();
        work.commit().await?;
        engine.release().await?;
        out.ok_or_else(|| Error::internal(anyhow::anyhow!("a cancelled instance without a state")))
    }

    /// Offers a ready agent-task step to its pool now (after the pool gained agents, say) and answers its
    /// task; a step whose task an agent holds already answers that task (a step never has two live tasks).
    async fn assign_agent_task(&self, ctx: &Context<'_>, instance_id: ID, step_id: String) -> Result<TaskRow> {
        let tenant = ctx.authorize(WRITE)?;
        let instance = InstanceId::from_id("instanceId", &instance_id)?;
        let kernel = &state(ctx).kernel;
        let mut work = Work::tenant(&kernel.db, &tenant, ctx.event_meta()).await?;
        let mut engine = Engine::load(&mut work, kernel, tenant.tenant(), instance, Utc::now()).await?;
        let task = engine.assign_now(&mut work, kernel::error::clip(step_id.trim(), 63).as_str()).await?;
        work.commit().await?;
        engine.release().await?;
        Ok(task)
    }
}
