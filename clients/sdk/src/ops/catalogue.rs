//! Catalogue: projects (each with its dev, test, staging and prod environments), environment changes
//! (applied, or held for approval in prod), the module registry and its dependency graph, blueprints.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
//! use cp_sdk::ops::catalogue::*;
//! use futures::TryStreamExt;
//!
//! let input = CreateProjectInput { slug: "payments".into(), name: "Payments".into(), description: String::new() };
//! let project = client.create_project(input).await?;
//! let changed = client
//!     .change_environment(project.id.clone(), EnvironmentName::Staging, serde_json::json!({ "replicas": 3 }), "scale up")
//!     .await?;
//! println!("staging is at version {} ({:?})", changed.environment.version, changed.change.status);
//!
//! // The module registry: two modules, one depending on the other, and what a new version would break.
//! let module = |name: &str, version: &str| RegisterModuleInput {
//!     project_id: project.id.clone(),
//!     name: name.into(),
//!     kind: "service".into(),
//!     version: version.into(),
//!     owner: "team-a".into(),
//!     tags: vec![],
//!     metadata: None,
//! };
//! let api = client.register_module(module("api", "1.4.0")).await?;
//! let web = client.register_module(module("web", "2.0.0")).await?;
//! client.add_dependency(web.id.clone(), api.id.clone(), "^1.2").await?;
//! let impact = client.impact_analysis(api.id.clone(), Some("2.0.0")).await?;
//! let order = client.build_order(project.id.clone()).await?;
//! let services: Vec<_> = client.modules(Some(project.id.clone()), None, 100).try_collect().await?;
//!
//! // Blueprints: a draft version, validated.
//! let blueprint = client.create_blueprint(project.id.clone(), "checkout", "").await?;
//! let draft = client.draft_blueprint_version(blueprint.id.clone(), serde_json::json!({ "contexts": [] }), None).await?;
//! let run = client.validate_blueprint(blueprint.id, draft.version).await?;
//! # Ok(()) }
//! ```

use cynic::{MutationBuilder, QueryBuilder};
use futures::Stream;

