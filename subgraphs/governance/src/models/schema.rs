//! Model policies' share of the query and mutation roots.

use crate::state;
use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use kernel::pagination::Page;
use kernel::permissions::governance::{READ, WRITE};
use kernel::Authorize;
use kernel::{Error, Result, TenantId, Work};

use super::{store, ModelAllowance, ModelDecision, ModelPolicy, Task};
use crate::events;
use crate::ids::{ModelPolicyId, ProjectRef};
use crate::policies::PolicyStatus;

#[derive(InputObject)]
pub struct ModelAllowanceInput {
    pub provider: String,
    /// Model names, or `*` for all of the provider's.
    pub models: Vec<String>,
}

#[derive(InputObject)]
pub struct DraftModelPolicyInput {
    /// A new name starts at version 1; an existing one gets its next version.
    pub name: String,
    /// Narrows the policy to one project (catalogue's id).
    pub project_id: Option<ProjectRef>,
    /// Narrows the policy to one skill (catalogue's skill key).
    pub skill_key: Option<String>,
    pub allowed: Vec<ModelAllowanceInput>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i64>,
}

#[derive(InputObject)]
pub struct ModelTaskInput {
    pub project_id: Option<ProjectRef>,
    pub skill_key: Option<String>,
    pub provider: String,
    pub model: String,
    /// Tokens the task is expected to use.
    pub tokens: Option<i64>,
    /// What the tenant's agents have spent today, including this task's expected cost, in cents.
    pub cost_today_cents: Option<i64>,
}

fn cursor(p: &ModelPolicy) -> String {
    format!("{}\u{0}{}", p.name, p.version)
}

#[derive(Default)]
pub struct ModelQuery;

#[Object]
impl ModelQuery {
    /// Model policy versions in (name, version) order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn model_policies(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        name: Option<String>,
    ) -> Result<Connection<String, ModelPolicy>> {
        let tenant = ctx.authorize(READ)?;
        let name = name.map(|n| crate::policies::name("name", &n)).transpose()?;
        let page = Page::forward(after, first, 20)?;
        let after = page
            .after
            .as_deref()
            .map(|c| {
                c.split_once('\u{0}')
                    .and_then(|(n, v)| v.parse::<i32>().ok().map(|v| (n.to_owned(), v)))
                    .ok_or_else(|| Error::bad_input("after", "after is not a cursor this API issued"))
            })
            .transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(
            &mut tx,
            &tenant,
            name.as_deref(),
            after.as_ref().map(|(n, v)| (n.as_str(), *v)),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, cursor))
    }

    /// Whether an agent may use `provider`/`model` for a task: the most specific published policies
    /// covering the task's project and skill decide, with their tightest limits (default deny).
    async fn evaluate_model_policy(&self, ctx: &Context<'_>, task: ModelTaskInput) -> Result<ModelDecision> {
        let tenant = ctx.authorize(READ)?;
        let project = task.project_id;
        let task = Task {
            project_id: project.map(|p| p.as_uuid()),
            skill_key: task.skill_key.map(|s| s.trim().to_owned()),
            provider: kernel::error::text("provider", &task.provider, 100)?,
            model: kernel::error::text("model", &task.model, 100)?,
            tokens: task.tokens,
            cost_today_cents: task.cost_today_cents,
        };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let in_force = store::in_force(&mut tx, &tenant, project, task.skill_key.as_deref()).await?;
        tx.commit().await?;
        Ok(super::evaluate(&in_force, &task))
    }
}

/// The event that carries a published version whole.
fn published(p: &ModelPolicy) -> events::ModelPolicyPublished {
    let policy = kernel::contracts::governance::models::Policy {
        model_policy_id: p.model_policy_id,
        name: p.name.clone(),
        version: p.version,
        project_id: p.project_id.map(|p| kernel::contracts::catalogue::ProjectId::from_uuid(p.as_uuid())),
        skill_key: p.skill_key.clone(),
        allowed: p.allowed.0.clone(),
        max_tokens_per_task: p.max_tokens_per_task,
        max_cost_per_day_cents: p.max_cost_per_day_cents,
    };
    events::ModelPolicyPublished { policy }
}

/// Versions read (and re-published, one transaction per tenant) per batch by `republishModelPolicies`.
const REPUBLISH_BATCH: i64 = 1_000;

