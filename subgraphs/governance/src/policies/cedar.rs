//! The control plane's Cedar schema, checking a policy against it, compiling a tenant's policy set and
//! evaluating requests over it, with the `cedar-policy` crate.
//!
//! A compiled set indexes its policies by their scope (principal, action, resource). Evaluating a request
//! first picks the policies whose scope matches it — through the principal index (its uid, its ancestors',
//! its type's, or unconstrained), then checking the action and resource constraints exactly, as Cedar
//! does. A policy whose scope does not match is never satisfied and never errs (Cedar checks the scope
//! before any condition). Of the rest, one without a `when`/`unless` clause is satisfied by its scope
//! alone; Cedar evaluates those with a condition, and the two are combined by Cedar's rule (a satisfied
//! forbid denies, else a satisfied permit allows, else the default deny). So the decision, its reasons and
//! its errors are the ones Cedar gives over the whole set, at a fraction of the work; a unit test compares
//! both on thousands of random requests, and the benchmark on every request it times.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use cedar_policy::{
    ActionConstraint, Context, Entities, Entity, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint, RestrictedExpression, Schema, ValidationMode, Validator,
};
use cedar_policy_core::ast::{Literal, Value as CedarValue, ValueKind};
use kernel::{Error, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Effect;
use crate::events::EntityRef;
use crate::ids::PolicyId as VersionId;

/// The entity types and actions policies are written against. Every attribute is optional, so a request
/// names only what it knows; a policy reads one after `has` (the validator insists).
pub const SCHEMA: &str = r#"
entity Tenant;
entity Role;
entity Principal in [Role] {
  kind?: String,
  mfa?: Bool,
  email?: String,
};
entity Agent in [Role] {
  capabilities?: Set<String>,
};
entity Project in [Tenant] {
  slug?: String,
};
entity Environment in [Project] {
  name?: String,
};
entity Module in [Project] {
  kind?: String,
  tags?: Set<String>,
};
entity Workflow in [Project];
entity Artifact in [Project, Workflow] {
  kind?: String,
};
entity Model {
  provider?: String,
};
type RequestContext = {
  reason?: String,
  changeSize?: Long,
  tokens?: Long,
  costCents?: Long,
  hour?: Long,
  mfa?: Bool,
  labels?: Set<String>,
};
action "read", "write" appliesTo {
  principal: [Principal, Agent],
  resource: [Tenant, Project, Environment, Module, Workflow, Artifact, Model],
  context: RequestContext,
};
action "deploy" appliesTo { principal: [Principal, Agent], resource: [Environment, Artifact], context: RequestContext };
action "approve" appliesTo { principal: [Principal], resource: [Environment, Workflow, Artifact], context: RequestContext };
action "run" appliesTo { principal: [Principal, Agent], resource: [Workflow], context: RequestContext };
action "publish" appliesTo { principal: [Principal, Agent], resource: [Artifact, Module], context: RequestContext };
action "use" appliesTo { principal: [Principal, Agent], resource: [Model], context: RequestContext };
"#;

/// The actions [`SCHEMA`] declares.
pub const ACTIONS: &[&str] = &["read", "write", "deploy", "approve", "run", "publish", "use"];

/// The annotation marking a permit policy whose permission needs an approval first.
pub const EFFECT_ANNOTATION: &str = "effect";
pub const REQUIRES_APPROVAL: &str = "requires_approval";

pub fn schema() -> &'static Schema {
    static SCHEMA_PARSED: LazyLock<Schema> = LazyLock::new(|| {
        let (schema, warnings) = Schema::from_cedarschema_str(SCHEMA).expect("the control plane's Cedar schema parses");
        debug_assert_eq!(warnings.count(), 0);
        schema
    });
    &SCHEMA_PARSED
}

/// Where in a policy's text something is wrong (1-based), as Cedar's diagnostics point at it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub length: usize,
}

impl Location {
    fn of(text: &str, offset: usize, length: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self { line, column, offset, length }
    }
}

/// A policy the engine refused: its message and, where it points at one, the location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub location: Option<Location>,
}

impl Refusal {
    fn from_diagnostic(text: &str, d: &dyn miette::Diagnostic) -> Self {
        let location = d.labels().and_then(|mut l| l.next()).map(|l| Location::of(text, l.offset(), l.len()));
        let mut message = d.to_string();
        if let Some(help) = d.help() {
            message = format!("{message} ({help})");
        }
        Self { message, location }
    }

    fn plain(message: impl Into<String>) -> Self {
        Self { message: message.into(), location: None }
    }

