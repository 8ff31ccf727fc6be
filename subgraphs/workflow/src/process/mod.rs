//! The process-state projection: each instance's state, folded from its events ([`apply`], pure), kept in
//! `process_state` by the [`projector`] — which follows the event store's global order from its own
//! checkpoint, so nothing depends on the broker delivering twice or in order — and rebuilt from the events
//! alone by [`projector::rebuild`] with the same result.
//!
//! An instance's status is its steps' states taken together: ended (`Completed`, `Failed`, `Cancelled`,
//! `ContinuedAsNew`);
//! else `Compensating` while a failure unwinds; else `AwaitingApproval` while a gate waits, `AssigningTask`
//! while a ready agent task has no agent, `AwaitingAgent` while an agent works, `Waiting` while only timers
//! run; `Running` otherwise (`Created` before its first step).

pub mod hot;
pub mod live;
pub mod projector;
pub mod schema;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kernel::TenantId;
use serde::{Deserialize, Serialize};

use crate::history::Recorded;
use crate::ids::{InstanceId, ProjectId};

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    #[graphql(name = "WorkflowStatus")]
    pub enum Status {
        Created = "Created",
        Running = "Running",
        AssigningTask = "AssigningTask",
        AwaitingAgent = "AwaitingAgent",
        AwaitingApproval = "AwaitingApproval",
        Waiting = "Waiting",
        Compensating = "Compensating",
        Completed = "Completed",
        Failed = "Failed",
        Cancelled = "Cancelled",
        /// Its history grew long and it went on as a new instance (`continuedAs`).
        ContinuedAsNew = "ContinuedAsNew",
    }
}

/// Where one step stands.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "WorkflowStepState")]
pub enum StepState {
    /// An agent task without an agent yet.
    Assigning,
    AwaitingAgent,
    AwaitingApproval,
    /// A wait, a backoff, or a step that is neither.
    Waiting,
    Ready,
    Done,
    Failed,
    Compensating,
    Compensated,
}

/// One instance's projected state.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessState {
    pub tenant_id: TenantId,
    pub instance_id: InstanceId,
    pub definition_key: String,
    pub definition_version: i32,
    /// The catalogue project it runs for.
    pub project_id: Option<ProjectId>,
    pub status: Status,
    pub steps: BTreeMap<String, StepState>,
    pub version: i64,
    pub last_event_type: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

fn text<'a>(e: &'a Recorded, field: &str) -> &'a str {
    e.data.get(field).and_then(|v| v.as_str()).unwrap_or_default()
}

/// `state` after `event` (an instance's first event makes its state). An event the fold does not know, or
/// one before the instance's start, changes only the version.
pub fn apply(state: Option<ProcessState>, e: &Recorded) -> Option<ProcessState> {
    let mut s = match (state, e.event_type.as_str()) {
        (None, "WorkflowInstanceStarted") => ProcessState {
            tenant_id: e.tenant_id.clone(),
            instance_id: e.instance_id,
            definition_key: text(e, "definitionKey").to_owned(),
            definition_version: e.data.get("definitionVersion").and_then(|v| v.as_i64()).unwrap_or(0) as i32,
            project_id: e.data.get("projectId").and_then(|v| v.as_str()).and_then(|p| p.parse().ok()),
            status: Status::Created,
            steps: BTreeMap::new(),
            version: e.version,
            last_event_type: e.event_type.clone(),
            started_at: e.recorded_at,
            updated_at: e.recorded_at,
            ended_at: None,
        },
        (None, _) => return None,
        (Some(s), _) => s,
    };
    let step = text(e, "stepId").to_owned();
    let mut set = |state: StepState| {
        if !step.is_empty() {
            s.steps.insert(step.clone(), state);
        }
    };
    let mut ended = None;
    let compensation = e.data.get("compensation").and_then(|v| v.as_bool()).unwrap_or(false);
    match e.event_type.as_str() {
        "WorkflowStepReady" => set(match text(e, "stepType") {
            "AgentTask" => StepState::Assigning,
            "Wait" => StepState::Waiting,
            _ => StepState::Ready,
        }),
        "AgentTaskAssigned" if !compensation => set(StepState::AwaitingAgent),
        "AgentTaskLeaseLost" if !compensation => set(StepState::Assigning),
        "ApprovalRequested" => set(StepState::AwaitingApproval),
        "AgentTaskCompleted" | "AgentTaskFailed" if compensation => set(StepState::Compensated),
        "AgentTaskCompleted" | "WorkflowStepCompleted" => set(StepState::Done),
        "AgentTaskFailed" | "WorkflowStepFailed" => set(StepState::Failed),
        "WorkflowStepRetryScheduled" => set(StepState::Waiting),
        "ApprovalDecided" if text(e, "outcome") != "Granted" => set(StepState::Failed),
        "CompensationStarted" => set(StepState::Compensating),
        "WorkflowCompleted" => ended = Some(Status::Completed),
        "WorkflowFailed" => ended = Some(Status::Failed),
        "WorkflowCancelled" => ended = Some(Status::Cancelled),
        "WorkflowContinuedAsNew" => ended = Some(Status::ContinuedAsNew),
        _ => {}
    }
    s.version = e.version;
    s.last_event_type = e.event_type.clone();
    s.updated_at = e.recorded_at;
    if let Some(end) = ended {
        s.status = end;
        s.ended_at = Some(e.recorded_at);
    } else if s.ended_at.is_none() {
        s.status = status_of(&s.steps);
    }
    Some(s)
}

