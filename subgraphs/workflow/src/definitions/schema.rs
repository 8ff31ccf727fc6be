//! Definitions' share of the query and mutation roots.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, InputObject, Object};
use kernel::pagination::Page;
use kernel::permissions::workflow::{READ, WRITE};
use kernel::{Authorize, Error, Result, TenantId, Work};
use serde_json::{json, Map, Value};

use super::spec::{Compensation, Retry, Spec, Step, StepType};
use super::{store, Definition, NewDefinition, StepView};
use crate::state;

#[ComplexObject]
impl Definition {
    /// Whether it is the platform's (from the registry shipped with the control plane), which every
    /// tenant may start.
    async fn platform(&self) -> bool {
        self.is_platform()
    }

    /// The first step.
    async fn start(&self) -> &str {
        &self.spec.start
    }

    /// Every step, in the order it was published.
    async fn steps(&self) -> Vec<StepView> {
        self.spec.steps.iter().map(StepView::from).collect()
    }
}

/// One step to publish: `id`, `type`, and the fields of that type (the others left out).
#[derive(InputObject)]
#[graphql(name = "WorkflowStepInput")]
pub struct StepInput {
    pub id: String,
    #[graphql(name = "type")]
    pub kind: StepType,
    pub next: Option<String>,
    pub on_failure: Option<String>,
    /// AgentTask: the skill's key (catalogue's).
    pub skill: Option<String>,
    /// AgentTask: a semver requirement on the skill's version (default: any published one).
    pub skill_version: Option<String>,
    /// AgentTask: the agent pool whose agents run it.
    pub pool: Option<String>,
    /// Approval: the roles that may decide.
    pub approver_roles: Option<Vec<String>>,
    /// Approval: approvals needed.
    pub quorum: Option<u32>,
    /// Approval: hours before an undecided request expires.
    pub approval_ttl_hours: Option<u32>,
    /// Wait: seconds to wait.
    pub wait_seconds: Option<u32>,
    /// Parallel: the first step of each branch.
    pub branches: Option<Vec<String>>,
    /// Parallel: the Join step every branch ends at.
    pub join: Option<String>,
    pub retry: Option<RetryInput>,
    pub timeout_seconds: Option<u32>,
    pub compensation: Option<CompensationInput>,
}

#[derive(InputObject)]
pub struct RetryInput {
    pub max_attempts: u32,
    pub initial_backoff_seconds: u32,
    pub max_backoff_seconds: u32,
}

#[derive(InputObject)]
#[graphql(name = "StepCompensationInput")]
pub struct CompensationInput {
    pub skill: String,
    pub pool: Option<String>,
}

impl StepInput {
    /// The step, with the fields its type takes; a field of another type, or one its type needs and
    /// lacks, is refused naming the step.
    fn into_step(self) -> Result<Step> {
        let id = self.id.clone();
        let mut fields = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                fields.insert(k.to_owned(), v);
            }
        };
        put("id", Some(json!(self.id)));
        put("type", Some(json!(format!("{:?}", self.kind))));
        put("next", self.next.map(Value::from));
        put("onFailure", self.on_failure.map(Value::from));
        put("skill", self.skill.map(Value::from));
        put("skillVersion", self.skill_version.map(Value::from));
        put("pool", self.pool.map(Value::from));
        put("approverRoles", self.approver_roles.map(Value::from));
        put("quorum", self.quorum.map(Value::from));
        put("approvalTtlHours", self.approval_ttl_hours.map(Value::from));
        put("waitSeconds", self.wait_seconds.map(Value::from));
        put("branches", self.branches.map(Value::from));
        put("join", self.join.map(Value::from));
        put("timeoutSeconds", self.timeout_seconds.map(Value::from));
        let retry = self.retry.map(|r| Retry {
            max_attempts: r.max_attempts,
            initial_backoff_seconds: r.initial_backoff_seconds,
            max_backoff_seconds: r.max_backoff_seconds,
        });
        let compensation = self.compensation.map(|c| Compensation { skill: c.skill, pool: c.pool });
        let mut step: Step = serde_json::from_value(Value::Object(fields)).map_err(|e| {
            // serde's own wording names the field (`unknown field `skill``, `missing field `pool``).
            let why = e.to_string();
            Error::bad_input(
                "steps",
                format!(
                    "step `{}`: {}",
                    kernel::error::clip(&id, 63),
                    why.replace(", expected", "; a step of this type takes")
                ),
            )
            .with("step", kernel::error::clip(&id, 63))
        })?;
        (step.retry, step.compensation) = (retry, compensation);
        Ok(step)
    }
}

