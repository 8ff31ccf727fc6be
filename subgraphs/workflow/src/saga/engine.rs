//! The saga's unit of work: an instance loaded under its stream's lock, a fact recorded (a start, an agent's
//! report, a timer, governance's answer, a cancellation), the decisions it leads to ([`super::decide`])
//! appended after it, and what they set in motion — timers, agent leases, the `RequestApproval` command,
//! usage — done in the same transaction. So a crash at any point (a kill -9 between two steps) leaves either
//! all of a transition or none of it, and the instance resumes from its history with no side effect twice:
//! timers and commands live in the same database transaction as the events; an agent lease taken in Redis
//! by a transaction that then rolled back is taken again by the same task id (its holder), with a higher
//! fencing token.
//!
//! The history's order is what replay relies on: after each event come the decisions it led to, depth
//! first (each decision followed by its own); the facts the decisions' effects bring (an agent assigned)
//! come after the whole cascade.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use kernel::contracts::governance::models;
use kernel::envelope::Event;
use kernel::leases;
use kernel::{Error, Kernel, Result, TenantId, Work};
use serde_json::{json, Value};

use super::decide::{self, Decision};
use super::state::{Phase, Saga};
use crate::agents::{self, store as tasks, store::TaskRow, store::TaskStatus};
use crate::definitions::spec::{Spec, StepKind};
use crate::definitions::{self, Definition};
use crate::events::*;
use crate::history::{self, DefinitionRef, Recorded, Stream, HISTORY_LIMIT};
use crate::ids::{InstanceId, ProjectId, TaskId};
use crate::process::{self, ProcessState};

/// Most events one unit of work appends (a definition that would cascade further is a bug: the checks on
/// publication refuse loops without a wait).
const MAX_EVENTS_PER_UNIT: usize = 2_000;
/// How soon a task no agent was free for is offered again.
pub const ASSIGN_RETRY: Duration = Duration::seconds(2);
/// How long a task no model policy covers waits for one (governance's policies reach workflow by events)
/// before it fails.
pub const MODEL_POLICY_GRACE: Duration = Duration::seconds(60);
/// Largest input an instance starts with (serialized JSON).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// An instance to start.
pub struct NewInstance {
    pub instance: InstanceId,
    pub definition: Definition,
    pub project_id: Option<ProjectId>,
    pub input: Value,
    pub started_by: String,
    /// The instance it continues (continue-as-new), if any.
    pub continues: Option<Continues>,
}

/// What an instance that continues another starts from.
pub struct Continues {
    pub instance: InstanceId,
    /// The step it starts at.
    pub step: String,
    /// The steps the other completed, oldest first, each once (at its last completion).
    pub completed: Vec<String>,
}

/// The definition version `key` names (the latest when `version` is `None`; the platform's with
/// `platform`), which must be published to start an instance.
pub async fn startable(
    work: &mut Work,
    tenant: &TenantId,
    key: &str,
    version: Option<i32>,
    platform: bool,
) -> Result<Definition> {
    let owner = if platform { TenantId::platform() } else { tenant.clone() };
    let key = kernel::error::clip(key.trim(), 63);
    let d = match version {
        Some(v) => definitions::store::get(work, &owner, &key, v).await?,
        None => definitions::store::latest(work, &owner, &key).await?,
    };
    let whose = if platform { "the platform's" } else { "the tenant's" };
    let d = d.ok_or_else(|| Error::not_found(format!("no workflow definition `{key}` among {whose}")))?;
    if d.status != definitions::DefinitionStatus::Published {
        return Err(Error::conflict(format!(
            "workflow definition `{key}` version {} is deprecated and starts no instances",
            d.version
        )));
    }
    Ok(d)
}

/// An instance's input: a JSON object of at most [`MAX_INPUT_BYTES`].
pub fn check_input(input: &Value) -> Result<()> {
    if !input.is_object() {
        return Err(Error::bad_input("input", "a workflow's input is a JSON object"));
    }
    let size = serde_json::to_vec(input).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_INPUT_BYTES {
        return Err(Error::bad_input("input", format!("a workflow's input is at most {MAX_INPUT_BYTES} bytes")));
    }
    kernel::error::no_nul("input", input)
}

/// What an agent reports about its task.
pub enum Report {
    Progress { percent: u8, message: String },
    Complete { outputs: Vec<ArtifactRef>, provider: String, model: String, tokens: i64, duration_ms: i64 },
    Fail { reason: String },
}

/// One instance in one unit of work.
pub struct Engine<'k> {
    kernel: &'k Kernel,
    tenant: TenantId,
    spec: Spec,
    definition: DefinitionRef,
    saga: Saga,
    stream: Stream,
    history: Vec<Recorded>,
    /// Events whose effects have not run yet.
    effects_due: VecDeque<Recorded>,
    /// Leases given up by this unit of work, released in Redis by [`Engine::release`].
    releases: Vec<leases::Lease>,
    appended: usize,
    now: DateTime<Utc>,
}

