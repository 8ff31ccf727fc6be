//! A definition's steps and their checks — pure, no I/O, so every rule is tested on its own.
//!
//! A workflow starts at `start` and moves along each step's `next` when the step succeeds (no `next`: the
//! workflow completes). A step that fails after its retries moves to its `onFailure` step when it has one;
//! otherwise the workflow fails and the compensations of the steps that completed run in reverse order.
//!
//! | type | does | fields |
//! |---|---|---|
//! | `AgentTask` | an agent from `pool` runs `skill` | `skill`, `skillVersion` (a semver requirement, default any), `pool` |
//! | `Approval` | waits for governance's decision | `approverRoles`, `quorum`, `approvalTtlHours` |
//! | `Wait` | waits a fixed time | `waitSeconds` |
//! | `Parallel` | runs each of `branches` (the first step of each) at once | `branches`, `join` |
//! | `Join` | continues once every branch of its `Parallel` reached it | — |
//!
//! Every step may have `retry` (attempts and exponential backoff), `timeoutSeconds` and `compensation`
//! (a skill run when a later failure unwinds the workflow); a `Parallel` continues only through its join, so
//! it has no `next`.
//!
//! A loop through a `Wait` may run for ever; its history may not (see [`crate::history`]). Once an
//! instance's history holds `continueAsNewAfter` events (default 10,240), the next time it moves from a
//! completed step to the step after with nothing else in play, it ends as `ContinuedAsNew` and a new
//! instance of the same definition version, input and project goes on from that step, carrying the steps
//! completed so far (a later failure compensates them too).
//!
//! [`Spec::check`] refuses, with `BAD_USER_INPUT` naming the step: an unknown step, a step no path from
//! `start` reaches, a loop without a `Wait` (it would spin), a `Join` that is not exactly one `Parallel`'s or
//! that one of its branches does not reach, a branch that leaves its `Parallel` other than through the join,
//! and fields that do not belong to a step's type.

use std::collections::{BTreeSet, HashMap};

use kernel::{Error, Result};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

/// Most steps in one definition.
pub const MAX_STEPS: usize = 200;
/// Most branches of one `Parallel`.
pub const MAX_BRANCHES: usize = 32;
/// Most attempts a retry policy may ask for.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest wait, timeout or backoff: 30 days.
pub const MAX_SECONDS: u32 = 30 * 24 * 3600;

/// A definition's steps, as stored (`workflow_definitions.spec`) and as the registry files hold them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub start: String,
    pub steps: Vec<Step>,
    /// Once an instance's history holds this many events, it goes on as a new instance (continue-as-new)
    /// at the next step it moves to with nothing else in play; [`CONTINUE_AS_NEW_AFTER`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_as_new_after: Option<u32>,
}

/// When an instance continues as new unless its definition says otherwise: at Temporal's warning length.
pub const CONTINUE_AS_NEW_AFTER: u32 = crate::history::HISTORY_WARNING as u32;
/// The range a definition may set: past the top, an instance could reach the history's hard limit
/// ([`crate::history::HISTORY_LIMIT`]) before it finds a step to continue at.
pub const CONTINUE_AS_NEW_RANGE: std::ops::RangeInclusive<u32> = 10..=40_960;

/// One step. (Its type's fields are flattened beside the common ones; the type refuses fields it does
/// not know, which also refuses a misspelt common field.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<Compensation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum StepKind {
    AgentTask {
        skill: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skill_version: Option<String>,
        pool: String,
    },
    Approval {
        approver_roles: Vec<String>,
        quorum: u32,
        approval_ttl_hours: u32,
    },
    Wait {
        wait_seconds: u32,
    },
    Parallel {
        branches: Vec<String>,
        join: String,
    },
    Join {},
}

/// A step's type, as the API names it.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "WorkflowStepType")]
pub enum StepType {
    AgentTask,
    Approval,
    Wait,
    Parallel,
    Join,
}

impl StepType {
    pub fn of(kind: &StepKind) -> Self {
        match kind {
            StepKind::AgentTask { .. } => StepType::AgentTask,
            StepKind::Approval { .. } => StepType::Approval,
            StepKind::Wait { .. } => StepType::Wait,
            StepKind::Parallel { .. } => StepType::Parallel,
            StepKind::Join {} => StepType::Join,
        }
    }
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::AgentTask { .. } => "AgentTask",
            StepKind::Approval { .. } => "Approval",
            StepKind::Wait { .. } => "Wait",
            StepKind::Parallel { .. } => "Parallel",
            StepKind::Join {} => "Join",
        }
    }
}