fn status_of(steps: &BTreeMap<String, StepState>) -> Status {
    let any = |state: StepState| steps.values().any(|s| *s == state);
    if steps.is_empty() {
        Status::Created
    } else if any(StepState::Compensating) {
        Status::Compensating
    } else if any(StepState::AwaitingApproval) {
        Status::AwaitingApproval
    } else if any(StepState::Assigning) {
        Status::AssigningTask
    } else if any(StepState::AwaitingAgent) {
        Status::AwaitingAgent
    } else if any(StepState::Ready) || any(StepState::Failed) || !any(StepState::Waiting) {
        Status::Running
    } else {
        Status::Waiting
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(version: i64, event_type: &str, data: serde_json::Value) -> Recorded {
        Recorded {
            tenant_id: TenantId::parse("acme").unwrap(),
            instance_id: InstanceId::parse("id", "0190f0f0-0000-7000-8000-000000000001").unwrap(),
            version,
            position: version,
            tx: 1,
            event_id: format!("evt-{version}"),
            event_type: event_type.into(),
            data,
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn the_status_follows_the_steps_through_a_gate_a_parallel_and_the_end() {
        let events = [
            event(1, "WorkflowInstanceStarted", json!({ "definitionKey": "review", "definitionVersion": 2 })),
            event(2, "WorkflowStepReady", json!({ "stepId": "draft", "stepType": "AgentTask" })),
            event(3, "AgentTaskAssigned", json!({ "stepId": "draft" })),
            event(4, "AgentTaskCompleted", json!({ "stepId": "draft" })),
            event(5, "WorkflowStepReady", json!({ "stepId": "review", "stepType": "Approval" })),
            event(6, "ApprovalRequested", json!({ "stepId": "review" })),
            event(7, "WorkflowStepCompleted", json!({ "stepId": "review" })),
            event(8, "WorkflowStepReady", json!({ "stepId": "pause", "stepType": "Wait" })),
            event(9, "WorkflowStepCompleted", json!({ "stepId": "pause" })),
            event(10, "WorkflowCompleted", json!({})),
        ];
        let expected = [
            Status::Created,
            Status::AssigningTask,
            Status::AwaitingAgent,
            Status::Running,
            Status::Running,
            Status::AwaitingApproval,
            Status::Running,
            Status::Waiting,
            Status::Running,
            Status::Completed,
        ];
        let mut state = None;
        for (e, want) in events.iter().zip(expected) {
            state = apply(state, e);
            let s = state.as_ref().unwrap();
            assert_eq!(s.status, want, "after {}", e.event_type);
            assert_eq!(s.version, e.version);
        }
        let s = state.unwrap();
        assert_eq!((s.definition_key.as_str(), s.definition_version), ("review", 2));
        assert!(s.ended_at.is_some());
    }

    #[test]
    fn events_before_a_start_make_no_state() {
        assert!(apply(None, &event(1, "WorkflowStepReady", json!({ "stepId": "a" }))).is_none());
    }
}
