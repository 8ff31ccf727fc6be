//! An instance as its history leaves it: [`Saga::apply`] folds one recorded event at a time (pure; the
//! definition's steps are passed in, for the joins). The saga's decisions ([`super::decide`]) and its
//! checks of what an agent or governance reports are made against this state.

use std::collections::{BTreeMap, BTreeSet};

use kernel::envelope::Event;
use serde_json::Value;

use crate::definitions::spec::Spec;
use crate::events::*;
use crate::history::Recorded;
use crate::ids::{InstanceId, ProjectId, TaskId};

/// Where a step's current attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Ready, and about to move on (a Parallel, a Join, an approval about to be requested).
    Ready,
    /// An agent task waiting for an agent.
    Assigning,
    /// An agent holds the task.
    Running,
    AwaitingApproval,
    /// A wait runs.
    Waiting,
    /// The attempt failed; the next one starts after the backoff.
    BackingOff,
    Done,
    Failed,
}

impl Phase {
    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Assigning => "waiting for an agent",
            Phase::Running => "held by an agent",
            Phase::AwaitingApproval => "waiting for approval",
            Phase::Waiting => "waiting",
            Phase::BackingOff => "waiting to retry",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }

    /// Whether the step is still in play (neither done nor failed).
    pub fn live(self) -> bool {
        !matches!(self, Phase::Done | Phase::Failed)
    }
}

/// An agent task: one attempt of an agent-task step, or a compensation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub step: String,
    pub attempt: u32,
    pub compensation: bool,
    /// The agent holding it and its fencing token; `None` while it waits for one (first, or after its
    /// lease was lost).
    pub holder: Option<(String, i64)>,
}

/// A step's current attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub step_type: String,
    pub attempt: u32,
    /// The version of the `WorkflowStepReady` that began it: what tells one run of a step from another (a
    /// loop through it, a retry), in its task's id and its gate's key.
    pub ready: i64,
    pub phase: Phase,
    /// Its agent task, while one is live.
    pub task: Option<Task>,
}

/// How an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Completed,
    Failed,
    Cancelled,
    /// Its history grew long: it goes on as a new instance.
    ContinuedAsNew,
}

/// A compensation running: its step, the version of its `CompensationStarted`, its task once assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compensating {
    pub step: String,
    pub started: i64,
    pub task: Option<Task>,
}

/// A failure being unwound: the step that failed the instance, and the compensations run so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unwinding {
    pub step: String,
    pub reason: String,
    pub current: Option<Compensating>,
    /// Steps compensated (or whose compensation failed, in `failed`), in order.
    pub done: Vec<String>,
    pub failed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Saga {
    pub instance: InstanceId,
    pub definition_key: String,
    pub definition_version: i32,
    pub platform_definition: bool,
    pub project_id: Option<ProjectId>,
    pub input: Value,
    /// The events applied (the stream's version).
    pub version: i64,
    /// The history length after which it continues as new, as recorded at its start (none: it never does —
    /// instances started before continue-as-new existed go on as they were decided).
    pub continue_after: Option<i64>,
    pub ended: Option<Ending>,
    pub runs: BTreeMap<String, Run>,
    /// Steps that completed, in order: a failure compensates them in reverse. (An instance that continues
    /// another starts with the steps that one completed.)
    pub completed: Vec<String>,
    /// Branches that reached each join since its Parallel started them.
    pub arrivals: BTreeMap<String, BTreeSet<String>>,
    /// The last step that failed for good, and why.
    pub failure: Option<(String, String)>,
    pub unwinding: Option<Unwinding>,
}

impl Saga {
    /// The state a history's first event (`WorkflowInstanceStarted`) makes; `None` for any other.
    pub fn start(e: &Recorded) -> Option<Self> {
        let s: WorkflowInstanceStarted = e.payload()?;
        Some(Self {
            instance: s.instance_id,
            definition_key: s.definition_key,
            definition_version: s.definition_version,
            platform_definition: s.platform_definition,
            project_id: s.project_id,
            input: s.input,
            version: e.version,
            continue_after: s.continue_as_new_after,
            ended: None,
            runs: BTreeMap::new(),
            completed: s.completed,
            arrivals: BTreeMap::new(),
            failure: None,
            unwinding: None,
        })
    }

