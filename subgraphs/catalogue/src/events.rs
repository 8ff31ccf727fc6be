//! Everything catalogue publishes (routing key `catalogue.<eventType>`) and the commands it accepts. The
//! README's events table documents each payload; a breaking change makes a new type (`…V2`).
//!
//! Events about something inside a project carry its id in the envelope's `projectId`, and events about a
//! module its id in `moduleId`.

use crate::environments::ChangeStatus;
use crate::ids::{BlueprintId, ChangeId, ModuleId, PrincipalId, ProjectId, ValidationRunId};
use kernel::contracts::governance::ApprovalRequest;
use serde_json::Value;

/// The routing-key prefix of everything catalogue publishes.
pub const DOMAIN: &str = "catalogue";

/// `ApprovalSubject.kind` of a prod environment change.
pub const ENVIRONMENT_CHANGE: &str = "catalogue.EnvironmentChange";

kernel::events! {
    domain = "catalogue";

    /// A project was created (status `Active`).
    #[project = project_id]
    ProjectCreated { project_id: ProjectId, slug: String, name: String, owner_principal_id: Option<PrincipalId> }
    /// A project's name, description or owner changed.
    #[project = project_id]
    ProjectUpdated { project_id: ProjectId, name: String, description: String, owner_principal_id: Option<PrincipalId> }
    /// A project was archived: read-only from now on, and hidden from default lists.
    #[project = project_id]
    ProjectArchived { project_id: ProjectId, slug: String }

    /// A change to a `prod` environment is waiting for approval (a `RequestApproval` command went out with it).
    #[project = project_id]
    EnvironmentChangeRequested {
        change_id: ChangeId, project_id: ProjectId, environment: String, base_version: i32, requested_by: String, reason: String,
    }
    /// An environment's configuration changed (at once outside prod; in prod once the approval was granted).
    #[project = project_id]
    EnvironmentChanged { change_id: ChangeId, project_id: ProjectId, environment: String, version: i32, config: Value }
    /// A pending prod change was dropped: `outcome` is `Rejected`, `Expired` or `Cancelled` (project archived).
    #[project = project_id]
    EnvironmentChangeDiscarded {
        change_id: ChangeId, project_id: ProjectId, environment: String, outcome: ChangeStatus, note: Option<String>,
    }
    /// Command to governance (`catalogue.RequestApproval`): approve the prod change `subject.id`. The
    /// payload is an `ApprovalRequest` (kernel::contracts::governance) plus the project's id.
    #[project = project_id]
    RequestApproval { project_id: ProjectId, #[serde(flatten)] request: ApprovalRequest }

    /// A module was added to the catalogue.
    #[project = project_id] #[module = module_id]
    ModuleRegistered {
        module_id: ModuleId, project_id: ProjectId, name: String, version: String, kind: String, owner: String,
        tags: Vec<String>,
    }
    /// A module's version, kind, owner, tags or metadata changed.
    #[project = project_id] #[module = module_id]
    ModuleUpdated {
        module_id: ModuleId, project_id: ProjectId, name: String, version: String, kind: String, owner: String,
        tags: Vec<String>,
    }
    /// A module without dependents was removed, with its own dependency edges.
    #[project = project_id] #[module = module_id]
    ModuleRemoved { module_id: ModuleId, project_id: ProjectId, name: String }
    /// `from` now depends on `to` within `versionConstraint` (a semver range).
    #[project = project_id] #[module = from_module_id]
    DependencyAdded { from_module_id: ModuleId, to_module_id: ModuleId, project_id: ProjectId, version_constraint: String }
    #[project = project_id] #[module = from_module_id]
    DependencyRemoved { from_module_id: ModuleId, to_module_id: ModuleId, project_id: ProjectId }

    /// A blueprint was created in a project.
    #[project = project_id]
    BlueprintCreated { blueprint_id: BlueprintId, project_id: ProjectId, name: String }
    /// A draft version was created or its definition replaced.
    #[project = project_id]
    BlueprintVersionDrafted { blueprint_id: BlueprintId, project_id: ProjectId, version: i32 }
    /// A validation run finished (whatever its outcome); its results are queryable by `runId`.
    #[project = project_id]
    BlueprintValidationCompleted {
        run_id: ValidationRunId, blueprint_id: BlueprintId, project_id: ProjectId, version: i32, valid: bool, errors: i32, warnings: i32,
    }
    /// A version passed validation: immutable from now on, and the project's context map and domain models
    /// are rebuilt from it. The previously validated version is superseded.
    #[project = project_id]
    BlueprintVersionValidated {
        blueprint_id: BlueprintId, project_id: ProjectId, version: i32, run_id: ValidationRunId, superseded_version: Option<i32>,
    }
    /// A blueprint's context map and domain models were rebuilt from `version` (`contexts` bounded contexts).
    #[project = project_id]
    ContextMapProjected { blueprint_id: BlueprintId, project_id: ProjectId, version: i32, contexts: i32 }

    /// A draft skill definition version was created or changed. `platform`: a platform definition (the
    /// envelope's tenant is then `platform`).
    SkillDefinitionDrafted { skill_key: String, version: String, platform: bool }
    /// A skill definition version was published (immutable from now on): the full definition.
    SkillDefinitionPublished {
        skill_key: String, version: String, name: String, description: String, input_schema: Value,
        output_schema: Value, platform: bool,
    }
    /// A published skill definition version was deprecated (final): new agent publications skip it.
    SkillDefinitionDeprecated { skill_key: String, version: String, platform: bool }
    /// A draft agent definition version was created or changed.
    AgentDefinitionDrafted { agent_key: String, version: String, platform: bool }
    /// An agent definition version was published (immutable from now on): the full definition, with the
    /// exact skill versions its ranges resolved to at publication.
    AgentDefinitionPublished {
        agent_key: String, version: String, name: String, description: String, capabilities: Vec<String>,
        skills: Vec<AgentSkillRef>, model_requirements: Value, platform: bool,
    }
    /// A published agent definition version was deprecated (final).
    AgentDefinitionDeprecated { agent_key: String, version: String, platform: bool }

    /// Command: create a project. Idempotent: a project with this slug already there is left as it is.
    CreateProject {
        slug: String, name: String, #[serde(default)] description: String,
        #[serde(default)] owner_principal_id: Option<PrincipalId>,
    }
    /// Command: validate a blueprint version (as the `validateBlueprint` mutation does).
    ValidateBlueprint { blueprint_id: BlueprintId, version: i32 }
}

/// A skill an agent has, as published.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSkillRef {
    pub skill_key: String,
    /// The range the definition asked for.
    pub version_req: String,
    /// The newest published version in range when the agent was published.
    pub resolved_version: String,
    /// Whether that version is the platform's (else the agent owner's own).
    pub platform: bool,
}

