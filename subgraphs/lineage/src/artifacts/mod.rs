//! Artifacts and their versions.
//!
//! An artifact ([`Artifact`]) is what a producer makes again and again — a document, a build, a model —
//! under an id of its choosing ([`ArtifactId`]), in a catalogue project and module when it says so, with a
//! [`Classification`]. Each version ([`ArtifactVersion`]) is one content, by semver:
//!
//! * recorded with its `contentHash` (`sha256:`) and who made it (agent, skill, workflow task, trace,
//!   blueprint); recording the same version with the same content again changes nothing, with other content
//!   is `CONFLICT` (a version's content is declared when it is recorded, a draft's too). Identical content
//!   is stored once: a version whose content an earlier version of the artifact has points at that
//!   version's storage (`deduplicated`);
//! * moved along Draft → Generated → Validated | Rejected → Published → Superseded ([`VersionStatus::next`]);
//!   publishing a version supersedes the one published before it in the same transaction, so an artifact
//!   has at most one published version (its `latest`). Published, superseded and rejected versions never
//!   change again (the API refuses with `CONFLICT`, a trigger refuses every role);
//! * found exactly, as the newest first, as `latest`, or by a semver range among the released versions
//!   (published or superseded): the highest that matches.

pub mod consumer;
pub mod live;
pub mod schema;
pub mod store;

use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId, Work};

use crate::events::*;
use crate::graph::{EdgeKind, NewEdge, NodeRef};
use crate::ids::{ArtifactId, ModuleId, ProjectId};

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[graphql(name = "ArtifactClassification")]
    #[serde(rename_all = "lowercase")]
    pub enum Classification {
        Public = "public",
        Internal = "internal",
        /// For callers with `lineage:read-restricted` (bodies and sensitive fields are to be redacted for
        /// others once lineage serves bodies; today every field here is metadata).
        Confidential = "confidential",
        Restricted = "restricted",
    }
}

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[graphql(name = "ArtifactVersionStatus")]
    pub enum VersionStatus {
        /// Recorded before it was produced (its content hash declared up front).
        Draft = "Draft",
        /// Produced (by an agent task, a build).
        Generated = "Generated",
        Validated = "Validated",
        /// Refused by validation (final).
        Rejected = "Rejected",
        /// The artifact's current version (at most one).
        Published = "Published",
        /// Published once, until a later version was (final).
        Superseded = "Superseded",
    }
}

impl VersionStatus {
    /// Where a version in this status may go by a caller's request (Superseded only follows the
    /// publication of another version).
    pub fn next(self) -> &'static [VersionStatus] {
        use VersionStatus::*;
        match self {
            Draft => &[Generated],
            Generated => &[Validated, Rejected],
            Validated => &[Published, Rejected],
            Published | Superseded | Rejected => &[],
        }
    }

    /// Whether the version was released (a semver range resolves among these).
    pub fn released(self) -> bool {
        matches!(self, VersionStatus::Published | VersionStatus::Superseded)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub tenant_id: TenantId,
    pub artifact_id: ArtifactId,
    pub artifact_type: String,
    pub name: String,
    pub project_id: Option<ProjectId>,
    pub module_id: Option<ModuleId>,
    pub classification: Classification,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactVersion {
    pub tenant_id: TenantId,
    pub artifact_id: ArtifactId,
    pub version: String,
    pub content_hash: String,
    pub status: VersionStatus,
    pub produced_by_agent_id: Option<String>,
    pub produced_by_skill_id: Option<String>,
    pub produced_by_task_id: Option<uuid::Uuid>,
    pub trace_id: Option<String>,
    pub source_blueprint_id: Option<uuid::Uuid>,
    pub storage_ref: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// What the producer said of it beyond the metadata (a sensitive field: `crate::redaction`).
    pub attributes: Option<serde_json::Value>,
}

impl ArtifactVersion {
    /// Its semver version (stored versions always parse).
    pub fn semver(&self) -> Option<semver::Version> {
        semver::Version::parse(&self.version).ok()
    }
}

/// A version as given: semver, at most 100 characters, numbers that fit PostgreSQL's bigint.
pub fn version(field: &str, raw: &str) -> Result<semver::Version> {
    let raw = raw.trim();
    let v = (raw.len() <= 100).then(|| semver::Version::parse(raw).ok()).flatten().ok_or_else(|| {
        Error::bad_input(field, format!("`{}` is not a semver version (e.g. 1.4.0)", kernel::error::clip(raw, 80)))
    })?;
    if [v.major, v.minor, v.patch].iter().any(|n| *n > i64::MAX as u64) {
        return Err(Error::bad_input(field, "a version's numbers fit in 63 bits"));
    }
    Ok(v)
}

/// A semver range as given (`^1.2`, `>=1.0, <2`), at most 200 characters.
pub fn range(field: &str, raw: &str) -> Result<semver::VersionReq> {
    let raw = raw.trim();
    (raw.len() <= 200).then(|| semver::VersionReq::parse(raw).ok()).flatten().ok_or_else(|| {
        Error::bad_input(field, format!("`{}` is not a semver range (e.g. ^1.2)", kernel::error::clip(raw, 80)))
    })
}

/// Whether `raw` is an artifact type: 1–63 lower-case letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit.
pub fn is_artifact_type(raw: &str) -> bool {
    (1..=63).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// A content hash as given: `sha256:` and 64 lower-case hex digits.
pub fn content_hash(field: &str, raw: &str) -> Result<String> {
    let hex = raw.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::bad_input(field, "a content hash is `sha256:` and 64 lower-case hex digits"));
    }
    Ok(raw.to_owned())
}

