//! Workflow's agent-task outputs: each output of an `AgentTaskCompleted` (`kernel::contracts::workflow`)
//! becomes a `Generated` version of its artifact, made by the task's agent and skill, under the task's trace
//! and project; the artifact is registered first (type `agent-output`) when the tenant has none with that
//! id. Only workflow publishes under `workflow.…`, and the envelope's tenant is the task's.
//!
//! Redelivery records nothing twice (the inbox, and a version recorded again with the same content is no
//! change). An output lineage cannot take — an id it does not allow, a version already recorded with other
//! content — is logged and skipped; the task's other outputs are still recorded.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::workflow::AgentTaskCompleted;
use kernel::envelope::Envelope;
use kernel::error::Code;
use kernel::Work;

use super::{Classification, NewArtifact, NewVersion, VersionStatus};
use crate::events::DOMAIN;
use crate::ids::{ArtifactId, ProjectId};

kernel::inbound! {
    /// What the outputs consumer takes.
    pub enum TaskOutputs {
        Completed(AgentTaskCompleted),
    }
}

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.task-outputs"), bindings: TaskOutputs::routing_keys(), retry, prefetch: 16 }
}

/// The artifact type of outputs registered from agent tasks.
pub const AGENT_OUTPUT: &str = "agent-output";

pub struct AgentOutputs;

#[async_trait::async_trait]
impl Handler for AgentOutputs {
    fn name(&self) -> &'static str {
        "lineage.task-outputs"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let TaskOutputs::Completed(e) = TaskOutputs::decode(envelope).into_result(self.name())?;
        let tenant = &envelope.tenant_id;
        let project = envelope.project_id.as_deref().and_then(|p| p.parse::<ProjectId>().ok());
        let task = uuid::Uuid::parse_str(&e.task_id).ok();
        for output in e.outputs.iter().take(MAX_OUTPUTS) {
            let recorded = async {
                let id = ArtifactId::parse("artifactId", &output.artifact_id)?;
                let artifact = NewArtifact {
                    artifact_id: id.clone(),
                    artifact_type: AGENT_OUTPUT.to_owned(),
                    name: id.to_string(),
                    project_id: project,
                    module_id: None,
                    classification: Classification::Internal,
                };
                if super::store::get(work, tenant, &id).await?.is_none() {
                    super::register(work, tenant, artifact).await?;
                }
                let version = NewVersion {
                    artifact_id: id,
                    version: super::version("version", &output.version)?,
                    content_hash: super::content_hash("contentHash", &output.content_hash)?,
                    status: VersionStatus::Generated,
                    produced_by_agent_id: e.agent_id.clone().filter(|a| !a.is_empty()),
                    produced_by_skill_id: e.skill.clone().filter(|s| !s.is_empty()),
                    produced_by_task_id: task,
                    trace_id: Some(envelope.trace_id.clone()),
                    source_blueprint_id: None,
                    attributes: None,
                    derived_from: Vec::new(),
                };
                super::record(work, tenant, version).await
            };
            match recorded.await {
                Ok(_) => {}
                Err(err) if matches!(err.code(), Code::BadUserInput | Code::Conflict) => tracing::warn!(
                    %tenant, task = %e.task_id, artifact = %kernel::error::clip(&output.artifact_id, 80),
                    error = %err.describe(), "an agent task's output lineage cannot record; skipped"
                ),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }
}

/// Most outputs of one task recorded (workflow accepts at most 100).
const MAX_OUTPUTS: usize = 100;