#[derive(InputObject)]
pub struct PublishWorkflowDefinitionInput {
    /// 3–63 lower-case letters, digits and hyphens; the tenant's versions of a key share it.
    pub key: String,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    /// The first step's id.
    pub start: String,
    pub steps: Vec<StepInput>,
    /// Once an instance's history holds this many events, it goes on as a new instance at the next step it
    /// moves to with nothing else in play (continue-as-new): 10 to 40,960, default 10,240.
    pub continue_as_new_after: Option<i32>,
}

#[derive(Default)]
pub struct DefinitionQuery;

#[Object]
impl DefinitionQuery {
    /// A definition version — the latest when `version` is left out; the platform's with `platform`.
    async fn workflow_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: Option<i32>,
        #[graphql(default)] platform: bool,
    ) -> Result<Option<Definition>> {
        let tenant = ctx.authorize(READ)?;
        let owner = if platform { TenantId::platform() } else { tenant.tenant().clone() };
        let key = kernel::error::clip(key.trim(), 63);
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let d = match version {
            Some(v) => store::get(&mut tx, &owner, &key, v).await?,
            None => store::latest(&mut tx, &owner, &key).await?,
        };
        tx.commit().await?;
        Ok(d)
    }

    /// The latest version of each of the tenant's definitions (the platform's with `platform`), in key
    /// order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn workflow_definitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] platform: bool,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Definition>> {
        let tenant = ctx.authorize(READ)?;
        let owner = if platform { TenantId::platform() } else { tenant.tenant().clone() };
        let page = Page::forward(after, first, 20)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &owner, page.after.as_deref(), page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |d| d.key.clone()))
    }
}

#[derive(Default)]
pub struct DefinitionMutation;

#[Object]
impl DefinitionMutation {
    /// Publishes the steps as the next version of the tenant's definition `key` (or answers the latest
    /// version when it has these steps, name and description already). Refused with `BAD_USER_INPUT`
    /// naming the step (`extensions.step`) when the steps do not hold together or name a skill catalogue
    /// has not published.
    async fn publish_workflow_definition(
        &self,
        ctx: &Context<'_>,
        input: PublishWorkflowDefinitionInput,
    ) -> Result<Definition> {
        let tenant = ctx.authorize(WRITE)?;
        let key = super::key(&input.key)?;
        let name = kernel::error::text("name", &input.name, 200)?;
        let description = match input.description.trim() {
            "" => String::new(),
            d => kernel::error::text("description", d, 2000)?,
        };
        if input.steps.len() > super::spec::MAX_STEPS {
            return Err(Error::bad_input(
                "steps",
                format!("a definition has at most {} steps", super::spec::MAX_STEPS),
            ));
        }
        let steps = input.steps.into_iter().map(StepInput::into_step).collect::<Result<Vec<_>>>()?;
        let continue_as_new_after = input
            .continue_as_new_after
            .map(|n| {
                u32::try_from(n).map_err(|_| Error::bad_input("continueAsNewAfter", "`continueAsNewAfter` is positive"))
            })
            .transpose()?;
        let spec = Spec { start: input.start.trim().to_owned(), steps, continue_as_new_after };
        let by = Some(ctx.request_context().caller.subject.clone());
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let d = super::publish(&mut work, &tenant, NewDefinition { key, name, description, spec }, by).await?;
        work.commit().await?;
        Ok(d)
    }

    /// Deprecates a version of the tenant's definition: it starts no new instances (final).
    async fn deprecate_workflow_definition(&self, ctx: &Context<'_>, key: String, version: i32) -> Result<Definition> {
        let tenant = ctx.authorize(WRITE)?;
        let key = kernel::error::clip(key.trim(), 63);
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let d = super::deprecate(&mut work, &tenant, &key, version).await?;
        work.commit().await?;
        Ok(d)
    }
}
