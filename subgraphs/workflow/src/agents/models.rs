//! Which models an agent task may use: governance's model policies, kept here from its
//! `ModelPolicyPublished` and `ModelPolicyDeprecated` events (`model_policies`), and applied by the rules
//! governance's `evaluateModelPolicy` applies (`kernel::contracts::governance::models`).
//!
//! * When a task is first offered to its pool, the policies that decide for it (the most specific level
//!   covering its project and skill) become its terms, kept on the task and shown to its agent. None
//!   covering it: the task waits for one ([`crate::saga::engine::MODEL_POLICY_GRACE`], offered again every
//!   few seconds — a policy just published reaches workflow by its event), then the attempt fails, as
//!   governance would deny it (default deny), and the step's retry policy applies.
//! * Its completion names the provider, model and tokens used, and is checked against those terms: a model
//!   they do not allow, or more tokens than their tightest limit, fails the attempt with the policy's reason
//!   (the usage is metered all the same: it was spent). The daily cost limit is governance's to enforce,
//!   with the usage it holds; workflow knows no prices.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::governance::models::{ModelAllowance, Policy, Terms};
use kernel::contracts::governance::{ModelPolicyDeprecated, ModelPolicyId, ModelPolicyPublished};
use kernel::db::Tx;
use kernel::envelope::Envelope;
use kernel::{Result, TenantId, Work};
use sqlx::types::Json;

use crate::events::DOMAIN;
use crate::ids::ProjectId;

/// Most policy versions in force covering one task that a decision reads.
const MAX_IN_FORCE: i64 = 1_000;

/// A model policy that decided for a task, as its agent sees it.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
#[graphql(name = "AgentTaskModelPolicy")]
pub struct TaskModelPolicy {
    /// `name@version` (governance's model policy).
    pub policy: String,
    /// `provider/model` pairs it allows (`provider/*`: every model of the provider).
    pub allowed: Vec<String>,
    pub max_tokens_per_task: Option<i32>,
}

impl From<&Policy> for TaskModelPolicy {
    fn from(p: &Policy) -> Self {
        let allowed = p.allowed.iter().flat_map(|a| a.models.iter().map(move |m| format!("{}/{m}", a.provider)));
        Self { policy: p.label(), allowed: allowed.collect(), max_tokens_per_task: p.max_tokens_per_task }
    }
}

/// The tenant's policy versions in force (published, not deprecated) that cover a task of `project` and
/// `skill` (the levels that could decide for it). More than [`MAX_IN_FORCE`] is an error, never a silent cut.
pub async fn covering(tx: &mut Tx, tenant: &TenantId, project: Option<ProjectId>, skill: &str) -> Result<Vec<Policy>> {
    let rows = sqlx::query!(
        r#"SELECT model_policy_id AS "model_policy_id: ModelPolicyId", name, version,
                  project_id AS "project_id: ProjectId", skill_key,
                  allowed AS "allowed: Json<Vec<ModelAllowance>>", max_tokens_per_task, max_cost_per_day_cents
             FROM model_policies
            WHERE tenant_id = $1 AND NOT deprecated
              AND (project_id IS NULL OR project_id = $2) AND (skill_key IS NULL OR skill_key = $3)
            ORDER BY model_policy_id LIMIT $4"#,
        tenant.as_str(),
        project as Option<ProjectId>,
        skill,
        MAX_IN_FORCE + 1,
    )
    .fetch_all(&mut **tx)
    .await?;
    if rows.len() as i64 > MAX_IN_FORCE {
        return Err(kernel::Error::conflict(format!(
            "more than {MAX_IN_FORCE} model policy versions in force cover skill `{skill}`: deprecate old versions"
        )));
    }
    Ok(rows
        .into_iter()
        .map(|r| Policy {
            model_policy_id: r.model_policy_id,
            name: r.name,
            version: r.version,
            project_id: r.project_id,
            skill_key: r.skill_key,
            allowed: r.allowed.0,
            max_tokens_per_task: r.max_tokens_per_task,
            max_cost_per_day_cents: r.max_cost_per_day_cents,
        })
        .collect())
}

kernel::inbound! {
    /// What the model policies projection takes.
    pub enum ModelPolicies {
        Published(ModelPolicyPublished),
        Deprecated(ModelPolicyDeprecated),
    }
}

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.model-policies"),
        bindings: ModelPolicies::routing_keys(),
        retry,
        prefetch: 16,
    }
}

/// Projects governance's model policy versions for the envelope's tenant (only governance publishes under
/// its routing keys). Redelivery and reordering are harmless: a published version never changes, and a
/// deprecated one stays deprecated.
pub struct KnownModelPolicies;

#[async_trait::async_trait]
impl Handler for KnownModelPolicies {
    fn name(&self) -> &'static str {
        "workflow.model-policies"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        match ModelPolicies::decode(envelope).into_result(self.name())? {
            ModelPolicies::Published(e) => published(work, tenant, &e.policy).await?,
            ModelPolicies::Deprecated(e) => deprecated(work, tenant, &e).await?,
        }
        Ok(())
    }
}

async fn published(tx: &mut Tx, tenant: &TenantId, p: &Policy) -> Result<()> {
    sqlx::query!(
        "INSERT INTO model_policies (tenant_id, model_policy_id, name, version, project_id, skill_key, allowed,
                                     max_tokens_per_task, max_cost_per_day_cents)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, model_policy_id) DO UPDATE
            SET project_id = EXCLUDED.project_id, skill_key = EXCLUDED.skill_key, allowed = EXCLUDED.allowed,
                max_tokens_per_task = EXCLUDED.max_tokens_per_task,
                max_cost_per_day_cents = EXCLUDED.max_cost_per_day_cents, updated_at = now()",
        tenant.as_str(),
        p.model_policy_id as ModelPolicyId,
        p.name,
        p.version,
        p.project_id as Option<ProjectId>,
        p.skill_key,
        Json(&p.allowed) as _,
        p.max_tokens_per_task,
        p.max_cost_per_day_cents,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn deprecated(tx: &mut Tx, tenant: &TenantId, e: &ModelPolicyDeprecated) -> Result<()> {
    sqlx::query!(
        "INSERT INTO model_policies (tenant_id, model_policy_id, name, version, deprecated)
         VALUES ($1, $2, $3, $4, true)
         ON CONFLICT (tenant_id, model_policy_id) DO UPDATE SET deprecated = true, updated_at = now()",
        tenant.as_str(),
        e.model_policy_id as ModelPolicyId,
        e.name,
        e.version,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