    /// The coded API error: `BAD_USER_INPUT` with the engine's message and `extensions.location`.
    pub fn into_error(self) -> Error {
        let e = Error::bad_input("cedar", format!("invalid policy: {}", self.message));
        match self.location {
            Some(l) => e.with(
                "location",
                serde_json::json!({ "line": l.line, "column": l.column, "offset": l.offset, "length": l.length }),
            ),
            None => e,
        }
    }
}

/// Parses `text` as one static Cedar policy, with `effect` added as the annotation when it is
/// `RequiresApproval`, and checks it against [`SCHEMA`] (strict mode).
pub fn check(text: &str, effect: Effect) -> std::result::Result<Policy, Refusal> {
    let id = || Some(PolicyId::new("candidate"));
    let policy = Policy::parse(id(), text).map_err(|e| Refusal::from_diagnostic(text, &e))?;
    // The annotation is added to a RequiresApproval policy that lacks it — as Cedar parsed it, not as the
    // text reads (`@effect(` in a comment is no annotation).
    let source = match effect {
        Effect::RequiresApproval if policy.annotation(EFFECT_ANNOTATION).is_none() => {
            format!("@{EFFECT_ANNOTATION}(\"{REQUIRES_APPROVAL}\")\n{text}")
        }
        _ => text.to_owned(),
    };
    let shift = source.len() - text.len();
    let relocate = |mut r: Refusal| {
        if let Some(l) = &mut r.location {
            *l = Location::of(text, l.offset.saturating_sub(shift), l.length);
        }
        r
    };
    let policy = if shift == 0 {
        policy
    } else {
        Policy::parse(id(), &source).map_err(|e| relocate(Refusal::from_diagnostic(&source, &e)))?
    };
    let permit = policy.effect() == cedar_policy::Effect::Permit;
    let approval = policy.annotation(EFFECT_ANNOTATION);
    match (effect, permit, approval) {
        (Effect::Allow, true, None) | (Effect::Deny, false, None) => {}
        (Effect::RequiresApproval, true, Some(REQUIRES_APPROVAL)) => {}
        (Effect::Deny, true, _) => return Err(Refusal::plain("a Deny policy must be a `forbid` statement")),
        (_, false, _) => return Err(Refusal::plain("an Allow or RequiresApproval policy must be a `permit` statement")),
        (_, _, Some(other)) => {
            return Err(Refusal::plain(format!(
                "the @{EFFECT_ANNOTATION} annotation may only be \"{REQUIRES_APPROVAL}\", on a RequiresApproval policy (found \"{other}\")"
            )))
        }
        // Added above; refused rather than trusted, should Cedar ever read the added line differently.
        (Effect::RequiresApproval, true, None) => {
            return Err(Refusal::plain(format!("a RequiresApproval policy needs @{EFFECT_ANNOTATION}(\"{REQUIRES_APPROVAL}\")")))
        }
    }
    let mut set = PolicySet::new();
    set.add(policy.clone()).map_err(|e| Refusal::plain(e.to_string()))?;
    let result = Validator::new(schema().clone()).validate(&set, ValidationMode::Strict);
    if let Some(e) = result.validation_errors().next() {
        return Err(relocate(Refusal::from_diagnostic(&source, e)));
    }
    Ok(policy)
}

/// A published policy as the set is compiled from it.
#[derive(Clone, Debug)]
pub struct Published {
    pub policy_id: VersionId,
    pub name: String,
    pub version: i32,
    pub effect: Effect,
    pub cedar: String,
    pub set_change: i64,
}

/// A policy's scope as the index checks it (the same three constraints Cedar checks first).
struct Indexed {
    policy: Policy,
    policy_id: VersionId,
    effect: Effect,
    /// Its `when` and `unless` clauses as one expression, as Cedar builds it (`None`: a matching scope alone
    /// satisfies it).
    body: Option<Arc<cedar_policy_core::ast::Expr>>,
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

/// Whether an entity with `uid` and `ancestors` is `in` `target` (itself or an ancestor).
fn is_in(uid: &EntityUid, ancestors: &[&EntityUid], target: &EntityUid) -> bool {
    uid == target || ancestors.contains(&target)
}

impl Indexed {
    fn principal_matches(&self, uid: &EntityUid, ancestors: &[&EntityUid]) -> bool {
        match &self.principal {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => u == uid,
            PrincipalConstraint::In(u) => is_in(uid, ancestors, u),
            PrincipalConstraint::Is(t) => t == uid.type_name(),
            PrincipalConstraint::IsIn(t, u) => t == uid.type_name() && is_in(uid, ancestors, u),
        }
    }