/// Where the body of `artifact`'s `version` is stored (the seed's layout; `_` when it has no project).
pub fn storage_ref(tenant: &TenantId, project: Option<ProjectId>, artifact: &ArtifactId, version: &str) -> String {
    let project = project.map_or_else(|| "_".to_owned(), |p| p.to_string());
    format!("blob://artifacts/{tenant}/{project}/{artifact}/{version}")
}

/// An artifact to register.
pub struct NewArtifact {
    pub artifact_id: ArtifactId,
    pub artifact_type: String,
    pub name: String,
    pub project_id: Option<ProjectId>,
    pub module_id: Option<ModuleId>,
    pub classification: Classification,
}

/// Registers `new`; the same registration again changes nothing, a different one is `CONFLICT`.
pub async fn register(work: &mut Work, tenant: &TenantId, new: NewArtifact) -> Result<Artifact> {
    if let Some(a) = store::insert(work, tenant, &new).await? {
        let e = ArtifactRegistered {
            artifact_id: a.artifact_id.clone(),
            artifact_type: a.artifact_type.clone(),
            name: a.name.clone(),
            project_id: a.project_id,
            module_id: a.module_id,
            classification: a.classification,
        };
        work.emit(tenant, &e).await?;
        return Ok(a);
    }
    let a = store::get(work, tenant, &new.artifact_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("artifact {} neither inserted nor found", new.artifact_id)))?;
    let same = (&a.artifact_type, &a.name, a.project_id, a.module_id, a.classification)
        == (&new.artifact_type, &new.name, new.project_id, new.module_id, new.classification);
    if !same {
        return Err(Error::conflict(format!(
            "artifact `{}` is registered already, as {} `{}`",
            a.artifact_id, a.artifact_type, a.name
        )));
    }
    Ok(a)
}

/// Sets the artifact's classification.
pub async fn classify(
    work: &mut Work,
    tenant: &TenantId,
    id: &ArtifactId,
    classification: Classification,
) -> Result<Artifact> {
    let a = store::lock(work, tenant, id).await?.ok_or_else(|| not_found(id))?;
    if a.classification == classification {
        return Ok(a);
    }
    let updated = store::classify(work, tenant, id, classification).await?;
    let e = ArtifactClassified {
        artifact_id: id.clone(),
        project_id: a.project_id,
        classification,
        previous: a.classification,
    };
    work.emit(tenant, &e).await?;
    Ok(updated)
}

pub fn not_found(id: &ArtifactId) -> Error {
    Error::not_found(format!("no artifact `{id}`"))
}

/// A version to record.
pub struct NewVersion {
    pub artifact_id: ArtifactId,
    pub version: semver::Version,
    pub content_hash: String,
    pub status: VersionStatus,
    pub produced_by_agent_id: Option<String>,
    pub produced_by_skill_id: Option<String>,
    pub produced_by_task_id: Option<uuid::Uuid>,
    pub trace_id: Option<String>,
    pub source_blueprint_id: Option<uuid::Uuid>,
    pub attributes: Option<serde_json::Value>,
    /// The versions it was derived from (the tenant's, recorded already; at most [`MAX_DERIVED_FROM`]).
    pub derived_from: Vec<(ArtifactId, semver::Version)>,
}