impl<'k> Engine<'k> {
    /// Starts `new`: its stream, `WorkflowInstanceStarted`, and everything that follows until the instance
    /// waits (for an agent, a timer, an approval). `CONFLICT` if the instance exists.
    pub async fn start(
        work: &mut Work,
        kernel: &'k Kernel,
        tenant: &TenantId,
        new: NewInstance,
        now: DateTime<Utc>,
    ) -> Result<Engine<'k>> {
        check_input(&new.input)?;
        let d = new.definition;
        let definition = DefinitionRef { tenant: d.tenant_id.clone(), key: d.key.clone(), version: d.version };
        let mut stream = Stream::create(work, tenant, new.instance, &definition).await?;
        let (continued_from, start_step, completed) = match new.continues {
            Some(c) => (Some(c.instance), Some(c.step), c.completed),
            None => (None, None, Vec::new()),
        };
        let started = WorkflowInstanceStarted {
            instance_id: new.instance,
            definition_key: d.key.clone(),
            definition_version: d.version,
            platform_definition: d.is_platform(),
            project_id: new.project_id,
            input: new.input,
            started_by: new.started_by,
            continued_from,
            start_step,
            completed,
            continue_as_new_after: Some(d.spec.continue_after()),
        };
        let first = stream.append(work, tenant, &started).await?;
        let saga =
            Saga::start(&first).ok_or_else(|| Error::internal(anyhow::anyhow!("a start that starts nothing")))?;
        let mut engine = Engine {
            kernel,
            tenant: tenant.clone(),
            spec: d.spec,
            definition,
            saga,
            stream,
            history: vec![first.clone()],
            effects_due: VecDeque::from([first.clone()]),
            releases: Vec::new(),
            appended: 1,
            now,
        };
        engine.cascade(work, &first).await?;
        engine.settle(work).await?;
        Ok(engine)
    }

    /// The instance, locked for this unit of work; `NOT_FOUND` if the tenant has none with this id.
    pub async fn load(
        work: &mut Work,
        kernel: &'k Kernel,
        tenant: &TenantId,
        instance: InstanceId,
        now: DateTime<Utc>,
    ) -> Result<Engine<'k>> {
        let missing = || Error::not_found(format!("no workflow instance `{instance}`"));
        let (version, definition) = history::store::lock(work, tenant, instance).await?.ok_or_else(missing)?;
        let history = history::store::read(work, tenant, instance, 0, HISTORY_LIMIT).await?;
        let d =
            definitions::store::get(work, &definition.tenant, &definition.key, definition.version).await?.ok_or_else(
                || Error::internal(anyhow::anyhow!("instance {instance} runs a definition that is not stored")),
            )?;
        let saga = Saga::fold(&d.spec, &history)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("instance {instance} has no start in its history")))?;
        Ok(Engine {
            kernel,
            tenant: tenant.clone(),
            spec: d.spec,
            definition,
            saga,
            stream: Stream::at(instance, version),
            history,
            effects_due: VecDeque::new(),
            releases: Vec::new(),
            appended: 0,
            now,
        })
    }

    pub fn saga(&self) -> &Saga {
        &self.saga
    }

    pub fn instance(&self) -> InstanceId {
        self.saga.instance
    }

    /// Releases in Redis the leases this unit of work gave up: after it committed (a mutation), or just
    /// before (a timer's or a consumer's unit, which the kernel commits: a commit that then fails leaves a
    /// task without its lease, which the task's lease check finds and leases again).
    pub async fn release(&mut self) -> Result<()> {
        for lease in std::mem::take(&mut self.releases) {
            leases::release(&self.kernel.cache, &lease).await?;
        }
        Ok(())
    }

    /// The instance's process state, as the projection will show it.
    pub fn process_state(&self) -> Option<ProcessState> {
        self.history.iter().fold(None, process::apply)
    }

    // ---- facts -------------------------------------------------------------------------------------

    /// Cancels the instance: `CONFLICT` if it has ended.
    pub async fn cancel(&mut self, work: &mut Work, reason: &str, by: &str) -> Result<()> {
        if let Some(end) = self.saga.ended {
            return Err(Error::conflict(format!("workflow instance `{}` has ended ({end:?})", self.instance())));
        }
        let e =
            WorkflowCancelled { instance_id: self.instance(), reason: reason.to_owned(), cancelled_by: by.to_owned() };
        self.fact(work, &e).await?;
        self.settle(work).await
    }

    /// Governance's answer about the gate of `step`'s run `run` (the version of the `WorkflowStepReady` that
    /// began it); ignored (`false`) unless the gate waits for it.
    pub async fn approval(
        &mut self,
        work: &mut Work,
        step: &str,
        run: i64,
        outcome: &str,
        decided_by: Vec<String>,
        note: Option<String>,
    ) -> Result<bool> {
        let attempt = match self.saga.runs.get(step) {
            Some(r) if self.saga.ended.is_none() && r.ready == run && r.phase == Phase::AwaitingApproval => r.attempt,
            _ => return Ok(false),
        };
        let e = ApprovalDecided {
            instance_id: self.instance(),
            step_id: step.to_owned(),
            attempt,
            outcome: outcome.to_owned(),
            decided_by,
            note,
        };
        self.fact(work, &e).await?;
        self.settle(work).await?;
        Ok(true)
    }

    /// A timer of this instance fired (`name`: `<purpose>:<step>[:compensation]`). A timer its step has
    /// moved past changes nothing.
    pub async fn timer(&mut self, work: &mut Work, name: &str, payload: &Value) -> Result<()> {
        let mut parts = name.splitn(3, ':');
        let (purpose, step) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().to_owned());
        let compensation = parts.next() == Some("compensation");
        let attempt = payload.get("attempt").and_then(Value::as_u64).and_then(|a| u32::try_from(a).ok()).unwrap_or(0);
        match purpose {
            "wait" | "timeout" | "retry" => {
                if decide::timer_applies(&self.saga, purpose, &step, attempt) {
                    let e = TimerFired {
                        instance_id: self.instance(),
                        step_id: step,
                        purpose: purpose.to_owned(),
                        attempt,
                    };
                    self.fact(work, &e).await?;
                }
            }
            "assign" => self.assign(work, &step, compensation).await?,
            "lease" => self.check_lease(work, payload).await?,
            _ => {
                tracing::warn!(tenant = %self.tenant, instance = %self.instance(), name, "a workflow timer of no known purpose; dropped")
            }
        }
        self.settle(work).await
    }

    /// Offers `step`'s waiting agent task to the pool now; its task (live or not) after.
    pub async fn assign_now(&mut self, work: &mut Work, step: &str) -> Result<TaskRow> {
        let run = self.saga.runs.get(step).ok_or_else(|| {
            Error::bad_input("stepId", format!("step `{step}` has not run in this instance")).with("step", step)
        })?;
        if run.step_type != "AgentTask" {
            return Err(Error::bad_input("stepId", format!("step `{step}` is no agent task")).with("step", step));
        }
        let ready = run.ready;
        if self.saga.ended.is_none() && run.phase == Phase::Assigning {
            self.assign(work, step, false).await?;
            self.settle(work).await?;
        }
        let id = agents::task_id(self.instance(), step, ready, false);
        tasks::task(work, &self.tenant, id).await?.ok_or_else(|| {
            let phase = self.saga.runs.get(step).map_or("not run", |r| r.phase.describe());
            Error::conflict(format!("step `{step}` has no agent task (it is {phase})"))
        })
    }

    /// An agent's report about its task, with the fencing token it holds, from the agent itself (`caller`:
    /// the subject of its token): `FORBIDDEN` from anyone but the task's holder, `CONFLICT` if the task no
    /// longer runs or the token is not its latest — nothing written either way.
    pub async fn report(
        &mut self,
        work: &mut Work,
        row: &TaskRow,
        caller: &str,
        token: i64,
        report: Report,
    ) -> Result<()> {
        let Some(task) = self.saga.task(row.id).cloned() else {
            return Err(Error::conflict(format!("agent task `{}` is no longer running ({:?})", row.id, row.status))
                .with("status", row.status.as_str()));
        };
        let Some((agent, latest)) = task.holder.clone() else {
            return Err(Error::conflict(format!(
                "agent task `{}` has no agent now (its lease was lost): it is being assigned again",
                row.id
            ))
            .with("fencingToken", token));
        };
        if caller != agent {
            return Err(Error::forbidden(format!("agent task `{}` is held by another agent", row.id)));
        }
        if token != latest {
            return Err(Error::conflict(format!(
                "the fencing token {token} of agent task `{}` was superseded (the latest is {latest})",
                row.id
            ))
            .with("fencingToken", token)
            .with("latestToken", latest));
        }
        // The history is the authority on the task's token: every token the task was given was recorded
        // there, under the stream's lock this unit of work holds, before its holder learned it.
        let resource = row.resource.clone().unwrap_or_default();
        let ttl = self.pool_ttl(work, &row.pool).await?;
        let lease = agents::held(&self.tenant, &resource, row.id, token, ttl);
        let id = self.instance();
        match report {
            Report::Progress { percent, message } => {
                if !leases::renew(&self.kernel.cache, &lease).await? {
                    // The lease expired before this report: its check (a timer) fences the holder off and
                    // leases the task again.
                    return Err(Error::conflict(format!(
                        "the lease of agent task `{}` expired before this report (report within {ttl} s of \
                         the last): the task is being assigned again",
                        row.id
                    ))
                    .with("fencingToken", token));
                }
                // Only progress goes into the history (at most 100 events a task): a report that only renews
                // the lease, or repeats the percentage, updates the task alone.
                let moved = i16::from(percent) > row.percent;
                tasks::progressed(work, &self.tenant, row.id, i16::from(percent).max(row.percent), &message).await?;
                if moved {
                    let e = AgentTaskProgressed {
                        instance_id: id,
                        task_id: row.id,
                        fencing_token: token,
                        percent,
                        message,
                    };
                    self.fact(work, &e).await?;
                }
            }
            Report::Complete { outputs, provider, model, tokens, duration_ms } => {
                // Spent either way, so metered either way.
                self.meter(work, row, &agent, (&provider, &model), tokens, duration_ms).await?;
                // Released now, not after the commit: the step this completion readies may need this very
                // slot in this unit of work. Should the commit then fail, the agent's report sent again
                // still holds (its token is the history's); only after a lease check finds the slot gone
                // is the task leased again.
                leases::release(&self.kernel.cache, &lease).await?;
                if let Some(reason) = self.outside_terms(row, &provider, &model, tokens) {
                    self.task_failed(work, row.id, &task.step, task.attempt, task.compensation, reason).await?;
                    return self.settle(work).await;
                }
                tasks::ended(work, &self.tenant, row.id, TaskStatus::Completed, &outputs, None).await?;
                let e = AgentTaskCompleted {
                    instance_id: id,
                    task_id: row.id,
                    step_id: task.step.clone(),
                    compensation: task.compensation,
                    outputs,
                    provider,
                    model,
                    tokens,
                    duration_ms,
                    agent_id: agent.clone(),
                    skill: row.skill.clone(),
                    project_id: self.saga.project_id,
                };
                self.fact(work, &e).await?;
            }
            Report::Fail { reason } => {
                leases::release(&self.kernel.cache, &lease).await?;
                self.task_failed(work, row.id, &task.step, task.attempt, task.compensation, reason).await?;
            }
        }
        self.settle(work).await
    }

    /// The task's attempt failed, for `reason`: its row says so, and `AgentTaskFailed` is recorded.
    async fn task_failed(
        &mut self,
        work: &mut Work,
        task: TaskId,
        step: &str,
        attempt: u32,
        compensation: bool,
        reason: String,
    ) -> Result<()> {
        tasks::ended(work, &self.tenant, task, TaskStatus::Failed, &[], Some(&reason)).await?;
        let e = AgentTaskFailed {
            instance_id: self.instance(),
            task_id: task,
            step_id: step.to_owned(),
            attempt,
            compensation,
            reason,
        };
        self.fact(work, &e).await
    }

    /// Why a completion that used `provider`'s `model` and `tokens` is outside the task's model policies
    /// (the rules of `evaluateModelPolicy`); `None` when within them. A task offered before workflow kept
    /// its terms has none, and is not checked.
    fn outside_terms(&self, row: &TaskRow, provider: &str, model: &str, tokens: i64) -> Option<String> {
        let terms = row.model_policies.as_ref().map(|p| &p.0)?;
        let used = models::Task {
            project_id: self.saga.project_id.map(|p| p.as_uuid()),
            skill_key: Some(row.skill.clone()),
            provider: provider.to_owned(),
            model: model.to_owned(),
            tokens: Some(tokens),
            cost_today_cents: None,
        };
        let d = models::evaluate(terms, &used);
        (!d.allowed).then(|| format!("outside the model policies {}: {}", d.policies.join(", "), d.reason))
    }

    // ---- the cascade -------------------------------------------------------------------------------

    /// Appends an event at the stream's next version and folds it in; its effects run at [`Self::settle`].
    async fn append<E: Event>(&mut self, work: &mut Work, event: &E) -> Result<Recorded> {
        if self.appended >= MAX_EVENTS_PER_UNIT {
            return Err(Error::internal(anyhow::anyhow!(
                "instance {} appended {MAX_EVENTS_PER_UNIT} events in one unit of work",
                self.instance()
            )));
        }
        let e = self.stream.append(work, &self.tenant, event).await?;
        self.saga.apply(&self.spec, &e);
        self.history.push(e.clone());
        self.effects_due.push_back(e.clone());
        self.appended += 1;
        Ok(e)
    }

    /// Records a fact and the decisions it leads to.
    async fn fact<E: Event>(&mut self, work: &mut Work, event: &E) -> Result<()> {
        let e = self.append(work, event).await?;
        self.cascade(work, &e).await
    }

    /// The decisions after `e`, depth first: each decision is followed by its own.
    async fn cascade(&mut self, work: &mut Work, e: &Recorded) -> Result<()> {
        let mut due: Vec<Decision> = decide::decide(&self.saga, &self.spec, e);
        due.reverse();
        while let Some(d) = due.pop() {
            let e = match d {
                Decision::StepReady(d) => self.append(work, &d).await?,
                Decision::StepCompleted(d) => self.append(work, &d).await?,
                Decision::RetryScheduled(d) => self.append(work, &d).await?,
                Decision::StepFailed(d) => self.append(work, &d).await?,
                Decision::ApprovalRequested(d) => self.append(work, &d).await?,
                Decision::CompensationStarted(d) => self.append(work, &d).await?,
                Decision::Completed(d) => self.append(work, &d).await?,
                Decision::Failed(d) => self.append(work, &d).await?,
                Decision::ContinuedAsNew(d) => self.append(work, &d).await?,
            };
            let mut next = decide::decide(&self.saga, &self.spec, &e);
            next.reverse();
            due.extend(next);
        }
        Ok(())
    }

    /// Runs the effects of every event appended, in order (an effect may record a fact, whose decisions
    /// and effects follow).
    async fn settle(&mut self, work: &mut Work) -> Result<()> {
        while let Some(e) = self.effects_due.pop_front() {
            self.effects(work, &e).await?;
        }
        Ok(())
    }

    async fn effects(&mut self, work: &mut Work, e: &Recorded) -> Result<()> {
        if let Some(r) = e.payload::<WorkflowStepReady>() {
            let step = self.spec.step(&r.step_id).cloned();
            if let Some(t) = step.as_ref().and_then(|s| s.timeout_seconds) {
                let at = self.now + Duration::seconds(i64::from(t));
                self.set_timer(work, "timeout", &r.step_id, false, at, json!({ "attempt": r.attempt })).await?;
            }
            match step.map(|s| s.kind) {
                Some(StepKind::AgentTask { .. }) => self.assign(work, &r.step_id, false).await?,
                Some(StepKind::Wait { wait_seconds }) => {
                    let at = self.now + Duration::seconds(i64::from(wait_seconds));
                    self.set_timer(work, "wait", &r.step_id, false, at, json!({ "attempt": r.attempt })).await?;
                }
                _ => {}
            }
        } else if let Some(a) = e.payload::<ApprovalRequested>() {
            self.request_approval(work, &a).await?;
        } else if let Some(c) = e.payload::<WorkflowStepCompleted>() {
            self.stop_step(work, &c.step_id, "the step completed").await?;
        } else if let Some(f) = e.payload::<WorkflowStepFailed>() {
            self.stop_step(work, &f.step_id, &f.reason).await?;
        } else if let Some(r) = e.payload::<WorkflowStepRetryScheduled>() {
            self.stop_step(work, &r.step_id, "the attempt failed").await?;
            let at = self.now + Duration::milliseconds(r.delay_ms);
            self.set_timer(work, "retry", &r.step_id, false, at, json!({ "attempt": r.attempt })).await?;
        } else if let Some(c) = e.payload::<AgentTaskCompleted>() {
            if !c.compensation {
                self.stop_step(work, &c.step_id, "the task completed").await?;
            }
            self.cancel_timers(work, &c.step_id, c.compensation).await?;
        } else if let Some(f) = e.payload::<AgentTaskFailed>() {
            self.cancel_timers(work, &f.step_id, f.compensation).await?;
        } else if let Some(a) = e.payload::<AgentTaskAssigned>() {
            let ttl = self.pool_ttl(work, &a.pool).await?;
            let at = self.now + Duration::seconds(i64::from(ttl));
            let check = json!({ "taskId": a.task_id, "fencingToken": a.fencing_token, "attempt": a.attempt });
            self.set_timer(work, "lease", &a.step_id, a.compensation, at, check).await?;
        } else if let Some(c) = e.payload::<CompensationStarted>() {
            // The failure stops everything else in play; then the compensation's task.
            self.stop_all(work, "the instance is unwinding a failure").await?;
            self.assign(work, &c.step_id, true).await?;
        } else if e.event_type == WorkflowCompleted::TYPE
            || e.event_type == WorkflowFailed::TYPE
            || e.event_type == WorkflowCancelled::TYPE
        {
            self.stop_all(work, &format!("the instance ended ({})", e.event_type)).await?;
        } else if let Some(c) = e.payload::<WorkflowContinuedAsNew>() {
            self.stop_all(work, "the instance continued as a new one").await?;
            self.continue_as_new(work, &c).await?;
        }
        Ok(())
    }

    /// Starts the instance that continues this one, in this unit of work: the same definition version,
    /// input, project and starter, from step `c.stepId`, with the steps completed so far.
    async fn continue_as_new(&mut self, work: &mut Work, c: &WorkflowContinuedAsNew) -> Result<()> {
        let d = &self.definition;
        let definition = definitions::store::get(work, &d.tenant, &d.key, d.version).await?.ok_or_else(|| {
            Error::internal(anyhow::anyhow!("instance {} runs a definition that is not stored", self.instance()))
        })?;
        let mut completed: Vec<String> = Vec::new();
        for step in self.saga.completed.iter().rev() {
            if !completed.contains(step) {
                completed.push(step.clone());
            }
        }
        completed.reverse();
        let new = NewInstance {
            instance: c.next_instance_id,
            definition,
            project_id: self.saga.project_id,
            input: self.saga.input.clone(),
            started_by: self.started_by(),
            continues: Some(Continues { instance: self.instance(), step: c.step_id.clone(), completed }),
        };
        // Boxed: a unit of work that starts another instance is itself the start of one.
        let mut next = Box::pin(Engine::start(work, self.kernel, &self.tenant, new, self.now)).await?;
        self.releases.append(&mut next.releases);
        tracing::info!(
            tenant = %self.tenant, instance = %self.instance(), next = %c.next_instance_id, history = c.history_length,
            "a workflow instance continued as a new one"
        );
        Ok(())
    }

    // ---- effects -----------------------------------------------------------------------------------

    fn timer_name(purpose: &str, step: &str, compensation: bool) -> String {
        if compensation {
            format!("{purpose}:{step}:compensation")
        } else {
            format!("{purpose}:{step}")
        }
    }

    /// Sets the timer, replacing one of the same name.
    async fn set_timer(
        &self,
        work: &mut Work,
        purpose: &str,
        step: &str,
        compensation: bool,
        at: DateTime<Utc>,
        payload: Value,
    ) -> Result<()> {
        let (subject, name) = (self.instance().to_string(), Self::timer_name(purpose, step, compensation));
        kernel::timers::cancel(work, &self.tenant, &subject, Some(&name)).await?;
        kernel::timers::set(work, &self.tenant, &subject, &name, at, &payload).await
    }

    async fn cancel_timers(&self, work: &mut Work, step: &str, compensation: bool) -> Result<()> {
        let subject = self.instance().to_string();
        for purpose in ["timeout", "wait", "retry", "assign", "lease"] {
            let name = Self::timer_name(purpose, step, compensation);
            kernel::timers::cancel(work, &self.tenant, &subject, Some(&name)).await?;
        }
        Ok(())
    }

    /// `step` is no longer in play: its timers go, its live task is cancelled and its lease released.
    async fn stop_step(&mut self, work: &mut Work, step: &str, why: &str) -> Result<()> {
        self.cancel_timers(work, step, false).await?;
        let stopped = tasks::cancel_live(work, &self.tenant, self.instance(), Some(step), why).await?;
        self.give_up(stopped);
        Ok(())
    }

    /// Nothing of the instance is in play any more: every timer and live task goes.
    async fn stop_all(&mut self, work: &mut Work, why: &str) -> Result<()> {
        kernel::timers::cancel(work, &self.tenant, &self.instance().to_string(), None).await?;
        let stopped = tasks::cancel_live(work, &self.tenant, self.instance(), None, why).await?;
        self.give_up(stopped);
        Ok(())
    }

    /// The leases of stopped tasks, released by [`Engine::release`].
    fn give_up(&mut self, stopped: Vec<(String, TaskId, i64)>) {
        for (resource, task, token) in stopped {
            self.releases.push(agents::held(&self.tenant, &resource, task, token, 1));
        }
    }

    async fn pool_ttl(&self, work: &mut Work, pool: &str) -> Result<i32> {
        Ok(tasks::pool(work, &self.tenant, pool).await?.map_or(30, |p| p.lease_ttl_seconds))
    }

    /// The skill and pool of `step`'s task (or of its compensation).
    fn skill_and_pool(&self, step: &str, compensation: bool) -> Option<(String, String)> {
        let s = self.spec.step(step)?;
        let own_pool = match &s.kind {
            StepKind::AgentTask { skill, pool, .. } if !compensation => return Some((skill.clone(), pool.clone())),
            StepKind::AgentTask { pool, .. } => Some(pool.clone()),
            _ => None,
        };
        let c = s.compensation.as_ref().filter(|_| compensation)?;
        Some((c.skill.clone(), c.pool.clone().or(own_pool)?))
    }

    /// Leases an agent for the task of `step`'s current run (or of its compensation) if it still waits for
    /// one, and records `AgentTaskAssigned`; with no agent free, offers it again after [`ASSIGN_RETRY`].
    async fn assign(&mut self, work: &mut Work, step: &str, compensation: bool) -> Result<()> {
        let waiting = if self.saga.ended.is_some() {
            None
        } else if compensation {
            let current = self.saga.unwinding.as_ref().and_then(|u| u.current.as_ref());
            current.and_then(|c| {
                let free = c.task.as_ref().is_none_or(|t| t.holder.is_none());
                (c.step == step && free).then_some((1, c.started))
            })
        } else {
            self.saga.runs.get(step).and_then(|r| (r.phase == Phase::Assigning).then_some((r.attempt, r.ready)))
        };
        let Some((attempt, run)) = waiting else { return Ok(()) };
        let Some((skill, pool)) = self.skill_and_pool(step, compensation) else {
            return Err(Error::internal(anyhow::anyhow!("step `{step}` has no agent task to assign")));
        };
        let (id, instance) = (agents::task_id(self.instance(), step, run, compensation), self.instance());
        // The task's terms: kept from its first offer that found a policy; a task offered before workflow
        // kept terms (NULL) runs unchecked; otherwise the policies covering it now.
        let offered = tasks::task(work, &self.tenant, id).await?;
        let terms = match offered.as_ref().map(|t| t.model_policies.as_ref().map(|p| p.0.clone())) {
            Some(None) => None,
            Some(Some(kept)) if !kept.is_empty() => Some(kept),
            _ => {
                let covering = agents::models::covering(work, &self.tenant, self.saga.project_id, &skill).await?;
                let project = self.saga.project_id.map(|p| p.as_uuid());
                Some(models::deciding(&covering, project, Some(&skill)).into_iter().cloned().collect::<Vec<_>>())
            }
        };
        let task = tasks::NewTask {
            id,
            instance,
            step,
            attempt,
            compensation,
            skill: &skill,
            pool: &pool,
            model_policies: terms.as_deref(),
        };
        if terms.as_ref().is_some_and(Vec::is_empty) {
            let why = format!(
                "no model policy of the tenant covers skill `{skill}`{}",
                self.saga.project_id.map(|p| format!(" in project {p}")).unwrap_or_default()
            );
            // Workflow learns governance's policies from its events: one just published may not be here yet.
            // The task waits for it a while, offered again every few seconds; then it fails, as governance
            // would deny any model for it (default deny).
            let first_offered = offered.as_ref().map_or(self.now, |t| t.assigned_at);
            if self.now < first_offered + MODEL_POLICY_GRACE {
                let waiting = format!("waiting for a model policy: {why}");
                tasks::assigned(work, &self.tenant, &task, None).await?;
                tasks::waiting(work, &self.tenant, id, &waiting).await?;
                let at = self.now + ASSIGN_RETRY;
                return self.set_timer(work, "assign", step, compensation, at, json!({ "attempt": attempt })).await;
            }
            let reason = format!("{why}: its agents may use no model");
            tasks::assigned(work, &self.tenant, &task, None).await?;
            return self.task_failed(work, id, step, attempt, compensation, reason).await;
        }
        let config = tasks::pool(work, &self.tenant, &pool).await?;
        let leased = match &config {
            Some(config) => agents::lease(work, self.kernel, &self.tenant, config, id).await?,
            None => None,
        };
        let Some(leased) = leased else {
            tasks::assigned(work, &self.tenant, &task, None).await?;
            let at = self.now + ASSIGN_RETRY;
            self.set_timer(work, "assign", step, compensation, at, json!({ "attempt": attempt })).await?;
            return Ok(());
        };
        let holder =
            tasks::Holder { agent: &leased.agent, resource: &leased.lease.resource, token: leased.lease.token };
        tasks::assigned(work, &self.tenant, &task, Some(holder)).await?;
        let e = AgentTaskAssigned {
            instance_id: instance,
            task_id: id,
            step_id: step.to_owned(),
            attempt,
            compensation,
            skill,
            pool,
            agent_id: leased.agent,
            fencing_token: leased.lease.token,
            model_policies: terms.iter().flatten().map(models::Terms::label).collect(),
        };
        self.fact(work, &e).await
    }

    /// A task's lease check: still held by the task → checked again a TTL later; gone → the holder is
    /// fenced off and the task leased again.
    async fn check_lease(&mut self, work: &mut Work, check: &Value) -> Result<()> {
        let task = check.get("taskId").and_then(Value::as_str).and_then(|t| t.parse::<TaskId>().ok());
        let token = check.get("fencingToken").and_then(Value::as_i64);
        let (Some(task), Some(token)) = (task, token) else { return Ok(()) };
        let Some(live) = self.saga.task(task).cloned() else { return Ok(()) };
        if live.holder.as_ref().map(|h| h.1) != Some(token) {
            return Ok(());
        }
        let Some(row) = tasks::task(work, &self.tenant, task).await? else { return Ok(()) };
        let resource = row.resource.clone().unwrap_or_default();
        let holder = leases::holder(&self.kernel.cache, &self.tenant, &resource).await?;
        if holder.as_deref() == Some(task.to_string().as_str()) {
            let ttl = self.pool_ttl(work, &row.pool).await?;
            let at = self.now + Duration::seconds(i64::from(ttl));
            return self.set_timer(work, "lease", &live.step, live.compensation, at, check.clone()).await;
        }
        self.lease_lost(work, &live.step, task, token, live.compensation).await
    }

    /// The task's lease is gone: `AgentTaskLeaseLost`, and the task is offered again.
    async fn lease_lost(
        &mut self,
        work: &mut Work,
        step: &str,
        task: TaskId,
        token: i64,
        compensation: bool,
    ) -> Result<()> {
        let e = AgentTaskLeaseLost {
            instance_id: self.instance(),
            task_id: task,
            step_id: step.to_owned(),
            fencing_token: token,
        };
        self.fact(work, &e).await?;
        self.assign(work, step, compensation).await
    }

    /// The `RequestApproval` command for a gate, sent once: its event id is derived from the gate.
    async fn request_approval(&mut self, work: &mut Work, a: &ApprovalRequested) -> Result<()> {
        use kernel::contracts::governance::{ApprovalRequest, ApprovalSubject};
        let Some(StepKind::Approval { approver_roles, quorum, approval_ttl_hours }) =
            self.spec.step(&a.step_id).map(|s| s.kind.clone())
        else {
            return Err(Error::internal(anyhow::anyhow!("step `{}` is no approval gate", a.step_id)));
        };
        let request = RequestApproval {
            request: ApprovalRequest {
                subject: ApprovalSubject {
                    kind: GATE.to_owned(),
                    id: a.approval_key.clone(),
                    project_id: self.saga.project_id.map(|p| p.to_string()),
                },
                summary: format!(
                    "Workflow `{}` (version {}): approve step `{}`",
                    self.definition.key, self.definition.version, a.step_id
                ),
                approver_roles,
                quorum,
                requested_by: self.started_by(),
                expires_at: self.now + Duration::hours(i64::from(approval_ttl_hours)),
                details: json!({ "instanceId": a.instance_id, "stepId": a.step_id, "attempt": a.attempt }),
            },
        };
        let mut envelope = work.envelope(&self.tenant, &request);
        envelope.event_id = request_id(&a.approval_key);
        work.emit_built(&request, &envelope).await
    }

    /// Who started the instance (the `RequestApproval` command names them: they may not approve it).
    pub fn started_by(&self) -> String {
        self.history
            .first()
            .and_then(|e| e.payload::<WorkflowInstanceStarted>())
            .map(|s| s.started_by)
            .unwrap_or_default()
    }

    /// Usage to governance, once per completed task (the task's id keys it): its model's tokens and its time.
    async fn meter(
        &self,
        work: &mut Work,
        row: &TaskRow,
        agent: &str,
        (provider, model): (&str, &str),
        tokens: i64,
        ms: i64,
    ) -> Result<()> {
        use kernel::contracts::usage::UsageRecord;
        let dimensions = [
            ("provider".to_owned(), provider.to_owned()),
            ("model".to_owned(), model.to_owned()),
            ("skill".to_owned(), row.skill.clone()),
            ("pool".to_owned(), row.pool.clone()),
            ("agent".to_owned(), agent.to_owned()),
        ];
        for (meter, quantity) in [("model-tokens", tokens), ("agent-task-ms", ms)] {
            let record = UsageRecord {
                meter: meter.to_owned(),
                quantity,
                occurred_at: Some(self.now),
                dimensions: dimensions.iter().cloned().collect(),
                idempotency_key: Some(format!("{}:{meter}", row.id)),
            };
            work.emit(&self.tenant, &UsageRecorded { record }).await?;
        }
        Ok(())
    }
}

/// The kind of subject workflow's approval requests are about.
pub const GATE: &str = "workflow.Gate";

/// The namespace of `RequestApproval` command ids (UUIDv5 of the gate's key).
const REQUEST_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2b9e_77d4_0c1a_4f6e_8d35_5a7c_e1f0_3b28);

/// The event id of the `RequestApproval` command for the gate `key`: governance's answer carries it as its
/// causation.
pub fn request_id(key: &str) -> String {
    uuid::Uuid::new_v5(&REQUEST_NAMESPACE, key.as_bytes()).to_string()
}