// What other domains read of catalogue's events ([`kernel::contracts::catalogue`]) is what catalogue sends.
const _: () = assert!(kernel::contracts::same(DOMAIN, kernel::contracts::catalogue::DOMAIN));
const _: () = assert!(kernel::contracts::same(
    <SkillDefinitionPublished as kernel::envelope::Event>::TYPE,
    <kernel::contracts::catalogue::SkillDefinitionPublished as kernel::envelope::Event>::TYPE
));
const _: () = assert!(kernel::contracts::same(
    <SkillDefinitionDeprecated as kernel::envelope::Event>::TYPE,
    <kernel::contracts::catalogue::SkillDefinitionDeprecated as kernel::envelope::Event>::TYPE
));
const _: () = assert!(kernel::contracts::same(
    <EnvironmentChanged as kernel::envelope::Event>::TYPE,
    <kernel::contracts::catalogue::EnvironmentChanged as kernel::envelope::Event>::TYPE
));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_reads_an_environment_change_as_catalogue_sends_it() {
        let sent = EnvironmentChanged {
            change_id: ChangeId::new_v7(),
            project_id: ProjectId::new_v7(),
            environment: "prod".into(),
            version: 3,
            config: serde_json::json!({ "artifacts": [{ "artifactId": "report", "version": "1.0.0" }] }),
        };
        let read: kernel::contracts::catalogue::EnvironmentChanged =
            serde_json::from_value(serde_json::to_value(&sent).unwrap()).unwrap();
        assert_eq!(read.project_id.to_string(), sent.project_id.to_string());
        assert_eq!((read.environment, read.version, read.config), (sent.environment, sent.version, sent.config));
    }
}
