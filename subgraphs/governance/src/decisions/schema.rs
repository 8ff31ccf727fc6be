//! Decisions' share of the query root: evaluating a request (which appends its decision) and reading
//! decisions back.

use crate::state;
use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Json, Object, ID};
use chrono::{DateTime, Utc};
use kernel::pagination::Page;
use kernel::permissions::governance::READ;
use kernel::Authorize;
use kernel::{Error, Result};
use serde_json::Value;

use super::{store, Decision, EvaluationRequest};
use crate::events::{EntityRef, ParentRef};
use crate::ids::DecisionId;
use crate::policies::Effect;

/// A Cedar entity in a request.
#[derive(InputObject)]
#[graphql(name = "PolicyEntityInput")]
pub struct EntityInput {
    /// An entity type of the schema (`policySchema`): `Principal`, `Agent`, `Project`, `Environment`, …
    #[graphql(name = "type")]
    pub entity_type: String,
    pub id: String,
    /// Its parents: the roles a principal holds, the project an environment belongs to, …
    #[graphql(default)]
    pub parents: Vec<ParentInput>,
    /// Its attributes, as the schema declares them (all optional).
    pub attrs: Option<Json<Value>>,
}

#[derive(InputObject)]
#[graphql(name = "PolicyEntityParentInput")]
pub struct ParentInput {
    #[graphql(name = "type")]
    pub entity_type: String,
    pub id: String,
}

#[derive(InputObject)]
pub struct PolicyRequestInput {
    pub principal: EntityInput,
    /// One of the schema's actions: read, write, deploy, approve, run, publish, use.
    pub action: String,
    pub resource: EntityInput,
    /// The request's context (an object the schema's `RequestContext` describes).
    pub context: Option<Json<Value>>,
}

const MAX_ID: usize = 200;
const MAX_PARENTS: usize = 50;

fn entity(field: &str, e: EntityInput) -> Result<(EntityRef, Value)> {
    let check = |what: &str, s: &str| {
        if s.is_empty() || s.len() > MAX_ID || s.chars().any(char::is_control) {
            Err(Error::bad_input(field, format!("{field}.{what} is 1–{MAX_ID} characters without control characters")))
        } else {
            Ok(())
        }
    };
    check("type", &e.entity_type)?;
    check("id", &e.id)?;
    if e.parents.len() > MAX_PARENTS {
        return Err(Error::bad_input(field, format!("{field} has at most {MAX_PARENTS} parents")));
    }
    let mut parents = Vec::with_capacity(e.parents.len());
    for p in e.parents {
        check("parents.type", &p.entity_type)?;
        check("parents.id", &p.id)?;
        parents.push(ParentRef { entity_type: p.entity_type, id: p.id });
    }
    let attrs = e.attrs.map_or(Value::Null, |j| j.0);
    if !(attrs.is_null() || attrs.is_object()) {
        return Err(Error::bad_input(field, format!("{field}.attrs must be a JSON object")));
    }
    Ok((EntityRef { entity_type: e.entity_type, id: e.id, parents }, attrs))
}

impl TryFrom<PolicyRequestInput> for EvaluationRequest {
    type Error = Error;

    fn try_from(r: PolicyRequestInput) -> Result<Self> {
        let (principal, principal_attrs) = entity("principal", r.principal)?;
        let (resource, resource_attrs) = entity("resource", r.resource)?;
        let context = r.context.map_or(Value::Null, |j| j.0);
        if !(context.is_null() || context.is_object()) {
            return Err(Error::bad_input("context", "context must be a JSON object"));
        }
        Ok(Self { principal, principal_attrs, action: r.action, resource, resource_attrs, context })
    }
}

#[derive(Default)]
pub struct DecisionQuery;

#[Object]
impl DecisionQuery {
    /// Evaluates a request over the caller's policy set (its own published policies and the platform's)
    /// and appends the decision, which it returns. `effect` is `Deny` unless a permit applies and no forbid
    /// does; `RequiresApproval` when a deciding permit is annotated `@effect("requires_approval")`.
    /// A request that does not fit the schema is `BAD_USER_INPUT` (nothing appended).
    async fn evaluate_policy(&self, ctx: &Context<'_>, request: PolicyRequestInput) -> Result<Decision> {
        let tenant = ctx.authorize(READ)?;
        let req = EvaluationRequest::try_from(request)?;
        let s = state(ctx);
        let set = s.policies.get(&s.kernel.db, &tenant).await?;
        let meta = ctx.event_meta();
        let d = super::evaluate(&tenant, &set, &req, &meta)?;
        s.decisions.submit((d.clone(), meta)).await?;
        Ok(d)
    }

    /// A decision by id.
    async fn decision(&self, ctx: &Context<'_>, id: ID) -> Result<Decision> {
        let tenant = ctx.authorize(READ)?;
        let id = DecisionId::from_id("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let d = store::by_id(&mut tx, &tenant, id).await?;
        tx.commit().await?;
        d.ok_or_else(|| Error::not_found(format!("no decision `{id}`")))
    }

    /// Decisions, newest first, optionally within [from, to) and of one effect.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn decisions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        effect: Option<Effect>,
    ) -> Result<Connection<String, Decision>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let before = page.after.as_deref().map(|c| DecisionId::parse("after", c)).transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &tenant, from, to, effect, before, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |d| d.decision_id.to_string()))
    }
}
