//! Workflow definitions: versioned, published whole, immutable once published (API and trigger; a change
//! is a new version). A tenant publishes its own; the platform's come from the registry shipped in the
//! repository ([`registry`]), which every tenant reads. [`spec`] holds the steps and their checks.
//!
//! Publishing checks the steps ([`spec::Spec::check`]) and that every skill they name is one catalogue
//! published, for the tenant or the platform, and has not deprecated. Publishing the same steps as the
//! latest version again changes nothing and answers that version.

pub mod consumer;
pub mod registry;
pub mod schema;
pub mod spec;
pub mod store;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId, Work};
use sha2::{Digest, Sha256};

use crate::events;
use spec::{Spec, Step, StepKind};

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
    #[graphql(name = "WorkflowDefinitionStatus")]
    pub enum DefinitionStatus {
        /// Starts instances.
        Published = "Published",
        /// Starts no new instances; running ones go on. Final.
        Deprecated = "Deprecated",
    }
}

/// A workflow definition version: its steps, immutable once published.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "WorkflowDefinition", complex)]
pub struct Definition {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    /// The definition's key, unique within its owner (the tenant, or the platform).
    pub key: String,
    /// 1, 2, … in order of publication.
    pub version: i32,
    pub name: String,
    pub description: String,
    #[graphql(skip)]
    pub spec: Spec,
    /// `sha256:` and the hex digest of the steps' canonical JSON.
    pub content_hash: String,
    pub status: DefinitionStatus,
    pub published_at: DateTime<Utc>,
    /// Who published it (a token's subject; `platform registry` for the platform's).
    pub published_by: Option<String>,
    pub deprecated_at: Option<DateTime<Utc>>,
}

impl Definition {
    pub fn is_platform(&self) -> bool {
        self.tenant_id.is_platform()
    }
}

/// A definition version to publish.
#[derive(Clone, Debug)]
pub struct NewDefinition {
    pub key: String,
    pub name: String,
    pub description: String,
    pub spec: Spec,
}

/// One step, as the API shows it: the fields of its type set, the others null.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "WorkflowStep")]
pub struct StepView {
    pub id: String,
    #[graphql(name = "type")]
    pub kind: spec::StepType,
    pub next: Option<String>,
    pub on_failure: Option<String>,
    pub skill: Option<String>,
    pub skill_version: Option<String>,
    pub pool: Option<String>,
    pub approver_roles: Option<Vec<String>>,
    pub quorum: Option<u32>,
    pub approval_ttl_hours: Option<u32>,
    pub wait_seconds: Option<u32>,
    pub branches: Option<Vec<String>>,
    pub join: Option<String>,
    pub retry: Option<spec::Retry>,
    pub timeout_seconds: Option<u32>,
    pub compensation: Option<spec::Compensation>,
}

impl From<&Step> for StepView {
    fn from(s: &Step) -> Self {
        let mut v = StepView {
            id: s.id.clone(),
            kind: spec::StepType::of(&s.kind),
            next: s.next.clone(),
            on_failure: s.on_failure.clone(),
            skill: None,
            skill_version: None,
            pool: None,
            approver_roles: None,
            quorum: None,
            approval_ttl_hours: None,
            wait_seconds: None,
            branches: None,
            join: None,
            retry: s.retry,
            timeout_seconds: s.timeout_seconds,
            compensation: s.compensation.clone(),
        };
        match &s.kind {
            StepKind::AgentTask { skill, skill_version, pool } => {
                (v.skill, v.skill_version, v.pool) = (Some(skill.clone()), skill_version.clone(), Some(pool.clone()));
            }
            StepKind::Approval { approver_roles, quorum, approval_ttl_hours } => {
                (v.approver_roles, v.quorum, v.approval_ttl_hours) =
                    (Some(approver_roles.clone()), Some(*quorum), Some(*approval_ttl_hours));
            }
            StepKind::Wait { wait_seconds } => v.wait_seconds = Some(*wait_seconds),
            StepKind::Parallel { branches, join } => {
                (v.branches, v.join) = (Some(branches.clone()), Some(join.clone()))
            }
            StepKind::Join {} => {}
        }
        v
    }
}

