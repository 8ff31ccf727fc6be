//! Replay: an instance's recorded history run again through the saga's decisions ([`crate::saga::decide`])
//! — against the definition version it ran, another version, or the current code — to find where the code
//! would now decide differently. Pure: the history is read, never changed.
//!
//! The engine appends, after each event, the decisions it leads to, depth first (each decision followed by
//! its own); facts (a start, an agent's report, a timer, governance's answer, a cancellation, an agent
//! assigned) come when no decision is owed. Replay walks the history with the same discipline: every
//! recorded decision must be the one the code owes next, and a fact may come only when nothing is owed.
//! The first place they part is the [`Divergence`].
//!
//! A corpus of recorded histories is committed under `tests/corpus/` and replayed by the tests on every
//! CI run (as Temporal's replay tests do): a change to the saga that would alter what an instance already
//! did fails CI there.
//!
//! `replayWorkflow` ([`schema`]) replays one instance on demand and keeps the result: the run and its
//! **shadow stream** ([`shadow`]: the facts as recorded, the decisions as the code makes them, up to the
//! divergence), never touching the source stream; [`retention`] deletes runs after 90 days, but a tenant's
//! under legal hold ([`LEGAL_HOLDS`] projects tenancy's holds).

pub mod retention;
pub mod schema;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definitions::spec::Spec;
use crate::history::Recorded;
use crate::saga::decide::{decide, Decision};
use crate::saga::state::Saga;

/// Workflow's legal-hold consumer (queue `workflow.legal-holds`): the holds replay retention honours.
pub const LEGAL_HOLDS: kernel::contracts::tenancy::LegalHolds =
    kernel::contracts::tenancy::LegalHolds { name: "workflow.legal-holds" };

/// One event, as replay compares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
}

impl From<&Decision> for Step {
    fn from(d: &Decision) -> Self {
        Self { event_type: d.event_type().to_owned(), data: d.data() }
    }
}

/// Where the code parts from the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// The history's version at which they part (one past its end when the code decides more).
    pub version: i64,
    /// What the code decides there (`None`: nothing — the history recorded a decision it would not make).
    pub decided: Option<Step>,
    /// What the history holds there (`None`: its end).
    pub recorded: Option<Step>,
}

/// The event types the saga decides (everything else in a history is a fact it was told).
pub fn is_decision(event_type: &str) -> bool {
    use crate::events::*;
    use kernel::envelope::Event;
    [
        WorkflowStepReady::TYPE,
        WorkflowStepCompleted::TYPE,
        WorkflowStepRetryScheduled::TYPE,
        WorkflowStepFailed::TYPE,
        ApprovalRequested::TYPE,
        CompensationStarted::TYPE,
        WorkflowCompleted::TYPE,
        WorkflowFailed::TYPE,
        WorkflowContinuedAsNew::TYPE,
    ]
    .contains(&event_type)
}

/// Replays `history` against `spec`: `Ok` with the number of decisions checked, or the first divergence.
pub fn replay(spec: &Spec, history: &[Recorded]) -> Result<usize, Box<Divergence>> {
    shadow(spec, history).1
}

/// Replays `history` against `spec` and returns its shadow stream — each fact as recorded and each decision
/// as the code makes it, up to and including where they part — with the outcome of [`replay`].
pub fn shadow(spec: &Spec, history: &[Recorded]) -> (Vec<Step>, Result<usize, Box<Divergence>>) {
    let mut out = Vec::with_capacity(history.len());
    let outcome = walk(spec, history, &mut out);
    (out, outcome)
}

fn walk(spec: &Spec, history: &[Recorded], out: &mut Vec<Step>) -> Result<usize, Box<Divergence>> {
    let Some((first, rest)) = history.split_first() else { return Ok(0) };
    out.push(Step { event_type: first.event_type.clone(), data: first.data.clone() });
    let Some(mut saga) = Saga::start(first) else {
        let recorded = Some(Step { event_type: first.event_type.clone(), data: first.data.clone() });
        return Err(Box::new(Divergence { version: first.version, decided: None, recorded }));
    };
    let mut owed: Vec<Decision> = decide(&saga, spec, first);
    owed.reverse();
    let mut checked = 0;
    for e in rest {
        let recorded = Step { event_type: e.event_type.clone(), data: e.data.clone() };
        match owed.pop() {
            Some(d) => {
                let decided = Step::from(&d);
                out.push(decided.clone());
                if decided != recorded {
                    return Err(Box::new(Divergence {
                        version: e.version,
                        decided: Some(decided),
                        recorded: Some(recorded),
                    }));
                }
                checked += 1;
            }
            None if is_decision(&e.event_type) => {
                return Err(Box::new(Divergence { version: e.version, decided: None, recorded: Some(recorded) }));
            }
            None => out.push(recorded),
        }
        saga.apply(spec, e);
        let mut next = decide(&saga, spec, e);
        next.reverse();
        owed.extend(next);
    }
    match owed.pop() {
        Some(d) => {
            let version = history.last().map_or(0, |e| e.version) + 1;
            out.push(Step::from(&d));
            Err(Box::new(Divergence { version, decided: Some(Step::from(&d)), recorded: None }))
        }
        None => Ok(checked),
    }
}