    fn action_matches(&self, action: &EntityUid) -> bool {
        match &self.action {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == action,
            // The schema declares no action groups: an action is `in` a list only by being in it.
            ActionConstraint::In(list) => list.contains(action),
        }
    }

    fn resource_matches(&self, uid: &EntityUid, ancestors: &[&EntityUid]) -> bool {
        match &self.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(u) => u == uid,
            ResourceConstraint::In(u) => is_in(uid, ancestors, u),
            ResourceConstraint::Is(t) => t == uid.type_name(),
            ResourceConstraint::IsIn(t, u) => t == uid.type_name() && is_in(uid, ancestors, u),
        }
    }
}

/// How a compiled set evaluates requests (`POLICY_ENGINE`). Both give the same decisions, deciding
/// policies and error strings — the differential test `the_scope_index_decides_as_the_whole_set_does`
/// checks it on thousands of random requests, and a Cedar upgrade must pass it unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The scope index, with `cedar-policy-core`'s evaluator on the candidates' conditions: the fast path.
    #[default]
    Indexed,
    /// Cedar's own `Authorizer` over the whole set: the plain path, through public API only (a fallback
    /// should an upgrade of `cedar-policy-core` change what the indexed path relies on).
    Authorizer,
}

/// A tenant's published policies and the platform's, compiled.
pub struct CompiledSet {
    /// How [`CompiledSet::evaluate`] evaluates.
    pub engine: Engine,
    /// The whole set, built once, for [`Engine::Authorizer`].
    whole: std::sync::OnceLock<PolicySet>,
    /// The highest publication/deprecation stamp among them (0 for no policies).
    pub version: i64,
    /// sha256 over the policies' ids, versions and texts in id order (hex).
    pub hash: String,
    pub policies: usize,
    indexed: Vec<Indexed>,
    /// Policies by the entity their principal constraint names (`==`, `in`, `is … in`).
    by_principal: HashMap<EntityUid, Vec<u32>>,
    /// Policies whose principal constraint is `is <Type>` only.
    by_principal_type: HashMap<EntityTypeName, Vec<u32>>,
    /// Policies with an unconstrained principal.
    any_principal: Vec<u32>,
}

impl CompiledSet {
    /// Compiles `policies` (already checked at publication; a policy that no longer parses is an internal
    /// error). `version` is the set's stamp, from the store.
    pub fn compile(policies: &[Published], version: i64) -> Result<Self> {
        Self::compile_for(policies, version, Engine::default())
    }

    /// Compiles `policies` to be evaluated by `engine`.
    pub fn compile_for(policies: &[Published], version: i64, engine: Engine) -> Result<Self> {
        let mut sorted: Vec<&Published> = policies.iter().collect();
        sorted.sort_by_key(|p| p.policy_id);
        let mut hasher = Sha256::new();
        let mut indexed = Vec::with_capacity(sorted.len());
        let mut by_principal: HashMap<EntityUid, Vec<u32>> = HashMap::new();
        let mut by_principal_type: HashMap<EntityTypeName, Vec<u32>> = HashMap::new();
        let mut any_principal = Vec::new();
        for (i, p) in sorted.iter().enumerate() {
            hasher.update(format!("{}\n{}\n{}\n{}\n", p.policy_id, p.version, p.effect.as_str(), p.cedar.len()));
            hasher.update(p.cedar.as_bytes());
            let id = PolicyId::new(p.policy_id.to_string());
            let policy = check(&p.cedar, p.effect)
                .map_err(|r| {
                    Error::internal(anyhow::anyhow!(
                        "published policy {} no longer compiles: {}",
                        p.policy_id,
                        r.message
                    ))
                })?
                .new_id(id);
            let principal = policy.principal_constraint();
            let i = i as u32;
            match &principal {
                PrincipalConstraint::Any => any_principal.push(i),
                PrincipalConstraint::Eq(u) | PrincipalConstraint::In(u) | PrincipalConstraint::IsIn(_, u) => {
                    by_principal.entry(u.clone()).or_default().push(i)
                }
                PrincipalConstraint::Is(t) => by_principal_type.entry(t.clone()).or_default().push(i),
            }
            indexed.push(Indexed {
                policy_id: p.policy_id,
                effect: p.effect,
                body: policy.as_ref().non_scope_constraints_arc().cloned(),
                action: policy.action_constraint(),
                resource: policy.resource_constraint(),
                principal,
                policy,
            });
        }
        Ok(Self {
            engine,
            whole: std::sync::OnceLock::new(),
            version,
            hash: hex::encode(hasher.finalize()),
            policies: sorted.len(),
            indexed,
            by_principal,
            by_principal_type,
            any_principal,
        })
    }