    /// The state a whole history makes (`None` if it does not start with `WorkflowInstanceStarted`).
    pub fn fold<'a>(spec: &Spec, history: impl IntoIterator<Item = &'a Recorded>) -> Option<Self> {
        let mut it = history.into_iter();
        let mut saga = Self::start(it.next()?)?;
        for e in it {
            saga.apply(spec, e);
        }
        Some(saga)
    }

    /// Steps still in play, other than `except`.
    pub fn live_steps<'a>(&'a self, except: &'a str) -> impl Iterator<Item = (&'a String, &'a Run)> + 'a {
        self.runs.iter().filter(move |(id, r)| id.as_str() != except && r.phase.live())
    }

    /// Every live agent task (a compensation's included).
    pub fn live_tasks(&self) -> Vec<&Task> {
        if self.ended.is_some() {
            return Vec::new();
        }
        let mut tasks: Vec<&Task> =
            self.runs.values().filter(|r| r.phase.live()).filter_map(|r| r.task.as_ref()).collect();
        if let Some(t) = self.unwinding.as_ref().and_then(|u| u.current.as_ref()).and_then(|c| c.task.as_ref()) {
            tasks.push(t);
        }
        tasks
    }

    /// The live task with `id`.
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.live_tasks().into_iter().find(|t| t.id == id)
    }

    fn task_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        if let Some(t) = self.unwinding.as_mut().and_then(|u| u.current.as_mut()).and_then(|c| c.task.as_mut()) {
            if t.id == id {
                return Some(t);
            }
        }
        self.runs.values_mut().filter_map(|r| r.task.as_mut()).find(|t| t.id == id)
    }

    /// The step reached `done`: it counts as completed, and a branch it ends arrives at its join.
    fn completed(&mut self, spec: &Spec, step: &str) {
        if let Some(r) = self.runs.get_mut(step) {
            r.phase = Phase::Done;
            r.task = None;
        }
        self.completed.push(step.to_owned());
        self.arrive(spec, step, spec.step(step).and_then(|s| s.next.as_deref()));
    }

    /// `from` moves to `to`: when `to` is a join, `from`'s branch has arrived there.
    fn arrive(&mut self, spec: &Spec, from: &str, to: Option<&str>) {
        if let Some(join) = to {
            if let Some(branch) = spec.branch_of(join, from) {
                self.arrivals.entry(join.to_owned()).or_default().insert(branch.to_owned());
            }
        }
    }

    /// The state after `e`.
    pub fn apply(&mut self, spec: &Spec, e: &Recorded) {
        self.version = e.version;
        if let Some(r) = e.payload::<WorkflowStepReady>() {
            let phase = match r.step_type.as_str() {
                "AgentTask" => Phase::Assigning,
                "Wait" => Phase::Waiting,
                _ => Phase::Ready,
            };
            self.arrivals.remove(&r.step_id);
            let run = Run { step_type: r.step_type, attempt: r.attempt, ready: e.version, phase, task: None };
            self.runs.insert(r.step_id, run);
        } else if let Some(c) = e.payload::<WorkflowStepCompleted>() {
            self.completed(spec, &c.step_id);
        } else if let Some(r) = e.payload::<WorkflowStepRetryScheduled>() {
            if let Some(run) = self.runs.get_mut(&r.step_id) {
                run.phase = Phase::BackingOff;
                run.task = None;
            }
        } else if let Some(f) = e.payload::<WorkflowStepFailed>() {
            if let Some(run) = self.runs.get_mut(&f.step_id) {
                run.phase = Phase::Failed;
                run.task = None;
            }
            let to = spec.step(&f.step_id).and_then(|s| s.on_failure.clone());
            self.arrive(spec, &f.step_id, to.as_deref());
            self.failure = Some((f.step_id, f.reason));
        } else if let Some(a) = e.payload::<AgentTaskAssigned>() {
            let task = Task {
                id: a.task_id,
                step: a.step_id.clone(),
                attempt: a.attempt,
                compensation: a.compensation,
                holder: Some((a.agent_id, a.fencing_token)),
            };
            if a.compensation {
                if let Some(c) = self.unwinding.as_mut().and_then(|u| u.current.as_mut()) {
                    c.task = Some(task);
                }
            } else if let Some(run) = self.runs.get_mut(&a.step_id) {
                run.phase = Phase::Running;
                run.task = Some(task);
            }
        } else if let Some(l) = e.payload::<AgentTaskLeaseLost>() {
            if let Some(t) = self.task_mut(l.task_id) {
                t.holder = None;
            }
            if let Some(run) = self.runs.get_mut(&l.step_id) {
                if run.task.as_ref().is_some_and(|t| t.id == l.task_id) {
                    run.phase = Phase::Assigning;
                }
            }
        } else if let Some(c) = e.payload::<AgentTaskCompleted>() {
            if c.compensation {
                if let Some(u) = self.unwinding.as_mut() {
                    u.current = None;
                    u.done.push(c.step_id);
                }
            } else {
                self.completed(spec, &c.step_id);
            }
        } else if let Some(f) = e.payload::<AgentTaskFailed>() {
            if f.compensation {
                if let Some(u) = self.unwinding.as_mut() {
                    u.current = None;
                    u.done.push(f.step_id.clone());
                    u.failed.push(f.step_id);
                }
            } else if let Some(run) = self.runs.get_mut(&f.step_id) {
                run.phase = Phase::Failed;
                run.task = None;
            }
        } else if let Some(a) = e.payload::<ApprovalRequested>() {
            if let Some(run) = self.runs.get_mut(&a.step_id) {
                run.phase = Phase::AwaitingApproval;
            }
        } else if let Some(d) = e.payload::<ApprovalDecided>() {
            if let Some(run) = self.runs.get_mut(&d.step_id) {
                run.phase = if d.outcome == "Granted" { Phase::Ready } else { Phase::Failed };
            }
        } else if let Some(c) = e.payload::<CompensationStarted>() {
            let (step, reason) = self.failure.clone().unwrap_or_default();
            let u = self.unwinding.get_or_insert_with(|| Unwinding { step, reason, ..Unwinding::default() });
            u.current = Some(Compensating { step: c.step_id, started: e.version, task: None });
            for run in self.runs.values_mut() {
                if run.phase.live() {
                    run.phase = Phase::Failed;
                    run.task = None;
                }
            }
        } else if e.event_type == WorkflowCompleted::TYPE {
            self.ended = Some(Ending::Completed);
        } else if e.event_type == WorkflowFailed::TYPE {
            self.ended = Some(Ending::Failed);
        } else if e.event_type == WorkflowCancelled::TYPE {
            self.ended = Some(Ending::Cancelled);
        } else if e.event_type == WorkflowContinuedAsNew::TYPE {
            self.ended = Some(Ending::ContinuedAsNew);
        }
        // TimerFired, AgentTaskProgressed: no change of state (the decisions they lead to are recorded).
    }
}
