//! Model policies: which model providers and models agents may use, per tenant, optionally narrowed to a
//! project and/or a skill, with limits (max tokens per task, max cost per day). Governance owns them and
//! answers `evaluateModelPolicy`; it publishes every version whole (`ModelPolicyPublished`), so a domain
//! that assigns agent tasks (workflow) keeps the versions in force and applies the very same rules here.
//!
//! The rules: among the published policies whose scope covers the task, the most specific level decides —
//! project and skill, then project, then skill, then tenant-wide. Every policy at that level must allow the
//! provider and model, and the tightest limits apply. No policy covering the task: denied (default deny).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ModelPolicyId;
use crate::contracts::catalogue::ProjectId;

/// Models of one provider a policy allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject)]
pub struct ModelAllowance {
    pub provider: String,
    /// Model names, or `*` for every model of the provider.
    pub models: Vec<String>,
}

/// What a published model policy version says, as its owner stores it or a reader keeps it.
pub trait Terms {
    /// `name@version`, as decisions name the policies that decided.
    fn label(&self) -> String;
    /// The project it is narrowed to (any when `None`).
    fn project(&self) -> Option<Uuid>;
    /// The skill it is narrowed to (any when `None`).
    fn skill(&self) -> Option<&str>;
    fn allowed(&self) -> &[ModelAllowance];
    fn max_tokens_per_task(&self) -> Option<i32>;
    fn max_cost_per_day_cents(&self) -> Option<i64>;
}

/// A published version as `ModelPolicyPublished` carries it: what a reader keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub model_policy_id: ModelPolicyId,
    pub name: String,
    pub version: i32,
    pub project_id: Option<ProjectId>,
    pub skill_key: Option<String>,
    pub allowed: Vec<ModelAllowance>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i64>,
}

impl Terms for Policy {
    fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
    fn project(&self) -> Option<Uuid> {
        self.project_id.map(|p| p.as_uuid())
    }
    fn skill(&self) -> Option<&str> {
        self.skill_key.as_deref()
    }
    fn allowed(&self) -> &[ModelAllowance] {
        &self.allowed
    }
    fn max_tokens_per_task(&self) -> Option<i32> {
        self.max_tokens_per_task
    }
    fn max_cost_per_day_cents(&self) -> Option<i64> {
        self.max_cost_per_day_cents
    }
}

/// A task an agent runs, or is about to.
#[derive(Clone, Debug, Default)]
pub struct Task {
    pub project_id: Option<Uuid>,
    pub skill_key: Option<String>,
    pub provider: String,
    pub model: String,
    /// Tokens the task used, or is expected to.
    pub tokens: Option<i64>,
    /// What the tenant's agents have spent today so far, in cents, and the task's own cost.
    pub cost_today_cents: Option<i64>,
}

/// The answer for a task.
#[derive(async_graphql::SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ModelPolicyDecision")]
pub struct ModelDecision {
    pub allowed: bool,
    pub reason: String,
    /// The policies that decided (the most specific level covering the task), as `name@version`.
    pub policies: Vec<String>,
    /// The tightest limits among them.
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i64>,
}

fn specificity(p: &impl Terms) -> u8 {
    u8::from(p.project().is_some()) * 2 + u8::from(p.skill().is_some())
}

fn covers(p: &impl Terms, project: Option<Uuid>, skill: Option<&str>) -> bool {
    p.project().is_none_or(|p| Some(p) == project) && p.skill().is_none_or(|s| Some(s) == skill)
}

/// Whether `p` allows `provider`'s `model`.
pub fn allows(p: &impl Terms, provider: &str, model: &str) -> bool {
    p.allowed().iter().any(|a| a.provider == provider && a.models.iter().any(|m| m == "*" || m == model))
}

/// The policies that decide for a task of `project` and `skill`: those of the most specific level covering
/// it (none: the task is denied whatever it uses).
pub fn deciding<'a, P: Terms>(in_force: &'a [P], project: Option<Uuid>, skill: Option<&str>) -> Vec<&'a P> {
    let covering: Vec<&P> = in_force.iter().filter(|p| covers(*p, project, skill)).collect();
    let Some(level) = covering.iter().map(|p| specificity(*p)).max() else { return Vec::new() };
    covering.into_iter().filter(|p| specificity(*p) == level).collect()
}

