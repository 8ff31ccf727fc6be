//! Everything workflow publishes (routing key `workflow.<eventType>`). An instance's events are first its
//! history — appended to its stream in the event store ([`crate::history`]) — and leave through the outbox
//! in the same transaction, in the canonical envelope. The README's events table documents each payload; a
//! breaking change makes a new type (`…V2`).

use kernel::envelope::Event;
use serde_json::Value;

use crate::ids::{InstanceId, ProjectId, TaskId};

/// The routing-key prefix of everything workflow publishes.
pub const DOMAIN: &str = "workflow";

/// An output an agent task produced (the contract lineage reads).
pub use kernel::contracts::workflow::ArtifactRef;

kernel::events! {
    domain = "workflow";

    /// A workflow definition version was published (`platform`: the platform registry's, tenant `platform`).
    WorkflowDefinitionPublished { key: String, version: i32, name: String, content_hash: String, platform: bool }
    /// A definition version may no longer start instances.
    WorkflowDefinitionDeprecated { key: String, version: i32, platform: bool }

    /// An instance was started from a definition version, with its input, and the history length after which
    /// it continues as new (`continueAsNewAfter`; an instance started without one never does). An instance
    /// that continues another (continue-as-new) names it (`continuedFrom`), starts at `startStep` instead of
    /// the definition's start, and carries the steps the other completed (`completed`, oldest first: a later
    /// failure compensates them too).
    #[project = project_id]
    WorkflowInstanceStarted {
        instance_id: InstanceId, definition_key: String, definition_version: i32, platform_definition: bool,
        project_id: Option<ProjectId>, input: Value, started_by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")] continued_from: Option<InstanceId>,
        #[serde(default, skip_serializing_if = "Option::is_none")] start_step: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")] completed: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")] continue_as_new_after: Option<i64>,
    }
    /// A step may run (its attempt counts from 1); `stepType` is its definition's (`AgentTask`, `Wait`, …).
    WorkflowStepReady { instance_id: InstanceId, step_id: String, step_type: String, attempt: u32 }
    /// A step that is no agent task finished: a wait ended, an approval was granted, a branch or join passed.
    WorkflowStepCompleted { instance_id: InstanceId, step_id: String }
    /// A step's attempt failed and it runs again after `delayMs` (its retry policy's backoff).
    WorkflowStepRetryScheduled { instance_id: InstanceId, step_id: String, attempt: u32, delay_ms: i64 }
    /// A step failed for good (its retries spent): the instance goes on at its `onFailure` step, or unwinds.
    WorkflowStepFailed { instance_id: InstanceId, step_id: String, attempt: u32, reason: String }
    /// An agent of the step's pool holds the task, under a lease with this fencing token (a task whose lease
    /// was lost is assigned again, with a higher token). `compensation`: the task undoes step `stepId`.
    /// `modelPolicies`: the governance model policies (`name@version`) its agent works under.
    AgentTaskAssigned {
        instance_id: InstanceId, task_id: TaskId, step_id: String, attempt: u32, compensation: bool, skill: String,
        pool: String, agent_id: String, fencing_token: i64, #[serde(default)] model_policies: Vec<String>,
    }
    /// The lease of the agent holding the task was lost (expired unrenewed, or the lease store lost it): the
    /// holder is fenced off and the task is assigned again.
    AgentTaskLeaseLost { instance_id: InstanceId, task_id: TaskId, step_id: String, fencing_token: i64 }
    /// The agent holding the task reported progress (0–100).
    AgentTaskProgressed { instance_id: InstanceId, task_id: TaskId, fencing_token: i64, percent: u8, message: String }
    /// The task finished with its outputs (lineage records them), made by `agentId` running `skill`, and
    /// what it used (governance meters it): the model's provider and name, its tokens, the task's time.
    #[project = project_id]
    AgentTaskCompleted {
        instance_id: InstanceId, task_id: TaskId, step_id: String, compensation: bool, outputs: Vec<ArtifactRef>,
        #[serde(default)] provider: String, model: String, tokens: i64, duration_ms: i64,
        #[serde(default)] agent_id: String, #[serde(default)] skill: String,
        #[serde(default)] project_id: Option<ProjectId>,
    }
    /// The task failed this attempt (it retries while its step's policy allows).
    AgentTaskFailed {
        instance_id: InstanceId, task_id: TaskId, step_id: String, attempt: u32, compensation: bool, reason: String,
    }
    /// An approval gate asked governance for a decision (a `RequestApproval` command went with it, about the
    /// subject `workflow.Gate` / `approvalKey`).
    ApprovalRequested { instance_id: InstanceId, step_id: String, attempt: u32, approval_key: String }
    /// Governance decided the gate (`outcome`: `Granted`, `Rejected`, `Expired`, `Cancelled`).
    ApprovalDecided {
        instance_id: InstanceId, step_id: String, attempt: u32, outcome: String, decided_by: Vec<String>,
        note: Option<String>,
    }
    /// A durable timer fired (`purpose`: `wait`, `timeout`, `retry`) for the step's attempt.
    TimerFired { instance_id: InstanceId, step_id: String, purpose: String, attempt: u32 }
    /// A failure unwinds the instance: this completed step's compensation runs.
    CompensationStarted { instance_id: InstanceId, step_id: String, skill: String }
    WorkflowCompleted { instance_id: InstanceId }
    /// The instance failed at `stepId` (its compensations, if any, have run).
    WorkflowFailed { instance_id: InstanceId, step_id: String, reason: String }
    WorkflowCancelled { instance_id: InstanceId, reason: String, cancelled_by: String }
    /// The instance's history grew long (its definition's `continueAsNewAfter`): it ends here and goes on
    /// as the new instance `nextInstanceId`, from step `stepId`, with the same input (continue-as-new).
    WorkflowContinuedAsNew { instance_id: InstanceId, next_instance_id: InstanceId, step_id: String, history_length: i64 }
    /// Command to governance (`workflow.RequestApproval`): decide the gate `subject.id`
    /// (`<instance>/<step>/<attempt>`). Its event id is derived from the gate, so it is sent once.
    RequestApproval { #[serde(flatten)] request: kernel::contracts::governance::ApprovalRequest }
    /// Usage to meter (governance's `UsageRecorded` contract): an agent task's tokens and time, once per task.
    UsageRecorded { #[serde(flatten)] record: kernel::contracts::usage::UsageRecord }
}

const _: () = assert!(kernel::contracts::same(UsageRecorded::TYPE, kernel::contracts::usage::USAGE_RECORDED));
const _: () = assert!(kernel::contracts::same(RequestApproval::TYPE, kernel::contracts::governance::REQUEST_APPROVAL));

// What lineage reads of workflow's completion ([`kernel::contracts::workflow::AgentTaskCompleted`]) is
// what workflow sends.
const _: () = assert!(kernel::contracts::same(DOMAIN, kernel::contracts::workflow::DOMAIN));
const _: () = assert!(kernel::contracts::same(
    <AgentTaskCompleted as Event>::TYPE,
    <kernel::contracts::workflow::AgentTaskCompleted as Event>::TYPE
));
