//! Model policies: which model providers and models agents may use, per tenant, optionally narrowed to a
//! project and/or a skill, with limits (max tokens per task, max cost per day). Versioned by name (Draft →
//! Published → Deprecated, a published version immutable), like Cedar policies.
//!
//! Evaluation (`evaluateModelPolicy`, and workflow on task assignment): among the published policies whose
//! scope covers the task, the most specific level decides — project and skill, then project, then skill,
//! then tenant-wide. Every policy at that level must allow the provider and model, and the tightest limits
//! apply. No policy covering the task: denied (default deny). Workflow calls the same rules through this
//! query at assignment; `ModelPolicyPublished` carries each version whole for consumers that cache.

pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId};

use crate::ids::{ModelPolicyId, ProjectRef};
use crate::policies::PolicyStatus;

/// Models of one provider a policy allows.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelAllowance {
    pub provider: String,
    /// Model names, or `*` for every model of the provider.
    pub models: Vec<String>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ModelPolicy {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub model_policy_id: ModelPolicyId,
    pub name: String,
    pub version: i32,
    /// The project it is narrowed to (any when null).
    pub project_id: Option<ProjectRef>,
    /// The skill it is narrowed to (any when null).
    pub skill_key: Option<String>,
    #[graphql(skip)]
    pub allowed: sqlx::types::Json<Vec<ModelAllowance>>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i64>,
    pub status: PolicyStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub deprecated_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl ModelPolicy {
    async fn id(&self) -> ID {
        ID(self.model_policy_id.to_string())
    }

    async fn allowed(&self) -> &[ModelAllowance] {
        &self.allowed.0
    }
}

impl ModelPolicy {
    fn specificity(&self) -> u8 {
        u8::from(self.project_id.is_some()) * 2 + u8::from(self.skill_key.is_some())
    }

    fn covers(&self, task: &Task) -> bool {
        self.project_id.is_none_or(|p| Some(p) == task.project_id)
            && self.skill_key.as_ref().is_none_or(|s| Some(s) == task.skill_key.as_ref())
    }

    fn allows(&self, provider: &str, model: &str) -> bool {
        self.allowed.0.iter().any(|a| a.provider == provider && a.models.iter().any(|m| m == "*" || m == model))
    }
}

/// Locks a model policy for a status change: `NOT_FOUND` (also for another tenant's), or `CONFLICT` unless
/// it is in `expected` (`why` says what the change needs).
pub async fn lock_in(
    work: &mut kernel::Work,
    tenant: &TenantId,
    id: ModelPolicyId,
    expected: PolicyStatus,
    why: &str,
) -> Result<ModelPolicy> {
    let p = store::lock(work, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no model policy `{id}`")))?;
    if p.status != expected {
        return Err(Error::conflict(format!("model policy {}@{} is {}{why}", p.name, p.version, p.status.as_str())));
    }
    Ok(p)
}

/// Allowances from the API: 1–50 providers, each with 1–100 models.
pub fn allowances(raw: Vec<ModelAllowance>) -> Result<Vec<ModelAllowance>> {
    if raw.is_empty() || raw.len() > 50 {
        return Err(Error::bad_input("allowed", "allow 1–50 providers"));
    }
    let token =
        |s: &str| (1..=100).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/@*".contains(c));
    for a in &raw {
        if !token(&a.provider) || a.provider == "*" {
            return Err(Error::bad_input("allowed.provider", "a provider is 1–100 letters, digits, `-`, `_`, `.`"));
        }
        if a.models.is_empty() || a.models.len() > 100 || !a.models.iter().all(|m| token(m)) {
            return Err(Error::bad_input("allowed.models", "name 1–100 models (or `*`) per provider"));
        }
    }
    Ok(raw)
}

/// A task about to be assigned.
#[derive(Clone, Debug, Default)]
pub struct Task {
    pub project_id: Option<ProjectRef>,
    pub skill_key: Option<String>,
    pub provider: String,
    pub model: String,
    /// Tokens the task is expected to use.
    pub tokens: Option<i64>,
    /// What the tenant's agents have spent today so far, in cents, and the task's own expected cost.
    pub cost_today_cents: Option<i64>,
}

/// The answer for a task.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
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

/// Applies the rules above to the published policies `in_force`.
pub fn evaluate(in_force: &[ModelPolicy], task: &Task) -> ModelDecision {
    let covering: Vec<&ModelPolicy> = in_force.iter().filter(|p| p.covers(task)).collect();
    let Some(level) = covering.iter().map(|p| p.specificity()).max() else {
        return ModelDecision {
            allowed: false,
            reason: "no model policy covers this task".into(),
            policies: vec![],
            max_tokens_per_task: None,
            max_cost_per_day_cents: None,
        };
    };
    let deciding: Vec<&ModelPolicy> = covering.into_iter().filter(|p| p.specificity() == level).collect();
    let policies = deciding.iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
    let max_tokens = deciding.iter().filter_map(|p| p.max_tokens_per_task).min();
    let max_cost = deciding.iter().filter_map(|p| p.max_cost_per_day_cents).min();
    let decision = |allowed: bool, reason: String| ModelDecision {
        allowed,
        reason,
        policies: deciding.iter().map(|p| format!("{}@{}", p.name, p.version)).collect(),
        max_tokens_per_task: max_tokens,
        max_cost_per_day_cents: max_cost,
    };
    if let Some(p) = deciding.iter().find(|p| !p.allows(&task.provider, &task.model)) {
        return decision(false, format!("{}@{} does not allow {}/{}", p.name, p.version, task.provider, task.model));
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
    ModelDecision { policies, ..decision(true, "allowed".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        name: &str,
        project: Option<ProjectRef>,
        skill: Option<&str>,
        allowed: &[(&str, &[&str])],
        max_tokens: Option<i32>,
    ) -> ModelPolicy {
        ModelPolicy {
            tenant_id: TenantId::try_from("acme".to_owned()).unwrap(),
            model_policy_id: ModelPolicyId::new_v7(),
            name: name.into(),
            version: 1,
            project_id: project,
            skill_key: skill.map(Into::into),
            allowed: sqlx::types::Json(
                allowed
                    .iter()
                    .map(|(p, ms)| ModelAllowance {
                        provider: (*p).into(),
                        models: ms.iter().map(|m| (*m).into()).collect(),
                    })
                    .collect(),
            ),
            max_tokens_per_task: max_tokens,
            max_cost_per_day_cents: Some(10_000),
            status: PolicyStatus::Published,
            created_by: "x".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            published_at: Some(Utc::now()),
            deprecated_at: None,
        }
    }

    #[test]
    fn the_most_specific_policy_decides_and_limits_apply() {
        let shop = ProjectRef::new_v7();
        let policies = vec![
            policy("base", None, None, &[("openai", &["*"])], Some(8000)),
            policy("shop", Some(shop), None, &[("azure-openai", &["gpt-4o"])], Some(4000)),
            policy("review", Some(shop), Some("code-review"), &[("anthropic", &["claude"])], None),
        ];
        let task = |project: Option<ProjectRef>, skill: Option<&str>, provider: &str, model: &str, tokens: i64| Task {
            project_id: project,
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
            "skill-only falls back"
        );
        let d = evaluate(&[], &task(None, None, "openai", "gpt-4o", 1));
        assert!(!d.allowed && d.policies.is_empty(), "default deny");
        let mut over = task(None, None, "openai", "gpt-4o", 1);
        over.cost_today_cents = Some(10_001);
        assert!(!evaluate(&policies, &over).allowed);
    }
}