/// `sha256:` and the hex digest of the steps' canonical JSON (object keys sorted, no spaces): the same
/// steps hash the same however they were written.
pub fn content_hash(spec: &Spec) -> String {
    let value = serde_json::to_value(spec).expect("a spec serializes");
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A definition key: 3–63 lower-case letters, digits and hyphens, starting with a letter.
pub fn key(raw: &str) -> Result<String> {
    let k = raw.trim();
    let ok = (3..=63).contains(&k.len())
        && k.starts_with(|c: char| c.is_ascii_lowercase())
        && !k.ends_with('-')
        && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(Error::bad_input(
            "key",
            "a key is 3–63 lower-case letters, digits and hyphens, starting with a letter",
        ));
    }
    Ok(k.to_owned())
}

/// Publishes `new` as the tenant's next version of its key (the latest version itself when it is published
/// with the same steps, name and description), after checking its steps and that every skill they name is known to the tenant.
pub async fn publish(work: &mut Work, tenant: &TenantId, new: NewDefinition, by: Option<String>) -> Result<Definition> {
    new.spec.check()?;
    for (skill, req, step) in new.spec.skills() {
        let versions = store::skill_versions(work, tenant, &skill).await?;
        if !skill_matches(&versions, req.as_deref()) {
            let wanted = req.map(|r| format!(" in `{r}`")).unwrap_or_default();
            return Err(Error::bad_input(
                "steps",
                format!("step `{step}`: no published skill `{skill}`{wanted} (catalogue publishes skills)"),
            )
            .with("step", step));
        }
    }
    // One publisher of a key at a time, so two of them cannot both take the next version.
    kernel::db::lock(work, &format!("workflow.definition:{tenant}:{}", new.key), kernel::db::Lock::Exclusive).await?;
    let hash = content_hash(&new.spec);
    let latest = store::latest(work, tenant, &new.key).await?;
    let same = |d: &&Definition| {
        d.status == DefinitionStatus::Published
            && d.content_hash == hash
            && d.name == new.name
            && d.description == new.description
    };
    if let Some(latest) = latest.as_ref().filter(same) {
        return Ok(latest.clone());
    }
    let version = latest.map_or(1, |d| d.version + 1);
    let d = store::insert(work, tenant, &new, version, &hash, by.as_deref()).await?;
    work.emit(
        tenant,
        &events::WorkflowDefinitionPublished {
            key: d.key.clone(),
            version: d.version,
            name: d.name.clone(),
            content_hash: d.content_hash.clone(),
            platform: d.is_platform(),
        },
    )
    .await?;
    Ok(d)
}

/// Whether a published, not deprecated, skill version (of `versions`) satisfies `req` (any when `None`).
fn skill_matches(versions: &[String], req: Option<&str>) -> bool {
    let Some(req) = req else { return !versions.is_empty() };
    let Some(req) = spec::semver_req(req) else { return false };
    versions.iter().filter_map(|v| semver::Version::parse(v).ok()).any(|v| req.matches(&v))
}

/// Deprecates a published version: it starts no new instances. `CONFLICT` if it already is.
pub async fn deprecate(work: &mut Work, tenant: &TenantId, key: &str, version: i32) -> Result<Definition> {
    let Some(d) = store::get(work, tenant, key, version).await? else {
        return Err(Error::not_found(format!("no workflow definition `{key}` version {version}")));
    };
    if d.tenant_id != *tenant {
        return Err(Error::forbidden("platform definitions change only through the platform registry"));
    }
    if d.status == DefinitionStatus::Deprecated {
        return Err(Error::conflict(format!("workflow definition `{key}` version {version} is deprecated already")));
    }
    let d = store::deprecate(work, tenant, key, version).await?;
    work.emit(tenant, &events::WorkflowDefinitionDeprecated { key: d.key.clone(), version, platform: false }).await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_of_the_steps_not_of_how_they_were_written() {
        let a: Spec =
            serde_json::from_str(r#"{"start":"a","steps":[{"id":"a","type":"Wait","waitSeconds":5}]}"#).unwrap();
        let b: Spec =
            serde_json::from_str(r#"{ "steps": [ { "waitSeconds": 5, "type": "Wait", "id": "a" } ], "start": "a" }"#)
                .unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert!(content_hash(&a).starts_with("sha256:") && content_hash(&a).len() == 71);
        let c: Spec =
            serde_json::from_str(r#"{"start":"a","steps":[{"id":"a","type":"Wait","waitSeconds":6}]}"#).unwrap();
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn skills_match_their_requirement() {
        let v = vec!["1.2.0".to_owned(), "2.0.1".to_owned()];
        assert!(skill_matches(&v, None));
        assert!(skill_matches(&v, Some("^2")));
        assert!(!skill_matches(&v, Some("^3")));
        assert!(!skill_matches(&[], None));
    }
}
