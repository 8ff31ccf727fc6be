//! Policy definitions written in Cedar. A definition has a name, a version, an effect (`Allow` and
//! `RequiresApproval` are `permit` statements, the latter annotated `@effect("requires_approval")`;
//! `Deny` is a `forbid`), and a status Draft → Published → Deprecated; name+version is unique per tenant.
//! Publishing checks the text against the control plane's Cedar schema (`cedar.rs`) and refuses it with the
//! engine's message and location. A published version is immutable (API and trigger): a change is a new
//! version. The platform's policies (filed under the tenant `platform`, written by operators) are part of
//! every tenant's set.

pub mod cache;
pub mod cedar;
pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId, Work};

use crate::events;
use crate::ids::PolicyId;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[graphql(name = "PolicyEffect")]
    pub enum Effect {
        Allow = "Allow",
        Deny = "Deny",
        /// A `permit` whose permission needs an approval first (annotated `@effect("requires_approval")`).
        RequiresApproval = "RequiresApproval",
    }
}

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PolicyStatus {
        Draft = "Draft",
        Published = "Published",
        Deprecated = "Deprecated",
    }
}

/// A policy definition version.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Policy {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub policy_id: PolicyId,
    /// Unique with `version` per tenant: 1–100 lower-case letters, digits, `.`, `_` and `-`.
    pub name: String,
    pub version: i32,
    pub effect: Effect,
    pub description: String,
    /// The Cedar policy statement.
    pub cedar: String,
    pub status: PolicyStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub deprecated_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Policy {
    async fn id(&self) -> ID {
        ID(self.policy_id.to_string())
    }

    /// Whether this is a platform policy (part of every tenant's set).
    async fn platform(&self) -> bool {
        self.tenant_id.is_platform()
    }
}

/// A validated policy name.
pub fn name(field: &str, raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=100).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input(
            field,
            "a name is 1–100 lower-case letters, digits, `.`, `_` and `-`, starting with a letter",
        ))
    }
}

pub const MAX_CEDAR_BYTES: usize = 65_536;

/// A draft's text: not empty, at most [`MAX_CEDAR_BYTES`]. (The engine checks it when it is published;
/// a draft may be unfinished.)
pub fn cedar_text(raw: &str) -> Result<String> {
    if raw.trim().is_empty() {
        return Err(Error::bad_input("cedar", "cedar must not be empty"));
    }
    if raw.len() > MAX_CEDAR_BYTES {
        return Err(Error::bad_input("cedar", format!("cedar must be at most {MAX_CEDAR_BYTES} bytes")));
    }
    Ok(raw.to_owned())
}

pub fn description_text(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.chars().count() > 4000 || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::bad_input(
            "description",
            "description is at most 4000 characters, without control characters",
        ));
    }
    Ok(s.to_owned())
}

/// Creates the next version of `name` as a draft (version 1 for a new name). Emits `PolicyDrafted`.
pub async fn draft(
    work: &mut Work,
    owner: &TenantId,
    name: &str,
    effect: Effect,
    description: &str,
    cedar: &str,
    by: &str,
) -> Result<Policy> {
    let p = store::insert_next(work, owner, PolicyId::new_v7(), name, effect, description, cedar, by).await?;
    let event = events::PolicyDrafted {
        policy_id: p.policy_id,
        name: p.name.clone(),
        version: p.version,
        effect,
        platform: owner.is_platform(),
    };
    work.emit(owner, &event).await?;
    Ok(p)
}

/// Locks a policy of `owner` for a change: `NOT_FOUND` also for another tenant's.
pub async fn lock(work: &mut Work, owner: &TenantId, id: PolicyId) -> Result<Policy> {
    store::lock(work, owner, id).await?.ok_or_else(|| Error::not_found(format!("no policy `{id}`")))
}

/// `CONFLICT` unless the policy is a draft.
pub fn ensure_draft(p: &Policy) -> Result<()> {
    if p.status == PolicyStatus::Draft {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "policy {}@{} is {} and immutable; draft a new version instead",
            p.name,
            p.version,
            p.status.as_str()
        )))
    }
}

/// Publishes a draft after the engine accepts it; emits `PolicyPublished`. The engine's refusal is
/// `BAD_USER_INPUT` with its location in `extensions.location`.
pub async fn publish(work: &mut Work, owner: &TenantId, id: PolicyId) -> Result<Policy> {
    let p = lock(work, owner, id).await?;
    ensure_draft(&p)?;
    cedar::check(&p.cedar, p.effect).map_err(cedar::Refusal::into_error)?;
    let p = store::set_status(work, owner, id, PolicyStatus::Published).await?;
    let set_version = store::set_version(work, owner).await?;
    let event = events::PolicyPublished {
        policy_id: p.policy_id,
        name: p.name.clone(),
        version: p.version,
        effect: p.effect,
        cedar: p.cedar.clone(),
        policy_set_version: set_version,
        platform: owner.is_platform(),
    };
    work.emit(owner, &event).await?;
    Ok(p)
}

/// Deprecates a published version (final); emits `PolicyDeprecated`.
pub async fn deprecate(work: &mut Work, owner: &TenantId, id: PolicyId) -> Result<Policy> {
    let p = lock(work, owner, id).await?;
    if p.status != PolicyStatus::Published {
        return Err(Error::conflict(format!(
            "policy {}@{} is {}; only a published version can be deprecated",
            p.name,
            p.version,
            p.status.as_str()
        )));
    }
    let p = store::set_status(work, owner, id, PolicyStatus::Deprecated).await?;
    let set_version = store::set_version(work, owner).await?;
    let event = events::PolicyDeprecated {
        policy_id: p.policy_id,
        name: p.name.clone(),
        version: p.version,
        policy_set_version: set_version,
        platform: owner.is_platform(),
    };
    work.emit(owner, &event).await?;
    Ok(p)
}
