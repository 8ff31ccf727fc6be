//! Everything lineage publishes (routing key `lineage.<eventType>`). The README's events table documents
//! each payload; a breaking change makes a new type (`…V2`).

use crate::artifacts::{Classification, VersionStatus};
use crate::graph::EdgeKind;
use crate::ids::{ArtifactId, ModuleId, ProjectId};

/// The routing-key prefix of everything lineage publishes.
pub const DOMAIN: &str = "lineage";

kernel::events! {
    domain = "lineage";

    /// An artifact was registered (by its producer, or from an agent task's outputs).
    #[project = project_id]
    #[module = module_id]
    ArtifactRegistered {
        artifact_id: ArtifactId, artifact_type: String, name: String, project_id: Option<ProjectId>,
        module_id: Option<ModuleId>, classification: Classification,
    }
    /// The artifact's classification changed (who may read its bodies and sensitive fields).
    #[project = project_id]
    ArtifactClassified {
        artifact_id: ArtifactId, project_id: Option<ProjectId>, classification: Classification,
        previous: Classification,
    }
    /// A version was recorded: its content (`contentHash`) and where its body is stored (`storageRef`;
    /// `deduplicated`: the storage of an earlier version with the same content). Its `attributes` are
    /// left out (`null`, `redacted: true`) when the artifact is confidential or restricted.
    #[project = project_id]
    ArtifactVersionRecorded {
        artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, content_hash: String,
        status: VersionStatus, produced_by_agent_id: Option<String>, produced_by_skill_id: Option<String>,
        produced_by_task_id: Option<uuid::Uuid>, trace_id: Option<String>, source_blueprint_id: Option<uuid::Uuid>,
        storage_ref: String, deduplicated: bool,
        #[serde(default)] attributes: Option<serde_json::Value>, #[serde(default)] redacted: bool,
    }
    /// A version moved on (`from` → `to`); publishing one supersedes the version published before it
    /// (`superseded`), in the same transaction.
    #[project = project_id]
    ArtifactVersionStatusChanged {
        artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, from: VersionStatus,
        to: VersionStatus, superseded: Option<String>,
    }
    /// A version was published: the artifact's current version now (`superseded`: the one it replaced).
    #[project = project_id]
    ArtifactPublished {
        artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, content_hash: String,
        superseded: Option<String>,
    }
    /// A published version was superseded by the publication of `by`, in the same transaction.
    #[project = project_id]
    ArtifactSuperseded { artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, by: String }
    /// A version's body is in blob storage, whole, its sha256 the version's `contentHash` (`size` bytes at
    /// `storageRef`; once per storage reference, which versions with identical content share).
    #[project = project_id]
    ArtifactBodyStored {
        artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, content_hash: String, storage_ref: String, size: i64,
    }
    /// An edge of the lineage graph was recorded: `to` came from `from` (node ids `<kind>:<key>`). Once
    /// per edge, whoever reports it again.
    LineageEdgeRecorded { from: String, to: String, kind: EdgeKind }
    /// The tenant's retention of an artifact type changed (`keepDays`; null: kept for ever).
    ArtifactRetentionSet { artifact_type: String, keep_days: Option<i32> }
    /// A version was deleted by its type's retention (its body too, unless another version shares it).
    #[project = project_id]
    ArtifactVersionExpired { artifact_id: ArtifactId, project_id: Option<ProjectId>, version: String, storage_ref: String }
}
