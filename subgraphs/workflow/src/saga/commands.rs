//! `StartWorkflow`, `CancelWorkflow` and `AssignAgentTask` commands from other domains (published under the
//! sender's own prefix, `catalogue.StartWorkflow`: the queue binds `*.<Command>`; payloads in
//! `kernel::contracts::workflow`). Each does what the mutation of the same name does, for the envelope's
//! tenant, and the events it leads to carry the command's id as their causation. The inbox applies a
//! command once however often it is delivered; a `StartWorkflow` whose instance exists already (its id is
//! derived from the command's) starts nothing new. A command that can never succeed (no such definition or
//! instance, bad input) is dead-lettered with the reason; cancelling an ended instance is a no-op.

use chrono::Utc;
use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::workflow::{
    AssignAgentTask, CancelWorkflow, StartWorkflow, ASSIGN_AGENT_TASK, CANCEL_WORKFLOW, START_WORKFLOW,
};
use kernel::envelope::Envelope;
use kernel::{Kernel, Work};

use super::engine::{self, Engine, NewInstance};
use crate::ids::{InstanceId, ProjectId};

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{}.commands", crate::events::DOMAIN),
        bindings: [START_WORKFLOW, CANCEL_WORKFLOW, ASSIGN_AGENT_TASK].iter().map(|c| format!("*.{c}")).collect(),
        retry,
        prefetch: 16,
    }
}

pub struct Commands {
    pub kernel: Kernel,
}

/// The namespace of instance ids started by command (UUIDv5 of the command's event id).
const COMMAND_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9a41_3e0c_77b2_4c55_a1d8_6f3b_0c92_e4a7);

fn permanent(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Permanent(anyhow::anyhow!("{what}: {e}"))
}

#[async_trait::async_trait]
impl Handler for Commands {
    fn name(&self) -> &'static str {
        "workflow.commands"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let Some(sender) = envelope.publisher() else {
            return Err(Failure::Permanent(anyhow::anyhow!("{} from no known domain", envelope.event_type)));
        };
        let tenant = &envelope.tenant_id;
        let by = envelope.actor.clone().unwrap_or_else(|| format!("domain:{sender}"));
        let now = Utc::now();
        match envelope.event_type.as_str() {
            START_WORKFLOW => {
                let c: StartWorkflow = serde_json::from_value(envelope.payload.clone())
                    .map_err(|e| permanent("malformed StartWorkflow", e))?;
                let instance = InstanceId::from(uuid::Uuid::new_v5(&COMMAND_NAMESPACE, envelope.event_id.as_bytes()));
                let project_id = match c.project_id.as_deref() {
                    Some(p) => Some(ProjectId::parse("projectId", p)?),
                    None => None,
                };
                if crate::history::store::version(work, tenant, instance).await?.is_some() {
                    tracing::info!(%tenant, %instance, "StartWorkflow delivered again: the instance exists");
                    return Ok(());
                }
                let definition = engine::startable(work, tenant, &c.definition_key, c.version, c.platform).await?;
                let input = if c.input.is_null() { serde_json::json!({}) } else { c.input };
                let new = NewInstance { instance, definition, project_id, input, started_by: by, continues: None };
                Engine::start(work, &self.kernel, tenant, new, now).await?.release().await?;
                Ok(())
            }
            CANCEL_WORKFLOW => {
                let c: CancelWorkflow = serde_json::from_value(envelope.payload.clone())
                    .map_err(|e| permanent("malformed CancelWorkflow", e))?;
                let instance = InstanceId::parse("instanceId", &c.instance_id)?;
                let reason = kernel::error::text("reason", &c.reason, 500)?;
                let mut engine = Engine::load(work, &self.kernel, tenant, instance, now).await?;
                if engine.saga().ended.is_some() {
                    tracing::info!(%tenant, %instance, "CancelWorkflow for an ended instance; nothing to do");
                    return Ok(());
                }
                engine.cancel(work, &reason, &by).await?;
                engine.release().await?;
                Ok(())
            }
            ASSIGN_AGENT_TASK => {
                let c: AssignAgentTask = serde_json::from_value(envelope.payload.clone())
                    .map_err(|e| permanent("malformed AssignAgentTask", e))?;
                let instance = InstanceId::parse("instanceId", &c.instance_id)?;
                let mut engine = Engine::load(work, &self.kernel, tenant, instance, now).await?;
                engine.assign_now(work, &kernel::error::clip(c.step_id.trim(), 63)).await?;
                engine.release().await?;
                Ok(())
            }
            other => Err(Failure::Permanent(anyhow::anyhow!("unexpected command {other}"))),
        }
    }
}