use crate::pages::{paged, PageInfo};
use crate::schema;
use crate::{Client, DateTime, Error, Json};

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Project")]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: cynic::Id,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub status: ProjectStatus,
    pub environments: Vec<Environment>,
    pub created_at: DateTime,
    pub archived_at: Option<DateTime>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectStatus {
    Active,
    Archived,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: EnvironmentName,
    pub version: i32,
    pub config: Json,
    pub updated_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[cynic(rename_all = "lowercase")]
pub enum EnvironmentName {
    Dev,
    Test,
    Staging,
    Prod,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreateProjectInput {
    pub slug: String,
    pub name: String,
    pub description: String,
}

#[derive(cynic::InputObject, Debug, Clone, Default)]
pub struct UpdateProjectInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub owner_principal_id: Option<crate::Uuid>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Applied,
    Pending,
    Rejected,
    Expired,
    Cancelled,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentChange {
    pub id: cynic::Id,
    pub environment: EnvironmentName,
    pub status: ChangeStatus,
    pub reason: String,
    pub config: Json,
    pub base_version: i32,
    pub applied_version: Option<i32>,
    pub requested_by: String,
    pub requested_at: DateTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime>,
}

/// A change and the environment after it (unchanged while the change waits for approval).
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentChangeResult {
    pub change: EnvironmentChange,
    pub environment: Environment,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    pub id: cynic::Id,
    pub project_id: cynic::Id,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub owner: String,
    pub tags: Vec<String>,
    pub metadata: Json,
    pub updated_at: DateTime,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct RegisterModuleInput {
    pub project_id: cynic::Id,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub owner: String,
    pub tags: Vec<String>,
    pub metadata: Option<Json>,
}

#[derive(cynic::InputObject, Debug, Clone, Default)]
pub struct UpdateModuleInput {
    pub kind: Option<String>,
    pub version: Option<String>,
    pub owner: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Json>,
}

#[derive(cynic::InputObject, Debug, Clone, Default)]
pub struct ModuleFilter {
    pub kind: Option<String>,
    pub search: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata_contains: Option<Json>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Module")]
#[serde(rename_all = "camelCase")]
pub struct ModuleRef {
    pub id: cynic::Id,
    pub name: String,
    pub version: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub module: Option<ModuleRef>,
    pub version_constraint: String,
    pub satisfied: bool,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyDirection {
    Dependencies,
    Dependents,
}

/// A module reached from another, at `depth`, by `path` (module ids from the start).
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reached {
    pub module_id: cynic::Id,
    pub depth: i32,
    pub path: Vec<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactReport {
    pub module: ModuleRef,
    pub new_version: Option<String>,
    pub affected: Vec<Reached>,
    pub breaking: Vec<Dependency>,
    pub truncated: bool,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStage {
    pub stage: i32,
    pub modules: Vec<ModuleRef>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlueprintVersionStatus {
    Draft,
    Validated,
    Superseded,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueprintVersion {
    pub blueprint_id: cynic::Id,
    pub version: i32,
    pub status: BlueprintVersionStatus,
    pub definition: Json,
    pub mutable: bool,
    pub validated_at: Option<DateTime>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blueprint {
    pub id: cynic::Id,
    pub project_id: cynic::Id,
    pub name: String,
    pub description: String,
    pub draft: Option<BlueprintVersion>,
    pub validated_version: Option<BlueprintVersion>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationSeverity {
    Error,
    Warning,
    Info,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    pub rule: String,
    pub severity: ValidationSeverity,
    pub location: String,
    pub message: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRun {
    pub run_id: cynic::Id,
    pub version: i32,
    pub valid: bool,
    pub errors: i32,
    pub warnings: i32,
    pub results: Vec<ValidationResult>,
}

#[derive(cynic::QueryVariables, Debug)]
struct IdVars {
    id: cynic::Id,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateVars {
    input: CreateProjectInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateVars")]
struct Create {
    #[arguments(input: $input)]
    create_project: Project,
}

#[derive(cynic::QueryVariables, Debug)]
struct ProjectsVars {
    first: Option<i32>,
    after: Option<String>,
    include_archived: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ProjectsVars")]
struct Projects {
    #[arguments(first: $first, after: $after, includeArchived: $include_archived)]
    projects: ProjectConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct ProjectConnection {
    nodes: Vec<Project>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct ProjectQuery {
    #[arguments(id: $id)]
    project: Project,
}

#[derive(cynic::QueryVariables, Debug)]
struct SlugVars {
    slug: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "SlugVars")]
struct ProjectBySlug {
    #[arguments(slug: $slug)]
    project_by_slug: Project,
}

#[derive(cynic::QueryVariables, Debug)]
struct UpdateProjectVars {
    id: cynic::Id,
    input: UpdateProjectInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "UpdateProjectVars")]
struct UpdateProject {
    #[arguments(id: $id, input: $input)]
    update_project: Project,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct ArchiveProject {
    #[arguments(id: $id)]
    archive_project: Project,
}

#[derive(cynic::QueryVariables, Debug)]
struct EnvVars {
    project_id: cynic::Id,
    name: EnvironmentName,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "EnvVars")]
struct EnvironmentQuery {
    #[arguments(projectId: $project_id, name: $name)]
    environment: Environment,
}

#[derive(cynic::QueryVariables, Debug)]
struct ChangeEnvVars {
    project_id: cynic::Id,
    name: EnvironmentName,
    config: Json,
    reason: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ChangeEnvVars")]
struct ChangeEnvironment {
    #[arguments(projectId: $project_id, name: $name, config: $config, reason: $reason)]
    change_environment: EnvironmentChangeResult,
}

#[derive(cynic::QueryVariables, Debug)]
struct EnvChangesVars {
    project_id: cynic::Id,
    name: EnvironmentName,
    last: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "EnvChangesVars")]
struct EnvironmentChanges {
    #[arguments(projectId: $project_id, name: $name, last: $last)]
    environment_changes: Vec<EnvironmentChange>,
}

#[derive(cynic::QueryVariables, Debug)]
struct ModulesVars {
    first: Option<i32>,
    after: Option<String>,
    project_id: Option<cynic::Id>,
    filter: Option<ModuleFilter>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ModulesVars")]
struct Modules {
    #[arguments(first: $first, after: $after, projectId: $project_id, filter: $filter)]
    modules: ModuleConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct ModuleConnection {
    nodes: Vec<Module>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct ModuleQuery {
    #[arguments(id: $id)]
    module: Module,
}

#[derive(cynic::QueryVariables, Debug)]
struct RegisterModuleVars {
    input: RegisterModuleInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RegisterModuleVars")]
struct RegisterModule {
    #[arguments(input: $input)]
    register_module: Module,
}

#[derive(cynic::QueryVariables, Debug)]
struct UpdateModuleVars {
    id: cynic::Id,
    input: UpdateModuleInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "UpdateModuleVars")]
struct UpdateModule {
    #[arguments(id: $id, input: $input)]
    update_module: Module,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct RemoveModule {
    #[arguments(id: $id)]
    remove_module: cynic::Id,
}

#[derive(cynic::QueryVariables, Debug)]
struct AddDependencyVars {
    from_module_id: cynic::Id,
    to_module_id: cynic::Id,
    version_constraint: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "AddDependencyVars")]
struct AddDependency {
    #[arguments(fromModuleId: $from_module_id, toModuleId: $to_module_id, versionConstraint: $version_constraint)]
    add_dependency: Dependency,
}

#[derive(cynic::QueryVariables, Debug)]
struct RemoveDependencyVars {
    from_module_id: cynic::Id,
    to_module_id: cynic::Id,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RemoveDependencyVars")]
struct RemoveDependency {
    #[arguments(fromModuleId: $from_module_id, toModuleId: $to_module_id)]
    remove_dependency: bool,
}

#[derive(cynic::QueryVariables, Debug)]
struct TransitiveVars {
    module_id: cynic::Id,
    direction: DependencyDirection,
    max_depth: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TransitiveVars")]
struct Transitive {
    #[arguments(moduleId: $module_id, direction: $direction, maxDepth: $max_depth)]
    transitive_dependencies: Vec<Reached>,
}

#[derive(cynic::QueryVariables, Debug)]
struct ImpactVars {
    module_id: cynic::Id,
    new_version: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ImpactVars")]
struct Impact {
    #[arguments(moduleId: $module_id, newVersion: $new_version)]
    impact_analysis: ImpactReport,
}

#[derive(cynic::QueryVariables, Debug)]
struct ProjectIdVars {
    project_id: cynic::Id,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ProjectIdVars")]
struct BuildOrder {
    #[arguments(projectId: $project_id)]
    build_order: Vec<BuildStage>,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateBlueprintVars {
    project_id: cynic::Id,
    name: String,
    description: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateBlueprintVars")]
struct CreateBlueprint {
    #[arguments(projectId: $project_id, name: $name, description: $description)]
    create_blueprint: Blueprint,
}

#[derive(cynic::QueryVariables, Debug)]
struct DraftBlueprintVars {
    blueprint_id: cynic::Id,
    definition: Json,
    version: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "DraftBlueprintVars")]
struct DraftBlueprint {
    #[arguments(blueprintId: $blueprint_id, definition: $definition, version: $version)]
    draft_blueprint_version: BlueprintVersion,
}

#[derive(cynic::QueryVariables, Debug)]
struct ValidateVars {
    blueprint_id: cynic::Id,
    version: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ValidateVars")]
struct ValidateBlueprint {
    #[arguments(blueprintId: $blueprint_id, version: $version)]
    validate_blueprint: ValidationRun,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct BlueprintQuery {
    #[arguments(id: $id)]
    blueprint: Blueprint,
}

impl Client {
    /// Creates a project (it comes with its four environments). Emits `ProjectCreated`.
    pub async fn create_project(&self, input: CreateProjectInput) -> Result<Project, Error> {
        Ok(self.run(Create::build(CreateVars { input })).await?.create_project)
    }

    /// The tenant's active projects, `per_page` at a time (1–100), as they are read.
    pub fn projects(&self, per_page: i32) -> impl Stream<Item = Result<Project, Error>> + '_ {
        paged(
            self,
            move |after| Projects::build(ProjectsVars { first: Some(per_page), after, include_archived: false }),
            |q| (q.projects.nodes, q.projects.page_info),
        )
    }

    /// One project.
    pub async fn project(&self, id: cynic::Id) -> Result<Project, Error> {
        Ok(self.run(ProjectQuery::build(IdVars { id })).await?.project)
    }

    /// One project, by its slug.
    pub async fn project_by_slug(&self, slug: &str) -> Result<Project, Error> {
        Ok(self.run(ProjectBySlug::build(SlugVars { slug: slug.into() })).await?.project_by_slug)
    }

    /// Renames a project, or changes its description or owner.
    pub async fn update_project(&self, id: cynic::Id, input: UpdateProjectInput) -> Result<Project, Error> {
        Ok(self.run(UpdateProject::build(UpdateProjectVars { id, input })).await?.update_project)
    }

    /// Archives a project: read-only from then on.
    pub async fn archive_project(&self, id: cynic::Id) -> Result<Project, Error> {
        Ok(self.run(ArchiveProject::build(IdVars { id })).await?.archive_project)
    }

    /// One of a project's environments, as it is now.
    pub async fn environment(&self, project_id: cynic::Id, name: EnvironmentName) -> Result<Environment, Error> {
        Ok(self.run(EnvironmentQuery::build(EnvVars { project_id, name })).await?.environment)
    }

    /// Changes an environment's configuration: applied at once, or (prod) held `PENDING` for approval.
    pub async fn change_environment(
        &self,
        project_id: cynic::Id,
        name: EnvironmentName,
        config: Json,
        reason: &str,
    ) -> Result<EnvironmentChangeResult, Error> {
        let op = ChangeEnvironment::build(ChangeEnvVars { project_id, name, config, reason: reason.into() });
        Ok(self.run(op).await?.change_environment)
    }

    /// An environment's last changes, newest first.
    pub async fn environment_changes(
        &self,
        project_id: cynic::Id,
        name: EnvironmentName,
        last: Option<i32>,
    ) -> Result<Vec<EnvironmentChange>, Error> {
        let op = EnvironmentChanges::build(EnvChangesVars { project_id, name, last });
        Ok(self.run(op).await?.environment_changes)
    }

    /// The registry's modules (of one project, matching `filter`, when given).
    pub fn modules(
        &self,
        project_id: Option<cynic::Id>,
        filter: Option<ModuleFilter>,
        per_page: i32,
    ) -> impl Stream<Item = Result<Module, Error>> + '_ {
        paged(
            self,
            move |after| {
                let (project_id, filter) = (project_id.clone(), filter.clone());
                Modules::build(ModulesVars { first: Some(per_page), after, project_id, filter })
            },
            |q| (q.modules.nodes, q.modules.page_info),
        )
    }

    /// One module.
    pub async fn module(&self, id: cynic::Id) -> Result<Module, Error> {
        Ok(self.run(ModuleQuery::build(IdVars { id })).await?.module)
    }

    /// Registers a module in a project.
    pub async fn register_module(&self, input: RegisterModuleInput) -> Result<Module, Error> {
        Ok(self.run(RegisterModule::build(RegisterModuleVars { input })).await?.register_module)
    }

    /// Changes a module's version, kind, owner, tags or metadata.
    pub async fn update_module(&self, id: cynic::Id, input: UpdateModuleInput) -> Result<Module, Error> {
        Ok(self.run(UpdateModule::build(UpdateModuleVars { id, input })).await?.update_module)
    }

    /// Removes a module (refused while others depend on it).
    pub async fn remove_module(&self, id: cynic::Id) -> Result<cynic::Id, Error> {
        Ok(self.run(RemoveModule::build(IdVars { id })).await?.remove_module)
    }

    /// Makes `from` depend on `to` within `version_constraint` (a semver range); a cycle is refused.
    pub async fn add_dependency(
        &self,
        from: cynic::Id,
        to: cynic::Id,
        version_constraint: &str,
    ) -> Result<Dependency, Error> {
        let vars =
            AddDependencyVars { from_module_id: from, to_module_id: to, version_constraint: version_constraint.into() };
        Ok(self.run(AddDependency::build(vars)).await?.add_dependency)
    }

    /// Removes a dependency.
    pub async fn remove_dependency(&self, from: cynic::Id, to: cynic::Id) -> Result<bool, Error> {
        let op = RemoveDependency::build(RemoveDependencyVars { from_module_id: from, to_module_id: to });
        Ok(self.run(op).await?.remove_dependency)
    }

    /// The modules a module reaches (its dependencies, or its dependents), up to `max_depth`.
    pub async fn transitive_dependencies(
        &self,
        module_id: cynic::Id,
        direction: DependencyDirection,
        max_depth: i32,
    ) -> Result<Vec<Reached>, Error> {
        let op = Transitive::build(TransitiveVars { module_id, direction, max_depth });
        Ok(self.run(op).await?.transitive_dependencies)
    }

    /// What depends on a module, and which constraints a new version would break.
    pub async fn impact_analysis(
        &self,
        module_id: cynic::Id,
        new_version: Option<&str>,
    ) -> Result<ImpactReport, Error> {
        let op = Impact::build(ImpactVars { module_id, new_version: new_version.map(str::to_owned) });
        Ok(self.run(op).await?.impact_analysis)
    }

    /// A project's modules in build order: each stage depends only on earlier ones.
    pub async fn build_order(&self, project_id: cynic::Id) -> Result<Vec<BuildStage>, Error> {
        Ok(self.run(BuildOrder::build(ProjectIdVars { project_id })).await?.build_order)
    }

    /// Creates a blueprint in a project.
    pub async fn create_blueprint(
        &self,
        project_id: cynic::Id,
        name: &str,
        description: &str,
    ) -> Result<Blueprint, Error> {
        let vars = CreateBlueprintVars { project_id, name: name.into(), description: description.into() };
        Ok(self.run(CreateBlueprint::build(vars)).await?.create_blueprint)
    }

    /// Writes a blueprint's draft (a new version, or the draft `version` again while it is mutable).
    pub async fn draft_blueprint_version(
        &self,
        blueprint_id: cynic::Id,
        definition: Json,
        version: Option<i32>,
    ) -> Result<BlueprintVersion, Error> {
        let op = DraftBlueprint::build(DraftBlueprintVars { blueprint_id, definition, version });
        Ok(self.run(op).await?.draft_blueprint_version)
    }

    /// Validates a blueprint version; a valid run makes it the validated version.
    pub async fn validate_blueprint(&self, blueprint_id: cynic::Id, version: i32) -> Result<ValidationRun, Error> {
        Ok(self.run(ValidateBlueprint::build(ValidateVars { blueprint_id, version })).await?.validate_blueprint)
    }

    /// One blueprint, with its draft and validated versions.
    pub async fn blueprint(&self, id: cynic::Id) -> Result<Blueprint, Error> {
        Ok(self.run(BlueprintQuery::build(IdVars { id })).await?.blueprint)
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
