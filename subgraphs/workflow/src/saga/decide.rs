//! The saga's decisions: what an instance does next after one event of its history — pure and
//! deterministic (no clock, no I/O, nothing random), so replaying a history gives the same decisions
//! ([`crate::replay`]), and a change that would alter past behaviour shows as a divergence.
//!
//! | after | decides |
//! |---|---|
//! | `WorkflowInstanceStarted` | `start` is ready (`startStep` for an instance that continues another) |
//! | a Parallel ready | it completes; each branch is ready |
//! | a Join ready | it completes (all branches arrived) |
//! | an Approval ready | `ApprovalRequested` |
//! | a step completed (or its agent task) | its `next` is ready — a join once every branch arrived; no `next` and nothing else in play: `WorkflowCompleted`; the history at its definition's `continueAsNewAfter` and nothing else in play: `WorkflowContinuedAsNew` at `next` |
//! | an attempt failed (agent, timeout, approval not granted) | a retry after the backoff while attempts remain, else `WorkflowStepFailed` |
//! | a step failed for good | its `onFailure` step, or the compensations of the completed steps in reverse order, then `WorkflowFailed` |
//! | a timer fired | a wait completes, a backoff ends (the next attempt is ready), a timeout fails the attempt |
//!
//! What the decisions set in motion outside the history — assigning an agent, setting a timer, asking
//! governance — is [`super::engine`]'s, in the same unit of work.

use kernel::envelope::Event;
use serde_json::Value;

use super::state::{Phase, Saga};
use crate::definitions::spec::{Spec, StepKind};
use crate::events::*;
use crate::history::Recorded;
use crate::ids::InstanceId;

/// An event the saga decides (as opposed to a fact it is told: an agent's report, a timer, governance's
/// answer, a start or a cancellation).
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    StepReady(WorkflowStepReady),
    StepCompleted(WorkflowStepCompleted),
    RetryScheduled(WorkflowStepRetryScheduled),
    StepFailed(WorkflowStepFailed),
    ApprovalRequested(ApprovalRequested),
    CompensationStarted(CompensationStarted),
    Completed(WorkflowCompleted),
    Failed(WorkflowFailed),
    ContinuedAsNew(WorkflowContinuedAsNew),
}

impl Decision {
    pub fn event_type(&self) -> &'static str {
        match self {
            Decision::StepReady(_) => WorkflowStepReady::TYPE,
            Decision::StepCompleted(_) => WorkflowStepCompleted::TYPE,
            Decision::RetryScheduled(_) => WorkflowStepRetryScheduled::TYPE,
            Decision::StepFailed(_) => WorkflowStepFailed::TYPE,
            Decision::ApprovalRequested(_) => ApprovalRequested::TYPE,
            Decision::CompensationStarted(_) => CompensationStarted::TYPE,
            Decision::Completed(_) => WorkflowCompleted::TYPE,
            Decision::Failed(_) => WorkflowFailed::TYPE,
            Decision::ContinuedAsNew(_) => WorkflowContinuedAsNew::TYPE,
        }
    }

    /// The payload, as the history stores it.
    pub fn data(&self) -> Value {
        let v = match self {
            Decision::StepReady(e) => serde_json::to_value(e),
            Decision::StepCompleted(e) => serde_json::to_value(e),
            Decision::RetryScheduled(e) => serde_json::to_value(e),
            Decision::StepFailed(e) => serde_json::to_value(e),
            Decision::ApprovalRequested(e) => serde_json::to_value(e),
            Decision::CompensationStarted(e) => serde_json::to_value(e),
            Decision::Completed(e) => serde_json::to_value(e),
            Decision::Failed(e) => serde_json::to_value(e),
            Decision::ContinuedAsNew(e) => serde_json::to_value(e),
        };
        v.unwrap_or(Value::Null)
    }
}

/// The subject id of the approval a gate asks for: one per instance and run of the step (the version of the
/// `WorkflowStepReady` that began it, so a loop back through the gate asks anew).
pub fn gate_key(instance: InstanceId, step: &str, run: i64) -> String {
    format!("{instance}/{step}/{run}")
}