    /// The whole set as one `PolicySet`, built on each call: what the bare baseline (`Authorizer`) of the
    /// benchmark and the tests evaluates. The indexed engine never needs it.
    pub fn policy_set(&self) -> PolicySet {
        PolicySet::from_policies(self.indexed.iter().map(|ix| ix.policy.clone()))
            .expect("ids are unique in the compiled set")
    }

    /// The policies whose scope matches `request` (indices, ascending).
    fn candidates(&self, request: &Prepared) -> Vec<u32> {
        let (Some(p), Some(a), Some(r)) =
            (request.request.principal(), request.request.action(), request.request.resource())
        else {
            return (0..self.indexed.len() as u32).collect();
        };
        let p_anc: Vec<&EntityUid> = request.entities.ancestors(p).map(Iterator::collect).unwrap_or_default();
        let r_anc: Vec<&EntityUid> = request.entities.ancestors(r).map(Iterator::collect).unwrap_or_default();
        let mut out: Vec<u32> = self.any_principal.clone();
        for uid in std::iter::once(p).chain(p_anc.iter().copied()) {
            if let Some(v) = self.by_principal.get(uid) {
                out.extend_from_slice(v);
            }
        }
        if let Some(v) = self.by_principal_type.get(p.type_name()) {
            out.extend_from_slice(v);
        }
        out.sort_unstable();
        out.dedup();
        out.retain(|&i| {
            let ix = &self.indexed[i as usize];
            ix.principal_matches(p, &p_anc) && ix.action_matches(a) && ix.resource_matches(r, &r_anc)
        });
        out
    }

    /// Evaluates a prepared request. Of the policies whose scope matches, those without a `when` or `unless`
    /// clause are satisfied by the scope alone (and cannot err); Cedar's evaluator evaluates the others one
    /// by one (a policy that errs is skipped and its error reported, as `Authorizer` does). They are combined
    /// by Cedar's rule: any satisfied forbid denies, naming the satisfied forbids; otherwise any satisfied
    /// permit allows, naming the satisfied permits; otherwise the default deny.
    pub fn evaluate(&self, request: &Prepared) -> Evaluation {
        match self.engine {
            Engine::Indexed => self.evaluate_indexed(request),
            Engine::Authorizer => self.evaluate_whole(request),
        }
    }

    /// Cedar's `Authorizer` over the whole set; the effect of a satisfied permit comes from its policy.
    fn evaluate_whole(&self, request: &Prepared) -> Evaluation {
        let whole = self.whole.get_or_init(|| self.policy_set());
        let answer = cedar_policy::Authorizer::new().is_authorized(&request.request, whole, &request.entities);
        let effect_of = |id: &VersionId| self.indexed.iter().find(|ix| ix.policy_id == *id).map(|ix| ix.effect);
        let mut determining: Vec<VersionId> = answer
            .diagnostics()
            .reason()
            .filter_map(|r| uuid::Uuid::parse_str(r.as_ref()).ok().map(VersionId::from))
            .collect();
        determining.sort_unstable();
        let errors = answer.diagnostics().errors().map(|e| e.to_string()).collect();
        let effect = match answer.decision() {
            cedar_policy::Decision::Deny => Effect::Deny,
            cedar_policy::Decision::Allow
                if determining.iter().any(|id| effect_of(id) == Some(Effect::RequiresApproval)) =>
            {
                Effect::RequiresApproval
            }
            cedar_policy::Decision::Allow => Effect::Allow,
        };
        Evaluation { effect, determining, errors }
    }

