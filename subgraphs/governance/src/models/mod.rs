//! Model policies: which model providers and models agents may use, per tenant, optionally narrowed to a
//! project and/or a skill, with limits (max tokens per task, max cost per day). Versioned by name (Draft →
//! Published → Deprecated, a published version immutable), like Cedar policies.
//!
//! Evaluation (`evaluateModelPolicy`) follows the rules in `kernel::contracts::governance::models`: among the
//! published policies whose scope covers the task, the most specific level decides, every policy there must
//! allow the provider and model, the tightest limits apply, and none covering the task denies it.
//! `ModelPolicyPublished` carries each version whole: workflow keeps the versions in force and applies the
//! same rules to its agent tasks.

pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::contracts::governance::models::Terms;
pub use kernel::contracts::governance::models::{evaluate, ModelAllowance, ModelDecision, Task};
use kernel::{Error, Result, TenantId};

use crate::ids::{ModelPolicyId, ProjectRef};
use crate::policies::PolicyStatus;

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

impl Terms for ModelPolicy {
    fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
    fn project(&self) -> Option<uuid::Uuid> {
        self.project_id.map(|p| p.as_uuid())
    }
    fn skill(&self) -> Option<&str> {
        self.skill_key.as_deref()
    }
    fn allowed(&self) -> &[ModelAllowance] {
        &self.allowed.0
    }
    fn max_tokens_per_task(&self) -> Option<i32> {
        self.max_tokens_per_task
    }
    fn max_cost_per_day_cents(&self) -> Option<i64> {
        self.max_cost_per_day_cents
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