/// What `saga` (with `e` applied) decides after `e`.
pub fn decide(saga: &Saga, spec: &Spec, e: &Recorded) -> Vec<Decision> {
    if saga.ended.is_some() {
        return Vec::new();
    }
    let id = saga.instance;
    if let Some(s) = e.payload::<WorkflowInstanceStarted>() {
        return ready(id, spec, s.start_step.as_deref().unwrap_or(&spec.start), 1).into_iter().collect();
    }
    if let Some(r) = e.payload::<WorkflowStepReady>() {
        return match r.step_type.as_str() {
            "Parallel" | "Join" => {
                vec![Decision::StepCompleted(WorkflowStepCompleted { instance_id: id, step_id: r.step_id })]
            }
            "Approval" => vec![Decision::ApprovalRequested(ApprovalRequested {
                instance_id: id,
                approval_key: gate_key(id, &r.step_id, e.version),
                step_id: r.step_id,
                attempt: r.attempt,
            })],
            _ => Vec::new(),
        };
    }
    if let Some(c) = e.payload::<WorkflowStepCompleted>() {
        return advance(saga, spec, &c.step_id);
    }
    if let Some(c) = e.payload::<AgentTaskCompleted>() {
        return if c.compensation { unwind(saga, spec) } else { advance(saga, spec, &c.step_id) };
    }
    if let Some(f) = e.payload::<AgentTaskFailed>() {
        return if f.compensation { unwind(saga, spec) } else { failure(id, spec, &f.step_id, f.attempt, f.reason) };
    }
    if let Some(d) = e.payload::<ApprovalDecided>() {
        return if d.outcome == "Granted" {
            vec![Decision::StepCompleted(WorkflowStepCompleted { instance_id: id, step_id: d.step_id })]
        } else {
            let reason = format!("the approval was {}", d.outcome.to_lowercase());
            failure(id, spec, &d.step_id, d.attempt, reason)
        };
    }
    if let Some(t) = e.payload::<TimerFired>() {
        if !timer_applies(saga, &t.purpose, &t.step_id, t.attempt) {
            return Vec::new();
        }
        return match t.purpose.as_str() {
            "wait" => vec![Decision::StepCompleted(WorkflowStepCompleted { instance_id: id, step_id: t.step_id })],
            "retry" => ready(id, spec, &t.step_id, t.attempt).into_iter().collect(),
            _ => {
                let after = spec.step(&t.step_id).and_then(|s| s.timeout_seconds).unwrap_or_default();
                failure(id, spec, &t.step_id, t.attempt, format!("timed out after {after} s"))
            }
        };
    }
    if let Some(f) = e.payload::<WorkflowStepFailed>() {
        if saga.unwinding.is_none() {
            if let Some(to) = spec.step(&f.step_id).and_then(|s| s.on_failure.as_deref()) {
                return goto(saga, spec, to);
            }
        }
        return unwind(saga, spec);
    }
    Vec::new()
}

/// Whether a timer (`wait`, `retry`, `timeout`) for `step`'s `attempt` still matters: the step is where
/// the timer was set for (a wait waiting, a backoff before that attempt, an attempt in play).
pub fn timer_applies(saga: &Saga, purpose: &str, step: &str, attempt: u32) -> bool {
    let Some(run) = saga.runs.get(step) else { return false };
    if saga.ended.is_some() || saga.unwinding.is_some() {
        return false;
    }
    match purpose {
        "wait" => run.attempt == attempt && run.phase == Phase::Waiting,
        "retry" => run.phase == Phase::BackingOff && attempt == run.attempt + 1,
        "timeout" => run.attempt == attempt && run.phase.live() && run.phase != Phase::BackingOff,
        _ => false,
    }
}

/// The namespace of continuations' instance ids (UUIDv5 of the instance continued).
const CONTINUATION_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9a41_2c6e_7b3d_4f08_a15e_c2d9_6e07_41b5);

/// The id of the instance that continues `instance` (continue-as-new): the same every time it is decided.
pub fn continuation(instance: InstanceId) -> InstanceId {
    InstanceId::from(uuid::Uuid::new_v5(&CONTINUATION_NAMESPACE, instance.to_string().as_bytes()))
}