#[derive(Default)]
pub struct ModelMutation;

#[Object]
impl ModelMutation {
    /// Drafts the next version of a model policy.
    async fn draft_model_policy(&self, ctx: &Context<'_>, input: DraftModelPolicyInput) -> Result<ModelPolicy> {
        let tenant = ctx.authorize(WRITE)?;
        let name = crate::policies::name("name", &input.name)?;
        let allowed = super::allowances(
            input.allowed.into_iter().map(|a| ModelAllowance { provider: a.provider, models: a.models }).collect(),
        )?;
        if input.max_tokens_per_task.is_some_and(|t| t <= 0) {
            return Err(Error::bad_input("maxTokensPerTask", "maxTokensPerTask must be positive"));
        }
        if input.max_cost_per_day_cents.is_some_and(|c| c < 0) {
            return Err(Error::bad_input("maxCostPerDayCents", "maxCostPerDayCents must not be negative"));
        }
        let skill = input.skill_key.map(|s| kernel::error::text("skillKey", &s, 64)).transpose()?;
        let by = ctx.principal().to_owned();
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let draft = store::Draft {
            name: &name,
            project_id: input.project_id,
            skill_key: skill.as_deref(),
            allowed: &allowed,
            max_tokens_per_task: input.max_tokens_per_task,
            max_cost_per_day_cents: input.max_cost_per_day_cents,
            by: &by,
        };
        let p = store::insert_next(&mut work, &tenant, ModelPolicyId::new_v7(), &draft).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Publishes a draft (immutable from then on). Emits `ModelPolicyPublished` with the whole policy.
    async fn publish_model_policy(&self, ctx: &Context<'_>, id: ID) -> Result<ModelPolicy> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ModelPolicyId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        super::lock_in(&mut work, &tenant, id, PolicyStatus::Draft, " and immutable").await?;
        let p = store::set_status(&mut work, &tenant, id, PolicyStatus::Published).await?;
        work.emit(&tenant, &published(&p)).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Deprecates a published version (final). Emits `ModelPolicyDeprecated`.
    async fn deprecate_model_policy(&self, ctx: &Context<'_>, id: ID) -> Result<ModelPolicy> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ModelPolicyId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let why = "; only a published version can be deprecated";
        super::lock_in(&mut work, &tenant, id, PolicyStatus::Published, why).await?;
        let p = store::set_status(&mut work, &tenant, id, PolicyStatus::Deprecated).await?;
        work.emit(
            &tenant,
            &events::ModelPolicyDeprecated { model_policy_id: id, name: p.name.clone(), version: p.version },
        )
        .await?;
        work.commit().await?;
        Ok(p)
    }

    /// Publishes every tenant's published model policy versions again (`ModelPolicyPublished`), for a domain
    /// that keeps them and came after they were published — workflow, on an upgrade. Consumers take a
    /// version they have as no change. Platform operators only; returns how many were sent.
    async fn republish_model_policies(&self, ctx: &Context<'_>) -> Result<i64> {
        ctx.authorize_operator()?;
        let db = &state(ctx).kernel.db;
        let mut sent = 0_i64;
        let mut after: Option<(TenantId, ModelPolicyId)> = None;
        loop {
            let mut tx = db.platform_tx().await?;
            let batch =
                store::published_everywhere(&mut tx, after.as_ref().map(|(t, id)| (t.as_str(), *id)), REPUBLISH_BATCH)
                    .await?;
            tx.commit().await?;
            let Some(last) = batch.last() else { break };
            after = Some((last.tenant_id.clone(), last.model_policy_id));
            let full = batch.len() as i64 == REPUBLISH_BATCH;
            for of_tenant in batch.chunk_by(|a, b| a.tenant_id == b.tenant_id) {
                let tenant = of_tenant[0].tenant_id.clone();
                let system = kernel::Authorized::system(tenant.clone(), "governance.republish-model-policies");
                let mut work = Work::tenant(db, &system, ctx.event_meta()).await?;
                for p in of_tenant {
                    work.emit(&tenant, &published(p)).await?;
                }
                work.commit().await?;
                sent += of_tenant.len() as i64;
            }
            if !full {
                break;
            }
        }
        tracing::info!(sent, "model policies published again");
        Ok(sent)
    }
}