/// Most input versions one version names.
pub const MAX_DERIVED_FROM: usize = 20;

/// Records `new` (Draft or Generated): the same version with the same content again changes nothing;
/// with other content it is `CONFLICT`.
pub async fn record(work: &mut Work, tenant: &TenantId, new: NewVersion) -> Result<ArtifactVersion> {
    if !matches!(new.status, VersionStatus::Draft | VersionStatus::Generated) {
        return Err(Error::bad_input("status", "a version is recorded as DRAFT or GENERATED"));
    }
    let artifact = store::lock(work, tenant, &new.artifact_id).await?.ok_or_else(|| not_found(&new.artifact_id))?;
    let version = new.version.to_string();
    if let Some(v) = store::version(work, tenant, &new.artifact_id, &version).await? {
        if v.content_hash != new.content_hash {
            return Err(Error::conflict(format!(
                "version {version} of artifact `{}` holds other content ({})",
                new.artifact_id, v.content_hash
            ))
            .with("contentHash", v.content_hash));
        }
        return Ok(v);
    }
    // A number retention deleted is not used again: its storage path may still hold, or be about to
    // lose, the old body.
    if let Some(expired_at) = store::expired(work, tenant, &new.artifact_id, &version).await? {
        return Err(Error::conflict(format!(
            "version {version} of artifact `{}` was deleted by retention on {}; record a new version",
            new.artifact_id,
            expired_at.format("%Y-%m-%d")
        )));
    }
    // Identical content is stored once: the body an earlier version of the artifact has. (Only the same
    // artifact's: another's storage reference would tell of an artifact its readers may not see.)
    let earlier = store::storage_of(work, tenant, &new.artifact_id, &new.content_hash).await?;
    let deduplicated = earlier.is_some();
    let storage = earlier.unwrap_or_else(|| storage_ref(tenant, artifact.project_id, &new.artifact_id, &version));
    let mut derived = Vec::with_capacity(new.derived_from.len());
    for (input, input_version) in new.derived_from.iter().take(MAX_DERIVED_FROM) {
        let input_version = input_version.to_string();
        if store::version(work, tenant, input, &input_version).await?.is_none() {
            return Err(Error::bad_input(
                "derivedFrom",
                format!("artifact `{input}` has no version {input_version} to derive from"),
            ));
        }
        derived.push(NodeRef::artifact(input, &input_version));
    }
    let v = store::insert_version(work, tenant, &new, &storage).await?;
    // Where it came from, in the lineage graph.
    let this = NodeRef::artifact(&v.artifact_id, &v.version);
    let mut edges: Vec<NewEdge> =
        derived.into_iter().map(|from| NewEdge { from, to: this.clone(), kind: EdgeKind::Derived }).collect();
    if let Some(task) = v.produced_by_task_id {
        edges.push(NewEdge { from: NodeRef::task(task), to: this.clone(), kind: EdgeKind::Produced });
    }
    if let Some(blueprint) = v.source_blueprint_id {
        edges.push(NewEdge { from: NodeRef::blueprint(blueprint), to: this.clone(), kind: EdgeKind::Blueprint });
    }
    let e = ArtifactVersionRecorded {
        artifact_id: v.artifact_id.clone(),
        project_id: artifact.project_id,
        version: v.version.clone(),
        content_hash: v.content_hash.clone(),
        status: v.status,
        produced_by_agent_id: v.produced_by_agent_id.clone(),
        produced_by_skill_id: v.produced_by_skill_id.clone(),
        produced_by_task_id: v.produced_by_task_id,
        trace_id: v.trace_id.clone(),
        source_blueprint_id: v.source_blueprint_id,
        storage_ref: v.storage_ref.clone(),
        deduplicated,
        attributes: crate::redaction::for_event(artifact.classification, v.attributes.clone()),
        redacted: crate::redaction::is_sensitive(artifact.classification),
    };
    work.emit(tenant, &e).await?;
    crate::graph::record(work, tenant, &edges).await?;
    Ok(v)
}