/// Step `step` is ready (for its `attempt`).
fn ready(id: InstanceId, spec: &Spec, step: &str, attempt: u32) -> Option<Decision> {
    let s = spec.step(step)?;
    Some(Decision::StepReady(WorkflowStepReady {
        instance_id: id,
        step_id: step.to_owned(),
        step_type: s.kind.name().to_owned(),
        attempt,
    }))
}

/// After `step` completed: its branches (a Parallel), its `next`, or the end.
fn advance(saga: &Saga, spec: &Spec, step: &str) -> Vec<Decision> {
    if saga.unwinding.is_some() {
        return Vec::new();
    }
    let Some(s) = spec.step(step) else { return Vec::new() };
    if let StepKind::Parallel { branches, .. } = &s.kind {
        return branches.iter().filter_map(|b| ready(saga.instance, spec, b, 1)).collect();
    }
    match s.next.as_deref() {
        Some(next) if continues(saga, step) => {
            vec![Decision::ContinuedAsNew(WorkflowContinuedAsNew {
                instance_id: saga.instance,
                next_instance_id: continuation(saga.instance),
                step_id: next.to_owned(),
                history_length: saga.version,
            })]
        }
        Some(next) => goto(saga, spec, next),
        None if saga.live_steps(step).next().is_none() => {
            vec![Decision::Completed(WorkflowCompleted { instance_id: saga.instance })]
        }
        None => Vec::new(),
    }
}

/// Whether the instance continues as new on its way out of `step`: its history is as long as it was started
/// to allow, and nothing else is in play — no other step live, and no branch waiting at a join (a new
/// instance would not know it had arrived).
fn continues(saga: &Saga, step: &str) -> bool {
    saga.continue_after.is_some_and(|after| saga.version >= after)
        && saga.live_steps(step).next().is_none()
        && saga.arrivals.values().all(|a| a.is_empty())
}

/// Moving on to `to`: it is ready — a join only once every branch of its Parallel has arrived.
fn goto(saga: &Saga, spec: &Spec, to: &str) -> Vec<Decision> {
    let is_join = spec.step(to).is_some_and(|s| matches!(s.kind, StepKind::Join {}));
    if is_join {
        let arrived = saga.arrivals.get(to);
        let all = spec.branches_of(to).iter().all(|b| arrived.is_some_and(|a| a.contains(b)));
        if !all {
            return Vec::new();
        }
    }
    ready(saga.instance, spec, to, 1).into_iter().collect()
}

/// An attempt of `step` failed: retry after the backoff while attempts remain, else the step fails.
fn failure(id: InstanceId, spec: &Spec, step: &str, attempt: u32, reason: String) -> Vec<Decision> {
    if let Some(retry) = spec.step(step).and_then(|s| s.retry) {
        if attempt < retry.max_attempts {
            let delay = retry.backoff(attempt + 1);
            return vec![Decision::RetryScheduled(WorkflowStepRetryScheduled {
                instance_id: id,
                step_id: step.to_owned(),
                attempt: attempt + 1,
                delay_ms: i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
            })];
        }
    }
    vec![Decision::StepFailed(WorkflowStepFailed { instance_id: id, step_id: step.to_owned(), attempt, reason })]
}

