//! Decisions: every evaluation appends one — the request (principal, action, resource, context), the
//! version and hash of the policy set it was evaluated over, the policies that decided, the effect, and
//! the trace and correlation ids — and publishes `PolicyDecided`. Decisions are append-only (the app role
//! has no UPDATE or DELETE grant and a trigger refuses both) and kept seven years (`retention.rs`), never
//! deleted for a tenant under legal hold.

pub mod retention;
pub mod schema;
pub mod store;
pub mod writer;

use async_graphql::{ComplexObject, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::envelope::EventMeta;
use kernel::{Result, TenantId, Work};
use serde_json::Value;

use crate::events::{self, EntityRef};
use crate::ids::{DecisionId, PolicyId};
use crate::policies::cedar::{self, CompiledSet};
use crate::policies::Effect;

/// One appended decision.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Decision {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub decision_id: DecisionId,
    pub decided_at: DateTime<Utc>,
    /// `Type::"id"`, as Cedar writes entity ids.
    pub principal: String,
    pub action: String,
    pub resource: String,
    #[graphql(skip)]
    pub context: Value,
    pub policy_set_version: i64,
    pub policy_set_hash: String,
    /// The ids of the policies that decided (none for a default deny).
    #[graphql(skip)]
    pub determining_policies: Vec<PolicyId>,
    /// Evaluation errors (a policy that erred is skipped, as Cedar does).
    pub errors: Vec<String>,
    pub effect: Effect,
    pub trace_id: String,
    pub correlation_id: String,
}

#[ComplexObject]
impl Decision {
    async fn id(&self) -> ID {
        ID(self.decision_id.to_string())
    }

    async fn context(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.context)
    }

    /// The deciding policies (the tenant's own and the platform's).
    async fn determining_policies(&self, ctx: &async_graphql::Context<'_>) -> Result<Vec<crate::policies::Policy>> {
        if self.determining_policies.is_empty() {
            return Ok(Vec::new());
        }
        let s = crate::state(ctx);
        let mut tx = s.kernel.db.tenant_tx(&self.tenant_id).await?;
        let mut rows = crate::policies::store::by_ids(&mut tx, &self.tenant_id, &self.determining_policies).await?;
        tx.commit().await?;
        rows.sort_by_key(|p| p.policy_id);
        kernel::server::charge(ctx, rows.len())?;
        Ok(rows)
    }
}

/// `Type::"id"` with Cedar's escaping.
pub fn entity_string(e: &EntityRef) -> String {
    format!("{}::{}", e.entity_type, serde_json::Value::String(e.id.clone()))
}

/// A request to evaluate, as the API and the command give it.
#[derive(Clone, Debug)]
pub struct EvaluationRequest {
    pub principal: EntityRef,
    pub principal_attrs: Value,
    pub action: String,
    pub resource: EntityRef,
    pub resource_attrs: Value,
    pub context: Value,
}

/// The context is stored with the decision: an object of at most this many bytes.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;

/// Evaluates `req` over `set` for `tenant`: the decision to append (with `meta`'s trace and correlation ids).
/// A request that does not fit the schema is `BAD_USER_INPUT`.
pub fn evaluate(tenant: &TenantId, set: &CompiledSet, req: &EvaluationRequest, meta: &EventMeta) -> Result<Decision> {
    let size = serde_json::to_vec(&req.context).map_or(usize::MAX, |v| v.len());
    if size > MAX_CONTEXT_BYTES {
        return Err(kernel::Error::bad_input("context", format!("context is at most {MAX_CONTEXT_BYTES} bytes")));
    }
    // Cedar accepts NUL; PostgreSQL cannot store it. Refused before the decision joins a shared commit.
    if req.action.contains('\0') {
        return Err(kernel::Error::bad_input("action", "action holds a NUL character (\\u0000)"));
    }
    kernel::error::no_nul("context", &req.context)?;
    kernel::error::no_nul("principal.attrs", &req.principal_attrs)?;
    kernel::error::no_nul("resource.attrs", &req.resource_attrs)?;
    let prepared = cedar::prepare(
        &req.principal,
        &req.principal_attrs,
        &req.action,
        &req.resource,
        &req.resource_attrs,
        &req.context,
    )?;
    let evaluation = set.evaluate(&prepared);
    Ok(Decision {
        tenant_id: tenant.clone(),
        decision_id: DecisionId::new_v7(),
        decided_at: Utc::now(),
        principal: entity_string(&req.principal),
        action: req.action.clone(),
        resource: entity_string(&req.resource),
        context: if req.context.is_null() { Value::Object(Default::default()) } else { req.context.clone() },
        policy_set_version: set.version,
        policy_set_hash: set.hash.clone(),
        determining_policies: evaluation.determining,
        errors: evaluation.errors,
        effect: evaluation.effect,
        trace_id: meta.trace_id.clone(),
        correlation_id: meta.correlation_id.clone(),
    })
}

/// Appends `decision` in `work` and emits its `PolicyDecided` (the command path, whose inbox row shares the
/// transaction; the API appends through the [`writer`]).
pub async fn record(work: &mut Work, decision: &Decision) -> Result<()> {
    store::append(work, &[decision]).await?;
    work.emit(&decision.tenant_id, &decided(decision)).await?;
    Ok(())
}

/// The event a decision publishes.
pub fn decided(d: &Decision) -> events::PolicyDecided {
    events::PolicyDecided {
        decision_id: d.decision_id,
        principal: d.principal.clone(),
        action: d.action.clone(),
        resource: d.resource.clone(),
        effect: d.effect,
        determining_policies: d.determining_policies.clone(),
        policy_set_version: d.policy_set_version,
        policy_set_hash: d.policy_set_hash.clone(),
    }
}