    fn evaluate_indexed(&self, request: &Prepared) -> Evaluation {
        let candidates = self.candidates(request);
        let mut forbids: Vec<(VersionId, Effect)> = Vec::new();
        let mut permits: Vec<(VersionId, Effect)> = Vec::new();
        let mut errors = Vec::new();
        // Cedar's evaluator for this request, built once. A policy's condition is its scope `&&` its body, and
        // the scope is known to hold: the condition's value is the body's.
        let mut evaluator = None;
        for &i in &candidates {
            let ix = &self.indexed[i as usize];
            let satisfied = match &ix.body {
                None => true,
                Some(body) => {
                    let eval = evaluator.get_or_insert_with(|| {
                        cedar_policy_core::evaluator::Evaluator::new(
                            request.request.as_ref().clone(),
                            request.entities.as_ref(),
                            cedar_policy_core::extensions::Extensions::all_available(),
                        )
                    });
                    let policy = ix.policy.as_ref();
                    match eval.interpret(body, policy.env()) {
                        Ok(CedarValue { value: ValueKind::Lit(Literal::Bool(b)), .. }) => b,
                        // An error (or, never after validation, not a boolean): Cedar's evaluation of the
                        // whole policy gives its own error, which is reported and the policy skipped.
                        _ => match eval.evaluate(policy) {
                            Ok(b) => b,
                            Err(e) => {
                                errors.push(format!("error while evaluating policy `{}`: {e}", ix.policy.id()));
                                false
                            }
                        },
                    }
                }
            };
            if satisfied {
                let entry = (ix.policy_id, ix.effect);
                if ix.effect == Effect::Deny {
                    forbids.push(entry);
                } else {
                    permits.push(entry);
                }
            }
        }
        let (effect, mut determining) = if !forbids.is_empty() {
            (Effect::Deny, forbids)
        } else if permits.iter().any(|(_, e)| *e == Effect::RequiresApproval) {
            (Effect::RequiresApproval, permits)
        } else if !permits.is_empty() {
            (Effect::Allow, permits)
        } else {
            (Effect::Deny, Vec::new())
        };
        determining.sort_unstable_by_key(|(id, _)| *id);
        Evaluation { effect, determining: determining.into_iter().map(|(id, _)| id).collect(), errors }
    }

    /// How many policies' scopes match `request`, and how many of those have a condition (what Cedar
    /// evaluates): the benchmark's breakdown.
    pub fn candidate_counts(&self, request: &Prepared) -> (usize, usize) {
        let c = self.candidates(request);
        (c.len(), c.iter().filter(|&&i| self.indexed[i as usize].body.is_some()).count())
    }
}

/// What an evaluation decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub effect: Effect,
    /// The policies that decided: the satisfied permits for an allow, the satisfied forbids for an explicit
    /// deny, none for a default deny.
    pub determining: Vec<VersionId>,
    pub errors: Vec<String>,
}

/// A request checked against the schema, with its entities, ready to evaluate.
pub struct Prepared {
    pub action: String,
    pub request: Request,
    pub entities: Entities,
}

fn uid(field: &str, entity_type: &str, id: &str) -> Result<EntityUid> {
    let ty = cedar_policy::EntityTypeName::from_str(entity_type).map_err(|_| {
        Error::bad_input(field, format!("`{}` is not an entity type", kernel::error::clip(entity_type, 40)))
    })?;
    Ok(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(id)))
}

/// A JSON value as a Cedar restricted expression: booleans, integers, strings, sets and records (what the
/// schema's attributes and context hold). `None` for anything else (floats, null).
fn restricted(v: &Value) -> Option<RestrictedExpression> {
    Some(match v {
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => RestrictedExpression::new_set(items.iter().map(restricted).collect::<Option<Vec<_>>>()?),
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter().map(|(k, v)| restricted(v).map(|r| (k.clone(), r))).collect::<Option<Vec<_>>>()?,
        )
        .ok()?,
        Value::Null => return None,
    })
}

fn attributes(field: &str, v: &Value) -> Result<HashMap<String, RestrictedExpression>> {
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(HashMap::new())
        } else {
            Err(Error::bad_input(field, format!("{field} must be an object")))
        };
    };
    map.iter()
        .map(|(k, v)| {
            restricted(v).map(|r| (k.clone(), r)).ok_or_else(|| {
                Error::bad_input(
                    field,
                    format!("{field}.{} is not a boolean, integer, string, set or record", kernel::error::clip(k, 40)),
                )
            })
        })
        .collect()
}