/// Applies the rules above to the published policies `in_force`.
pub fn evaluate<P: Terms>(in_force: &[P], task: &Task) -> ModelDecision {
    let deciding = deciding(in_force, task.project_id, task.skill_key.as_deref());
    let max_tokens = deciding.iter().filter_map(|p| p.max_tokens_per_task()).min();
    let max_cost = deciding.iter().filter_map(|p| p.max_cost_per_day_cents()).min();
    let decision = |allowed: bool, reason: String| ModelDecision {
        allowed,
        reason,
        policies: deciding.iter().map(|p| p.label()).collect(),
        max_tokens_per_task: max_tokens,
        max_cost_per_day_cents: max_cost,
    };
    if deciding.is_empty() {
        return decision(false, "no model policy covers this task".into());
    }
    if let Some(p) = deciding.iter().find(|p| !allows(**p, &task.provider, &task.model)) {
        return decision(false, format!("{} does not allow {}/{}", p.label(), task.provider, task.model));
    }
    if let (Some(max), Some(t)) = (max_tokens, task.tokens) {
        if t > i64::from(max) {
            return decision(false, format!("{t} tokens exceed the limit of {max} per task"));
        }
    }
    if let (Some(max), Some(c)) = (max_cost, task.cost_today_cents) {
        if c > max {
            return decision(false, format!("{c} cents today exceed the daily limit of {max}"));
        }
    }
    decision(true, "allowed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        name: &str,
        project: Option<ProjectId>,
        skill: Option<&str>,
        allowed: &[(&str, &[&str])],
        max_tokens: Option<i32>,
    ) -> Policy {
        Policy {
            model_policy_id: ModelPolicyId::new_v7(),
            name: name.into(),
            version: 1,
            project_id: project,
            skill_key: skill.map(Into::into),
            allowed: allowed
                .iter()
                .map(|(p, ms)| ModelAllowance {
                    provider: (*p).into(),
                    models: ms.iter().map(|m| (*m).into()).collect(),
                })
                .collect(),
            max_tokens_per_task: max_tokens,
            max_cost_per_day_cents: Some(10_000),
        }
    }

    #[test]
    fn the_most_specific_policy_decides_and_limits_apply() {
        let shop = ProjectId::new_v7();
        let policies = vec![
            policy("base", None, None, &[("openai", &["*"])], Some(8000)),
            policy("shop", Some(shop), None, &[("azure-openai", &["gpt-4o"])], Some(4000)),
            policy("review", Some(shop), Some("code-review"), &[("anthropic", &["claude"])], None),
        ];
        let task = |project: Option<ProjectId>, skill: Option<&str>, provider: &str, model: &str, tokens: i64| Task {
            project_id: project.map(|p| p.as_uuid()),
            skill_key: skill.map(Into::into),
            provider: provider.into(),
            model: model.into(),
            tokens: Some(tokens),
            cost_today_cents: Some(0),
        };
        let d = evaluate(&policies, &task(None, None, "openai", "gpt-4o", 100));
        assert!(d.allowed && d.policies == vec!["base@1".to_owned()], "{d:?}");
        let d = evaluate(&policies, &task(Some(shop), None, "openai", "gpt-4o", 100));
        assert!(!d.allowed && d.policies == vec!["shop@1".to_owned()], "the project's policy narrows: {d:?}");
        assert!(evaluate(&policies, &task(Some(shop), None, "azure-openai", "gpt-4o", 100)).allowed);
        let d = evaluate(&policies, &task(Some(shop), None, "azure-openai", "gpt-4o", 5000));
        assert!(!d.allowed && d.reason.contains("4000"), "{d:?}");
        assert!(evaluate(&policies, &task(Some(shop), Some("code-review"), "anthropic", "claude", 50_000)).allowed);
        assert!(
            evaluate(&policies, &task(None, Some("code-review"), "openai", "x", 1)).allowed,
            "a project's skill policy does not reach other projects: tenant-wide decides"
        );
        let mut with_skill = policies.clone();
        with_skill.push(policy("lint", None, Some("lint"), &[("mistral", &["*"])], None));
        let d = evaluate(&with_skill, &task(None, Some("lint"), "openai", "gpt-4o", 1));
        assert!(!d.allowed && d.policies == vec!["lint@1".to_owned()], "the skill level decides: {d:?}");
        let d = evaluate(&with_skill, &task(Some(shop), Some("lint"), "azure-openai", "gpt-4o", 1));
        assert!(d.allowed && d.policies == vec!["shop@1".to_owned()], "project outranks skill: {d:?}");
        let d = evaluate(&[] as &[Policy], &task(None, None, "openai", "gpt-4o", 1));
        assert!(!d.allowed && d.policies.is_empty(), "default deny");
        let mut over = task(None, None, "openai", "gpt-4o", 1);
        over.cost_today_cents = Some(10_001);
        assert!(!evaluate(&policies, &over).allowed);
        let both = [
            policy("a", None, None, &[("openai", &["*"])], None),
            policy("b", None, None, &[("openai", &["o1"])], None),
        ];
        let d = evaluate(&both, &task(None, None, "openai", "gpt-4o", 1));
        assert!(!d.allowed && d.reason.starts_with("b@1"), "every policy of the level must allow it: {d:?}");
    }
}