/// Attempts of a step and the exponential backoff between them (`initial × 2ⁿ`, at most `max`).
#[derive(async_graphql::SimpleObject, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "RetryPolicy")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    pub max_attempts: u32,
    pub initial_backoff_seconds: u32,
    pub max_backoff_seconds: u32,
}

impl Retry {
    /// The wait before attempt `attempt` (2 is the first retry).
    pub fn backoff(&self, attempt: u32) -> std::time::Duration {
        let doublings = attempt.saturating_sub(2).min(31);
        let secs = u64::from(self.initial_backoff_seconds).saturating_mul(1u64 << doublings);
        std::time::Duration::from_secs(secs.min(u64::from(self.max_backoff_seconds)))
    }
}

/// What undoes a completed step when a later one fails the workflow: a skill run by an agent of the step's
/// pool (or of `pool`).
#[derive(async_graphql::SimpleObject, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[graphql(name = "StepCompensation")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Compensation {
    pub skill: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// `BAD_USER_INPUT` about step `step`, with the step in the error's details.
fn refuse(step: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_input("steps", format!("step `{step}`: {message}")).with("step", step)
}

/// A step id, a pool, a skill key: 1–63 lower-case letters, digits, hyphens and underscores.
fn name_ok(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Spec {
    /// The step with `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The skills the definition's agent tasks and compensations name (key, version requirement), each
    /// with the first step that names it.
    pub fn skills(&self) -> Vec<(String, Option<String>, String)> {
        let mut out: Vec<(String, Option<String>, String)> = Vec::new();
        let mut add = |skill: &str, version: Option<&String>, step: &str| {
            if !out.iter().any(|(k, v, _)| k == skill && v.as_ref() == version) {
                out.push((skill.to_owned(), version.cloned(), step.to_owned()));
            }
        };
        for s in &self.steps {
            if let StepKind::AgentTask { skill, skill_version, .. } = &s.kind {
                add(skill, skill_version.as_ref(), &s.id);
            }
            if let Some(c) = &s.compensation {
                add(&c.skill, None, &s.id);
            }
        }
        out
    }

    /// The branch (its first step) of `join`'s `Parallel` that `step` belongs to: the branch that arrives
    /// at the join when `step` moves to it.
    pub fn branch_of(&self, join: &str, step: &str) -> Option<&str> {
        let parallel = self.steps.iter().find_map(|s| match &s.kind {
            StepKind::Parallel { branches, join: j } if j == join => Some(branches),
            _ => None,
        })?;
        for head in parallel {
            let mut at = head.as_str();
            for _ in 0..=self.steps.len() {
                if at == join {
                    break;
                }
                if at == step {
                    return Some(head);
                }
                let Some(s) = self.step(at) else { break };
                let next = match &s.kind {
                    // A nested Parallel is crossed through its own join, which belongs to this branch too
                    // (it is what moves on to the next step, or to this join).
                    StepKind::Parallel { join: inner, .. } if inner == step => return Some(head),
                    StepKind::Parallel { join: inner, .. } => self.step(inner).and_then(|j| j.next.as_deref()),
                    _ => s.next.as_deref(),
                };
                match next {
                    Some(n) => at = n,
                    None => break,
                }
            }
        }
        None
    }

    /// The branches of `join`'s `Parallel`.
    pub fn branches_of(&self, join: &str) -> &[String] {
        self.steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Parallel { branches, join: j } if j == join => Some(branches.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The history length after which an instance continues as new.
    pub fn continue_after(&self) -> i64 {
        i64::from(self.continue_as_new_after.unwrap_or(CONTINUE_AS_NEW_AFTER))
    }

    /// Every rule of the module's doc; the first broken one, naming its step.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = self.continue_as_new_after.filter(|n| !CONTINUE_AS_NEW_RANGE.contains(n)) {
            let (lo, hi) = (CONTINUE_AS_NEW_RANGE.start(), CONTINUE_AS_NEW_RANGE.end());
            return Err(Error::bad_input(
                "continueAsNewAfter",
                format!("`continueAsNewAfter` is {lo} to {hi} events, not {n}"),
            ));
        }
        if self.steps.is_empty() {
            return Err(Error::bad_input("steps", "a definition needs at least one step"));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(Error::bad_input("steps", format!("a definition has at most {MAX_STEPS} steps")));
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !name_ok(&s.id) {
                return Err(Error::bad_input(
                    "steps",
                    format!(
                        "step id `{}` must be 1–63 lower-case letters, digits, hyphens or underscores",
                        kernel::error::clip(&s.id, 80)
                    ),
                ));
            }
            if index.insert(&s.id, i).is_some() {
                return Err(refuse(&s.id, "the id is used by two steps"));
            }
        }
        if !index.contains_key(self.start.as_str()) {
            let message = format!("`start` names `{}`, which is not a step", kernel::error::clip(&self.start, 80));
            return Err(Error::bad_input("start", message).with("step", &self.start));
        }
        for s in &self.steps {
            check_fields(s)?;
            for target in targets(s) {
                if !index.contains_key(target) {
                    return Err(refuse(
                        &s.id,
                        format!("names `{}`, which is not a step", kernel::error::clip(target, 80)),
                    ));
                }
            }
        }
        self.check_reachable(&index)?;
        self.check_parallels(&index)?;
        self.check_loops(&index)
    }

    fn check_reachable(&self, index: &HashMap<&str, usize>) -> Result<()> {
        let mut seen = vec![false; self.steps.len()];
        let mut stack = vec![index[self.start.as_str()]];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(targets(&self.steps[i]).map(|t| index[t]));
        }
        match seen.iter().position(|reached| !reached) {
            Some(i) => Err(refuse(&self.steps[i].id, "no path from `start` reaches it")),
            None => Ok(()),
        }
    }

    /// Each `Join` belongs to exactly one `Parallel`, and every branch of that `Parallel` reaches its join
    /// along `next` without leaving (a nested `Parallel` is crossed through its own join).
    fn check_parallels(&self, index: &HashMap<&str, usize>) -> Result<()> {
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for s in &self.steps {
            if let StepKind::Parallel { join, .. } = &s.kind {
                if !matches!(self.steps[index[join.as_str()]].kind, StepKind::Join {}) {
                    return Err(refuse(&s.id, format!("its join `{join}` is not a Join step")));
                }
                if let Some(other) = owner.insert(join, &s.id) {
                    return Err(refuse(join, format!("is the join of both `{other}` and `{}`", s.id)));
                }
            }
        }
        for s in &self.steps {
            if matches!(s.kind, StepKind::Join {}) && !owner.contains_key(s.id.as_str()) {
                return Err(refuse(&s.id, "a Join needs the Parallel whose branches it joins (no Parallel names it)"));
            }
        }
        for s in &self.steps {
            let StepKind::Parallel { branches, join } = &s.kind else { continue };
            for head in branches {
                let mut at = head.as_str();
                let mut walked = 0;
                let mut members: Vec<&str> = Vec::new();
                loop {
                    if at == join {
                        break;
                    }
                    members.push(at);
                    let step = &self.steps[index[at]];
                    if matches!(step.kind, StepKind::Join {}) {
                        return Err(refuse(
                            join,
                            format!("branch `{head}` of `{}` ends at the join `{at}`, not at this one", s.id),
                        ));
                    }
                    let next = match &step.kind {
                        // A nested Parallel: its branches are checked on their own; this branch goes on
                        // after its join.
                        StepKind::Parallel { join: inner, .. } => self.steps[index[inner.as_str()]].next.as_deref(),
                        _ => step.next.as_deref(),
                    };
                    walked += 1;
                    match next {
                        Some(n) if walked <= self.steps.len() => at = n,
                        _ => {
                            return Err(refuse(
                                join,
                                format!("branch `{head}` of `{}` does not reach this join (it ends at `{at}`)", s.id),
                            ))
                        }
                    }
                }
                // A failure inside the branch goes to a step of the branch or to the join, never out of it
                // (the join would wait for the branch for ever).
                for m in &members {
                    if let Some(to) = self.steps[index[m]].on_failure.as_deref() {
                        if to != join && !members.contains(&to) {
                            return Err(refuse(
                                m,
                                format!("`onFailure` leaves branch `{head}` of `{}` (to `{to}`)", s.id),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Every loop (steps that lead back to one another) must pass a `Wait`, or it would spin: with the Wait
    /// steps taken out, no cycle may remain.
    fn check_loops(&self, index: &HashMap<&str, usize>) -> Result<()> {
        let waits = |i: usize| matches!(self.steps[i].kind, StepKind::Wait { .. });
        let mut graph: DiGraph<usize, ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..self.steps.len()).map(|i| graph.add_node(i)).collect();
        for (i, s) in self.steps.iter().enumerate() {
            for t in targets(s) {
                let j = index[t];
                if !waits(i) && !waits(j) {
                    graph.add_edge(nodes[i], nodes[j], ());
                }
            }
        }
        for component in petgraph::algo::tarjan_scc(&graph) {
            let looped = component.len() > 1 || graph.contains_edge(component[0], component[0]);
            if !looped {
                continue;
            }
            let members: BTreeSet<usize> = component.iter().map(|n| graph[*n]).collect();
            let first = &self.steps[*members.first().expect("a component has a member")].id;
            let ids: Vec<&str> = members.iter().map(|&i| self.steps[i].id.as_str()).collect();
            return Err(refuse(first, format!("the loop through {} has no Wait step", ids.join(", "))));
        }
        Ok(())
    }
}

/// The steps a step can move to.
fn targets(s: &Step) -> impl Iterator<Item = &str> {
    let fanout: Vec<&str> = match &s.kind {
        StepKind::Parallel { branches, join } => branches.iter().map(String::as_str).chain([join.as_str()]).collect(),
        _ => Vec::new(),
    };
    s.next.as_deref().into_iter().chain(s.on_failure.as_deref()).chain(fanout)
}

fn check_fields(s: &Step) -> Result<()> {
    let seconds = |what: &str, v: u32, min: u32| {
        if (min..=MAX_SECONDS).contains(&v) {
            Ok(())
        } else {
            Err(refuse(&s.id, format!("`{what}` must be {min} to {MAX_SECONDS} seconds")))
        }
    };
    match &s.kind {
        StepKind::AgentTask { skill, skill_version, pool } => {
            if !name_ok(skill) || !name_ok(pool) {
                return Err(refuse(
                    &s.id,
                    "`skill` and `pool` must be 1–63 lower-case letters, digits, hyphens or underscores",
                ));
            }
            if let Some(req) = skill_version {
                if req.len() > 100 || semver_req(req).is_none() {
                    return Err(refuse(
                        &s.id,
                        format!("`skillVersion` `{}` is not a semver requirement", kernel::error::clip(req, 100)),
                    ));
                }
            }
        }
        StepKind::Approval { approver_roles, quorum, approval_ttl_hours } => {
            if approver_roles.is_empty() || approver_roles.len() > 10 || approver_roles.iter().any(|r| !name_ok(r)) {
                return Err(refuse(
                    &s.id,
                    "`approverRoles` must name 1 to 10 roles (lower-case letters, digits, hyphens)",
                ));
            }
            if !(1..=10).contains(quorum) {
                return Err(refuse(&s.id, "`quorum` must be 1 to 10"));
            }
            if !(1..=720).contains(approval_ttl_hours) {
                return Err(refuse(&s.id, "`approvalTtlHours` must be 1 to 720"));
            }
        }
        StepKind::Wait { wait_seconds } => seconds("waitSeconds", *wait_seconds, 1)?,
        StepKind::Parallel { branches, join } => {
            if !(2..=MAX_BRANCHES).contains(&branches.len()) {
                return Err(refuse(&s.id, format!("a Parallel needs 2 to {MAX_BRANCHES} branches")));
            }
            if branches.iter().collect::<BTreeSet<_>>().len() != branches.len() {
                return Err(refuse(&s.id, "a branch is named twice"));
            }
            if branches.contains(join) {
                return Err(refuse(&s.id, format!("a branch must have a step before the join `{join}`")));
            }
            if s.next.is_some() {
                return Err(refuse(&s.id, "a Parallel goes on through its join: give the join the `next`"));
            }
        }
        StepKind::Join {} => {}
    }
    if matches!(s.kind, StepKind::Parallel { .. } | StepKind::Join {})
        && (s.retry.is_some() || s.compensation.is_some())
    {
        return Err(refuse(&s.id, format!("a {} step has no `retry` or `compensation`", s.kind.name())));
    }
    if let Some(t) = s.timeout_seconds {
        seconds("timeoutSeconds", t, 1)?;
    }
    if let Some(r) = &s.retry {
        if !(1..=MAX_ATTEMPTS).contains(&r.max_attempts) {
            return Err(refuse(&s.id, format!("`retry.maxAttempts` must be 1 to {MAX_ATTEMPTS}")));
        }
        seconds("retry.initialBackoffSeconds", r.initial_backoff_seconds, 1)?;
        seconds("retry.maxBackoffSeconds", r.max_backoff_seconds, r.initial_backoff_seconds)?;
    }
    if let Some(c) = &s.compensation {
        if !name_ok(&c.skill) || c.pool.as_deref().is_some_and(|p| !name_ok(p)) {
            return Err(refuse(
                &s.id,
                "`compensation` names a skill (and pool) in lower-case letters, digits, hyphens",
            ));
        }
        if c.pool.is_none() && !matches!(s.kind, StepKind::AgentTask { .. }) {
            return Err(refuse(&s.id, "the compensation of a step that is no AgentTask names its `pool`"));
        }
    }
    Ok(())
}

/// A semver version requirement (`^1.2`, `>=1, <2`), parsed the way catalogue parses agents' skill references.
pub fn semver_req(req: &str) -> Option<semver::VersionReq> {
    semver::VersionReq::parse(req).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).expect("a spec")
    }

    #[test]
    fn each_branch_arrives_at_its_join_through_nested_parallels_and_a_join_is_no_branch() {
        let s = spec(json!({ "start": "outer", "steps": [
            { "id": "outer", "type": "Parallel", "branches": ["inner", "b"], "join": "j" },
            { "id": "inner", "type": "Parallel", "branches": ["x", "y"], "join": "j2" },
            { "id": "x", "type": "Wait", "waitSeconds": 1, "next": "j2" },
            { "id": "y", "type": "Wait", "waitSeconds": 1, "next": "j2" },
            { "id": "j2", "type": "Join", "next": "j" },
            { "id": "b", "type": "Wait", "waitSeconds": 1, "next": "j" },
            { "id": "j", "type": "Join" }
        ] }));
        s.check().unwrap();
        assert_eq!(s.branch_of("j", "j2"), Some("inner"), "the inner join arrives for the branch it ends");
        assert_eq!(s.branch_of("j", "b"), Some("b"));
        assert_eq!(s.branch_of("j2", "x"), Some("x"));
        assert_eq!(s.branch_of("j", "x"), None, "a step of an inner branch arrives at the inner join");

        let empty = spec(json!({ "start": "p", "steps": [
            { "id": "p", "type": "Parallel", "branches": ["a", "j"], "join": "j" },
            { "id": "a", "type": "Wait", "waitSeconds": 1, "next": "j" },
            { "id": "j", "type": "Join" }
        ] }));
        let e = empty.check().unwrap_err();
        assert!(e.message().contains("before the join"), "{}", e.describe());
    }

    fn task(id: &str, next: Option<&str>) -> serde_json::Value {
        let mut s = json!({ "id": id, "type": "AgentTask", "skill": "summarize", "pool": "writers" });
        if let Some(n) = next {
            s["next"] = json!(n);
        }
        s
    }

    /// The refused step, from the error's details.
    fn refused(s: &Spec) -> (String, String) {
        let e = s.check().expect_err("refused");
        assert_eq!(e.code(), kernel::Code::BadUserInput, "{e:?}");
        let step = e.details().iter().find(|(k, _)| *k == "step").map(|(_, v)| v.as_str().unwrap().to_owned());
        (step.unwrap_or_default(), e.message().to_owned())
    }

    fn diamond() -> serde_json::Value {
        json!({ "start": "fork", "steps": [
            { "id": "fork", "type": "Parallel", "branches": ["a", "b"], "join": "meet" },
            task("a", Some("meet")),
            task("b", Some("b2")),
            { "id": "b2", "type": "Wait", "waitSeconds": 5, "next": "meet" },
            { "id": "meet", "type": "Join", "next": "gate" },
            { "id": "gate", "type": "Approval", "approverRoles": ["release-approver"], "quorum": 1, "approvalTtlHours": 24 },
        ] })
    }

    #[test]
    fn a_well_formed_definition_passes_and_round_trips() {
        let s = spec(diamond());
        s.check().unwrap();
        assert_eq!(spec(serde_json::to_value(&s).unwrap()), s);
        assert_eq!(s.skills(), vec![("summarize".to_owned(), None, "a".to_owned())]);
    }

    #[test]
    fn an_unknown_step_is_refused_naming_the_step_that_names_it() {
        let s = spec(json!({ "start": "a", "steps": [task("a", Some("nowhere"))] }));
        let (step, message) = refused(&s);
        assert_eq!(step, "a");
        assert!(message.contains("`nowhere`"), "{message}");
    }

    #[test]
    fn an_unreachable_step_is_refused() {
        let s = spec(json!({ "start": "a", "steps": [task("a", None), task("orphan", None)] }));
        assert_eq!(refused(&s).0, "orphan");
    }

    #[test]
    fn a_loop_without_a_wait_is_refused_and_one_with_a_wait_passes() {
        let spin = spec(json!({ "start": "a", "steps": [task("a", Some("b")), task("b", Some("a"))] }));
        let (step, message) = refused(&spin);
        assert_eq!(step, "a");
        assert!(message.contains("no Wait"), "{message}");
        let poll = spec(json!({ "start": "a", "steps": [
            task("a", Some("pause")), { "id": "pause", "type": "Wait", "waitSeconds": 60, "next": "a" }] }));
        poll.check().unwrap();
        // A step that retries itself on failure, with no wait, spins too.
        let own = spec(json!({ "start": "a", "steps": [
            { "id": "a", "type": "AgentTask", "skill": "s", "pool": "p", "onFailure": "a" }] }));
        assert_eq!(refused(&own).0, "a");
    }

    #[test]
    fn a_loop_with_a_wait_only_on_a_side_path_is_refused() {
        let s = spec(json!({ "start": "a", "steps": [
            { "id": "a", "type": "AgentTask", "skill": "s", "pool": "p", "next": "b", "onFailure": "w" },
            task("b", Some("a")),
            { "id": "w", "type": "Wait", "waitSeconds": 5, "next": "a" }] }));
        let (step, message) = refused(&s);
        assert_eq!(step, "a");
        assert!(message.contains("a, b"), "{message}");
    }

    #[test]
    fn a_failure_may_not_leave_a_branch() {
        let mut d = diamond();
        d["steps"][1]["onFailure"] = json!("gate");
        let (step, message) = refused(&spec(d));
        assert_eq!(step, "a");
        assert!(message.contains("leaves branch"), "{message}");
        let mut d = diamond();
        d["steps"][1]["onFailure"] = json!("meet");
        spec(d).check().unwrap();
    }

    #[test]
    fn a_join_without_its_branches_is_refused() {
        // No Parallel names the join.
        let lone = spec(json!({ "start": "a", "steps": [task("a", Some("meet")), { "id": "meet", "type": "Join" }] }));
        assert_eq!(refused(&lone).0, "meet");
        // A branch that ends before the join.
        let mut d = diamond();
        d["steps"][1] = task("a", None);
        let (step, message) = refused(&spec(d));
        assert_eq!(step, "meet");
        assert!(message.contains("branch `a`"), "{message}");
        // A Parallel whose join is not a Join.
        let mut d = diamond();
        d["steps"][0]["join"] = json!("gate");
        assert_eq!(refused(&spec(d)).0, "fork");
    }

    #[test]
    fn nested_parallels_are_crossed_through_their_joins() {
        let s = spec(json!({ "start": "outer", "steps": [
            { "id": "outer", "type": "Parallel", "branches": ["inner", "c"], "join": "end" },
            { "id": "inner", "type": "Parallel", "branches": ["a", "b"], "join": "mid" },
            task("a", Some("mid")), task("b", Some("mid")),
            { "id": "mid", "type": "Join", "next": "end" },
            task("c", Some("end")),
            { "id": "end", "type": "Join" },
        ] }));
        s.check().unwrap();
    }

    #[test]
    fn fields_are_checked_per_type() {
        let cases = [
            json!({ "id": "a", "type": "Wait", "waitSeconds": 0 }),
            json!({ "id": "a", "type": "AgentTask", "skill": "Bad Skill", "pool": "p" }),
            json!({ "id": "a", "type": "AgentTask", "skill": "s", "pool": "p", "skillVersion": "not a req" }),
            json!({ "id": "a", "type": "Approval", "approverRoles": [], "quorum": 1, "approvalTtlHours": 1 }),
            json!({ "id": "a", "type": "AgentTask", "skill": "s", "pool": "p",
                    "retry": { "maxAttempts": 3, "initialBackoffSeconds": 10, "maxBackoffSeconds": 5 } }),
        ];
        for step in cases {
            let s = spec(json!({ "start": "a", "steps": [step.clone()] }));
            assert_eq!(refused(&s).0, "a", "{step}");
        }
        // A field of another type does not parse at all.
        assert!(serde_json::from_value::<Spec>(json!({ "start": "a", "steps": [
            { "id": "a", "type": "Wait", "waitSeconds": 5, "skill": "s" }] }))
        .is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = Retry { max_attempts: 6, initial_backoff_seconds: 2, max_backoff_seconds: 20 };
        let waits: Vec<u64> = (2..=6).map(|a| r.backoff(a).as_secs()).collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 20]);
        assert_eq!(r.backoff(1000).as_secs(), 20);
    }
}