/// Checks a request against the schema (types, the action's principals and resources, the context and
/// attributes) and builds its entities: the principal and resource with their attributes and parents, and
/// each parent (without attributes). The values are built directly (Cedar's JSON parsers cost several
/// times more); the schema checks them when the request and the entity store are made.
pub fn prepare(
    principal: &EntityRef,
    principal_attrs: &Value,
    action: &str,
    resource: &EntityRef,
    resource_attrs: &Value,
    context: &Value,
) -> Result<Prepared> {
    let schema = schema();
    if !ACTIONS.contains(&action) {
        return Err(Error::bad_input(
            "action",
            format!("unknown action `{}` (one of {})", kernel::error::clip(action, 40), ACTIONS.join(", ")),
        ));
    }
    if (&principal.entity_type, &principal.id) == (&resource.entity_type, &resource.id) {
        return Err(Error::bad_input("resource", "the resource may not be the principal"));
    }
    let p = uid("principal.type", &principal.entity_type, &principal.id)?;
    let r = uid("resource.type", &resource.entity_type, &resource.id)?;
    let a = uid("action", "Action", action)?;
    let context = Context::from_pairs(attributes("context", context)?)
        .map_err(|e| Error::bad_input("context", format!("context: {e}")))?;
    let request = Request::new(p.clone(), a, r.clone(), context, Some(schema))
        .map_err(|e| Error::bad_input("request", e.to_string()))?;
    let mut entities: HashMap<EntityUid, Entity> = HashMap::new();
    for (e, uid, attrs, field) in
        [(principal, p, principal_attrs, "principal.attrs"), (resource, r, resource_attrs, "resource.attrs")]
    {
        let mut parents = HashSet::with_capacity(e.parents.len());
        for parent in &e.parents {
            let puid = self::uid("parents.type", &parent.entity_type, &parent.id)?;
            entities.entry(puid.clone()).or_insert_with(|| Entity::new_no_attrs(puid.clone(), HashSet::new()));
            parents.insert(puid);
        }
        let entity = Entity::new(uid.clone(), attributes(field, attrs)?, parents)
            .map_err(|e| Error::bad_input(field, e.to_string()))?;
        // The entity itself, with its attributes (replacing a parent of the same name).
        entities.insert(uid, entity);
    }
    let entities = Entities::from_entities(entities.into_values(), Some(schema))
        .map_err(|e| Error::bad_input("request", format!("entities: {e}")))?;
    Ok(Prepared { action: action.to_owned(), request, entities })
}

#[cfg(test)]
mod tests {
    use cedar_policy::{Authorizer, Decision};
    use serde_json::json;

    use super::*;

    fn published(cedar: &str, effect: Effect) -> Published {
        Published {
            policy_id: VersionId::new_v7(),
            name: "p".into(),
            version: 1,
            effect,
            cedar: cedar.into(),
            set_change: 1,
        }
    }

    fn principal(id: &str, roles: &[&str]) -> EntityRef {
        EntityRef {
            entity_type: "Principal".into(),
            id: id.into(),
            parents: roles
                .iter()
                .map(|r| crate::events::ParentRef { entity_type: "Role".into(), id: (*r).into() })
                .collect(),
        }
    }

    fn env(name: &str) -> EntityRef {
        EntityRef { entity_type: "Environment".into(), id: name.into(), parents: vec![] }
    }

    #[test]
    fn both_engines_name_a_satisfied_requires_approval_permit_and_its_effect() {
        let policies = [
            published("permit(principal, action == Action::\"deploy\", resource);", Effect::RequiresApproval),
            published(
                "permit(principal, action == Action::\"deploy\", resource) when { context has mfa };",
                Effect::Allow,
            ),
            published("forbid(principal, action == Action::\"write\", resource);", Effect::Deny),
        ];
        let deploy =
            prepare(&principal("u", &[]), &Value::Null, "deploy", &env("prod"), &Value::Null, &json!({})).unwrap();
        let delete =
            prepare(&principal("u", &[]), &Value::Null, "write", &env("prod"), &Value::Null, &json!({})).unwrap();
        for engine in [Engine::Indexed, Engine::Authorizer] {
            let set = CompiledSet::compile_for(&policies, 1, engine).unwrap();
            let e = set.evaluate(&deploy);
            assert_eq!(
                (e.effect, e.determining.clone()),
                (Effect::RequiresApproval, vec![policies[0].policy_id]),
                "{engine:?}"
            );
            let e = set.evaluate(&delete);
            assert_eq!((e.effect, e.determining), (Effect::Deny, vec![policies[2].policy_id]), "{engine:?}");
        }
    }

    #[test]
    fn the_schema_parses_and_declares_every_action() {
        let s = schema();
        for a in ACTIONS {
            let uid = EntityUid::from_str(&format!("Action::\"{a}\"")).unwrap();
            assert!(s.actions().any(|x| *x == uid), "{a}");
        }
    }