/// The next compensation to run (completed steps in reverse order, each once), or the end: `WorkflowFailed`.
fn unwind(saga: &Saga, spec: &Spec) -> Vec<Decision> {
    let (done, failed): (&[String], &[String]) = match &saga.unwinding {
        Some(u) if u.current.is_some() => return Vec::new(),
        Some(u) => (&u.done, &u.failed),
        None => (&[], &[]),
    };
    let mut seen = std::collections::BTreeSet::new();
    for step in saga.completed.iter().rev() {
        if !seen.insert(step.as_str()) || done.contains(step) {
            continue;
        }
        if let Some(c) = spec.step(step).and_then(|s| s.compensation.as_ref()) {
            return vec![Decision::CompensationStarted(CompensationStarted {
                instance_id: saga.instance,
                step_id: step.clone(),
                skill: c.skill.clone(),
            })];
        }
    }
    let (step, reason) = saga.failure.clone().unwrap_or_default();
    let reason =
        if failed.is_empty() { reason } else { format!("{reason}; the compensation of {} failed", failed.join(", ")) };
    vec![Decision::Failed(WorkflowFailed { instance_id: saga.instance, step_id: step, reason })]
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use kernel::TenantId;
    use serde_json::{json, Value};

    use super::*;

    /// A history of `events` (type, payload) from version 1, the first a start allowing `after` events.
    fn history(after: i64, events: &[(&str, Value)]) -> Vec<Recorded> {
        let id = InstanceId::from(uuid::Uuid::nil());
        let start = json!({ "instanceId": id, "definitionKey": "k", "definitionVersion": 1,
            "platformDefinition": false, "input": {}, "startedBy": "t", "continueAsNewAfter": after });
        std::iter::once((WorkflowInstanceStarted::TYPE, start))
            .chain(events.iter().map(|(t, d)| (*t, d.clone())))
            .enumerate()
            .map(|(i, (t, data))| Recorded {
                tenant_id: TenantId::parse("acme").unwrap(),
                instance_id: id,
                version: i as i64 + 1,
                position: i as i64 + 1,
                tx: 1,
                event_id: format!("e{i}"),
                event_type: t.to_owned(),
                data,
                recorded_at: Utc::now(),
            })
            .collect()
    }

    fn ready(step: &str) -> (&'static str, Value) {
        (
            WorkflowStepReady::TYPE,
            json!({ "instanceId": InstanceId::from(uuid::Uuid::nil()), "stepId": step, "stepType": "Wait", "attempt": 1 }),
        )
    }

    fn done(step: &str) -> (&'static str, Value) {
        (WorkflowStepCompleted::TYPE, json!({ "instanceId": InstanceId::from(uuid::Uuid::nil()), "stepId": step }))
    }

    /// What the saga decides after the last event of `events`.
    fn last_decision(spec: &Spec, after: i64, events: &[(&str, Value)]) -> Vec<Decision> {
        let h = history(after, events);
        let saga = Saga::fold(spec, &h).unwrap();
        decide(&saga, spec, h.last().unwrap())
    }

    #[test]
    fn an_instance_continues_as_new_only_with_nothing_in_play_and_no_branch_waiting_at_a_join() {
        let spec: Spec = serde_json::from_value(json!({ "start": "fork", "steps": [
            { "id": "fork", "type": "Parallel", "branches": ["a1", "b1"], "join": "j" },
            { "id": "a1", "type": "Wait", "waitSeconds": 1, "next": "a2" },
            { "id": "a2", "type": "Wait", "waitSeconds": 1, "next": "j" },
            { "id": "b1", "type": "Wait", "waitSeconds": 1, "next": "j" },
            { "id": "j", "type": "Join", "next": "tail" },
            { "id": "tail", "type": "Wait", "waitSeconds": 1 }
        ] }))
        .unwrap();
        let mut events = vec![ready("fork"), done("fork"), ready("a1"), ready("b1")];
        // b1 finished and waits at the join; a1 finishes past the threshold: a2 runs here, not in a new
        // instance that would never learn b1 arrived.
        events.extend([done("b1"), done("a1")]);
        let d = last_decision(&spec, 5, &events);
        assert!(matches!(&d[..], [Decision::StepReady(r)] if r.step_id == "a2"), "{d:?}");
        // Once the join has passed and nothing else is in play, the instance continues at `tail`.
        events.extend([ready("a2"), done("a2"), ready("j"), done("j")]);
        let d = last_decision(&spec, 5, &events);
        assert!(matches!(&d[..], [Decision::ContinuedAsNew(c)] if c.step_id == "tail"), "{d:?}");
        // An instance started without a threshold (before continue-as-new existed) never continues.
        let h = history(5, &events);
        let mut saga = Saga::fold(&spec, &h).unwrap();
        saga.continue_after = None;
        let d = decide(&saga, &spec, h.last().unwrap());
        assert!(matches!(&d[..], [Decision::StepReady(r)] if r.step_id == "tail"), "{d:?}");
    }
}