/// Moves a version to `to` ([`VersionStatus::next`]); publishing supersedes the published one. `CONFLICT`
/// naming both statuses for any other move.
pub async fn transition(
    work: &mut Work,
    tenant: &TenantId,
    id: &ArtifactId,
    version: &semver::Version,
    to: VersionStatus,
) -> Result<ArtifactVersion> {
    let artifact = store::lock(work, tenant, id).await?.ok_or_else(|| not_found(id))?;
    let version = version.to_string();
    let v = store::version(work, tenant, id, &version)
        .await?
        .ok_or_else(|| Error::not_found(format!("artifact `{id}` has no version {version}")))?;
    if v.status == to {
        return Ok(v);
    }
    if !v.status.next().contains(&to) {
        let allowed: Vec<&str> = v.status.next().iter().map(|s| s.as_str()).collect();
        let then = if allowed.is_empty() { "nothing (it is final)".to_owned() } else { allowed.join(" or ") };
        return Err(Error::conflict(format!(
            "version {version} of artifact `{id}` is {} and can move to {then}, not {}",
            v.status.as_str(),
            to.as_str()
        ))
        .with("status", v.status.as_str()));
    }
    let mut superseded = None;
    if to == VersionStatus::Published {
        if let Some(old) = store::published(work, tenant, id).await? {
            store::set_status(work, tenant, id, &old.version, VersionStatus::Superseded).await?;
            superseded = Some(old.version);
        }
    }
    let updated = store::set_status(work, tenant, id, &version, to).await?;
    let e = ArtifactVersionStatusChanged {
        artifact_id: id.clone(),
        project_id: artifact.project_id,
        version: version.clone(),
        from: v.status,
        to,
        superseded: superseded.clone(),
    };
    work.emit(tenant, &e).await?;
    // Publication told on its own too, for consumers that care only for it.
    if to == VersionStatus::Published {
        if let Some(old) = &superseded {
            let e = ArtifactSuperseded {
                artifact_id: id.clone(),
                project_id: artifact.project_id,
                version: old.clone(),
                by: version.clone(),
            };
            work.emit(tenant, &e).await?;
        }
        let e = ArtifactPublished {
            artifact_id: id.clone(),
            project_id: artifact.project_id,
            version,
            content_hash: updated.content_hash.clone(),
            superseded,
        };
        work.emit(tenant, &e).await?;
    }
    Ok(updated)
}

/// The highest released (published or superseded) version of the artifact that `req` matches.
pub async fn resolve(
    tx: &mut kernel::db::Tx,
    tenant: &TenantId,
    id: &ArtifactId,
    req: &semver::VersionReq,
) -> Result<Option<ArtifactVersion>> {
    // Newest first by (major, minor, patch, release); the exact semver order among pre-releases of one
    // number is settled here, so a page is read whole before the best match so far is taken.
    let mut best: Option<(semver::Version, ArtifactVersion)> = None;
    let mut after: Option<store::Precedence> = None;
    for _ in 0..RESOLVE_PAGES {
        let page = store::released_page(tx, tenant, id, after.as_ref(), RESOLVE_PAGE).await?;
        let full = page.len() as i64 == RESOLVE_PAGE;
        for v in page {
            let (Some(sv), Some(precedence)) = (v.semver(), store::Precedence::of(&v)) else { continue };
            if let Some((b, _)) = &best {
                if (sv.major, sv.minor, sv.patch) < (b.major, b.minor, b.patch) {
                    return Ok(best.map(|(_, v)| v));
                }
            }
            if req.matches(&sv) && best.as_ref().is_none_or(|(b, _)| sv > *b) {
                best = Some((sv, v));
            }
            after = Some(precedence);
        }
        if !full {
            return Ok(best.map(|(_, v)| v));
        }
    }
    if best.is_some() {
        return Ok(best.map(|(_, v)| v));
    }
    Err(Error::bad_input(
        "range",
        format!(
            "no match among the newest {} released versions of artifact `{id}`; narrow the range",
            RESOLVE_PAGE * RESOLVE_PAGES
        ),
    ))
}

/// Versions read per page when a range is resolved, and most pages read.
const RESOLVE_PAGE: i64 = 500;
const RESOLVE_PAGES: i64 = 20;