    #[test]
    fn permit_forbid_and_requires_approval_decide_with_their_reasons() {
        let allow =
            published("permit(principal in Role::\"dev\", action == Action::\"deploy\", resource);", Effect::Allow);
        let deny = published(
            "forbid(principal, action == Action::\"deploy\", resource) when { resource has name && resource.name == \"frozen\" };",
            Effect::Deny,
        );
        let gate = published(
            "permit(principal in Role::\"dev\", action == Action::\"deploy\", resource == Environment::\"prod\");",
            Effect::RequiresApproval,
        );
        let set = CompiledSet::compile(&[allow.clone(), deny.clone(), gate.clone()], 3).unwrap();
        let ctx = json!({});
        let eval = |p: &EntityRef, r: &EntityRef, attrs: Value| {
            set.evaluate(&prepare(p, &Value::Null, "deploy", r, &attrs, &ctx).unwrap())
        };
        let e = eval(&principal("alice", &["dev"]), &env("staging"), json!({}));
        assert_eq!((e.effect, e.determining.clone()), (Effect::Allow, vec![allow.policy_id]));
        let e = eval(&principal("alice", &["dev"]), &env("prod"), json!({}));
        assert_eq!(e.effect, Effect::RequiresApproval);
        assert!(e.determining.contains(&gate.policy_id) && e.determining.contains(&allow.policy_id));
        let e = eval(&principal("alice", &["dev"]), &env("frozen"), json!({ "name": "frozen" }));
        assert_eq!((e.effect, e.determining.clone()), (Effect::Deny, vec![deny.policy_id]));
        let e = eval(&principal("bob", &[]), &env("staging"), json!({}));
        assert_eq!((e.effect, e.determining.clone()), (Effect::Deny, vec![]), "default deny names no policy");
    }

    #[test]
    fn the_scope_index_decides_as_the_whole_set_does() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let roles = ["dev", "ops", "sre"];
        let projects = ["a", "b"];
        let mut policies = Vec::new();
        for _ in 0..300 {
            let principal = match rng.gen_range(0..5) {
                0 => "principal".to_owned(),
                1 => format!("principal == Principal::\"u{}\"", rng.gen_range(0..3)),
                2 => "principal is Agent".to_owned(),
                3 => format!("principal is Principal in Role::\"{}\"", roles[rng.gen_range(0..3)]),
                _ => format!("principal in Role::\"{}\"", roles[rng.gen_range(0..3)]),
            };
            let (a1, a2) = (ACTIONS[rng.gen_range(0..6)], ACTIONS[rng.gen_range(0..6)]);
            let action = match rng.gen_range(0..3) {
                0 => "action".to_owned(),
                1 => format!("action == Action::\"{a1}\""),
                _ => format!("action in [Action::\"{a1}\", Action::\"{a2}\"]"),
            };
            let project = projects[rng.gen_range(0..2)];
            let resource = match rng.gen_range(0..5) {
                0 => "resource".to_owned(),
                1 => format!("resource in Project::\"{project}\""),
                2 => "resource is Environment".to_owned(),
                3 => format!("resource is Environment in Project::\"{project}\""),
                _ => format!("resource == Environment::\"e{}\"", rng.gen_range(0..3)),
            };
            let condition = match rng.gen_range(0..3) {
                0 => " when { context has mfa && context.mfa }",
                1 => " when { context.changeSize > 3 }", // errs when the context lacks it
                _ => "",
            };
            let (keyword, effect) =
                if rng.gen_range(0..5) == 0 { ("forbid", Effect::Deny) } else { ("permit", Effect::Allow) };
            let text = format!("{keyword}({principal}, {action}, {resource}){condition};");
            if check(&text, effect).is_ok() {
                policies.push(published(&text, effect));
            }
        }
        assert!(policies.len() > 150, "most generated policies validate: {}", policies.len());
        let set = CompiledSet::compile(&policies, 1).unwrap();
        let plain_set = CompiledSet::compile_for(&policies, 1, Engine::Authorizer).unwrap();
        let whole_set = set.policy_set();
        for _ in 0..2000 {
            let principal = if rng.gen_range(0..4) == 0 {
                EntityRef { entity_type: "Agent".into(), id: "bot".into(), parents: vec![] }
            } else {
                let mut p = principal(&format!("u{}", rng.gen_range(0..3)), &[]);
                for r in roles {
                    if rng.gen_bool(0.4) {
                        p.parents.push(crate::events::ParentRef { entity_type: "Role".into(), id: r.into() });
                    }
                }
                p
            };
            let action = ACTIONS[rng.gen_range(0..6)];
            let resource = EntityRef {
                entity_type: if action == "run" { "Workflow".into() } else { "Environment".into() },
                id: format!("e{}", rng.gen_range(0..3)),
                parents: vec![crate::events::ParentRef {
                    entity_type: "Project".into(),
                    id: projects[rng.gen_range(0..2)].into(),
                }],
            };
            let context = match rng.gen_range(0..3) {
                0 => json!({}),
                1 => json!({ "mfa": rng.gen_bool(0.5) }),
                _ => json!({ "changeSize": rng.gen_range(0..6), "mfa": true }),
            };
            let Ok(req) = prepare(&principal, &Value::Null, action, &resource, &Value::Null, &context) else {
                continue;
            };
            let whole = Authorizer::new().is_authorized(&req.request, &whole_set, &req.entities);
            let ours = set.evaluate(&req);
            // The plain engine (POLICY_ENGINE=authorizer) decides exactly as the indexed one.
            let mut plain = plain_set.evaluate(&req);
            let mut indexed = ours.clone();
            plain.errors.sort();
            indexed.errors.sort();
            assert_eq!(plain, indexed, "{action} {principal:?} {resource:?} {context}");
            let mut reasons: Vec<String> = whole.diagnostics().reason().map(|r| r.to_string()).collect();
            reasons.sort();
            let mine: Vec<String> = ours.determining.iter().map(|u| u.to_string()).collect();
            assert_eq!(reasons, mine, "{action} {principal:?} {resource:?} {context}");
            assert_eq!(whole.decision() == Decision::Allow, ours.effect != Effect::Deny);
            let mut errors: Vec<String> = whole.diagnostics().errors().map(|e| e.to_string()).collect();
            errors.sort();
            let mut mine = ours.errors.clone();
            mine.sort();
            assert_eq!(errors, mine, "the same errors");
        }
    }

    #[test]
    fn invalid_policies_are_refused_with_a_location() {
        let r = check(
            "permit(principal, action == Action::\"deploy\", resource)\n  when { resource.nope == 1 };",
            Effect::Allow,
        )
        .unwrap_err();
        let l = r.location.clone().expect("a location");
        assert_eq!(l.line, 2, "{r:?}");
        let r = check("permit(principal, action, resource) when { 1 + };", Effect::Allow).unwrap_err();
        assert!(r.location.is_some(), "{r:?}");
        let r = check("permit(principal, action == Action::\"fly\", resource);", Effect::Allow).unwrap_err();
        assert!(r.message.contains("fly"), "{r:?}");
        assert!(check("forbid(principal, action, resource);", Effect::Allow).is_err());
        assert!(check("permit(principal, action, resource);", Effect::Deny).is_err());
        assert!(check("@effect(\"other\") permit(principal, action, resource);", Effect::Allow).is_err());
        // Finding (Low): `@effect(` in a comment made the annotation look present, and the check reached
        // `unreachable!()` while its caller held a row lock.
        let commented = "// no @effect(\"x\") here\npermit(principal, action == Action::\"read\", resource);";
        let p = check(commented, Effect::RequiresApproval).expect("annotated as Cedar reads it");
        assert_eq!(p.annotation(EFFECT_ANNOTATION), Some(REQUIRES_APPROVAL));
        assert!(
            check("permit(principal, action, resource); permit(principal, action, resource);", Effect::Allow).is_err()
        );
        assert!(check("permit(principal == ?principal, action, resource);", Effect::Allow).is_err());
    }

    #[test]
    fn bad_requests_are_refused() {
        let p = principal("a", &[]);
        assert!(prepare(&p, &Value::Null, "fly", &env("x"), &Value::Null, &json!({})).is_err());
        let model = EntityRef { entity_type: "Model".into(), id: "m".into(), parents: vec![] };
        assert!(
            prepare(&p, &Value::Null, "deploy", &model, &Value::Null, &json!({})).is_err(),
            "deploy does not apply to models"
        );
        assert!(prepare(&p, &Value::Null, "deploy", &env("x"), &Value::Null, &json!({ "costCents": "x" })).is_err());
        assert!(prepare(&p, &Value::Null, "deploy", &env("x"), &json!({ "name": 3 }), &json!({})).is_err());
        assert!(prepare(&p, &Value::Null, "deploy", &env("x"), &Value::Null, &json!({ "unknown": 1 })).is_err());
    }

    #[test]
    fn the_hash_names_the_set() {
        let a = published("permit(principal, action, resource);", Effect::Allow);
        let b = published("forbid(principal, action, resource);", Effect::Deny);
        let ab = CompiledSet::compile(&[a.clone(), b.clone()], 2).unwrap();
        let ba = CompiledSet::compile(&[b, a.clone()], 2).unwrap();
        assert_eq!(ab.hash, ba.hash, "order does not matter");
        assert_ne!(ab.hash, CompiledSet::compile(&[a], 1).unwrap().hash);
    }
}
