//! Catalogue: projects, their environments, and the module registry.

use std::path::PathBuf;

use clap::Subcommand;
use cp_sdk::ops::catalogue::{
    Blueprint, BlueprintVersion, BuildStage, CreateProjectInput, Dependency, DependencyDirection, Environment,
    EnvironmentChange, EnvironmentChangeResult, EnvironmentName, Module, ModuleFilter, Project, Reached,
    RegisterModuleInput, UpdateModuleInput, UpdateProjectInput, ValidationResult,
};
use cp_sdk::Client;

use super::{all, done, json_arg, list, read_json, verdict, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Catalogue {
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// A project's environments (dev, test, staging, prod).
    #[command(subcommand)]
    Env(EnvCmd),
    /// The module registry.
    #[command(subcommand)]
    Module(ModuleCmd),
    /// Dependencies between modules.
    #[command(subcommand)]
    Dependency(DependencyCmd),
    /// A project's blueprints: drafted, validated.
    #[command(subcommand)]
    Blueprint(BlueprintCmd),
}

#[derive(Subcommand, Debug)]
pub enum ProjectCmd {
    /// The active projects.
    List,
    /// One project, by its slug.
    Show { slug: String },
    /// Create a project (it comes with its four environments).
    Create {
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change a project's name, description or owner.
    Update {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The owning principal's id.
        #[arg(long)]
        owner: Option<cp_sdk::Uuid>,
    },
    /// Archive a project.
    Archive { slug: String },
    /// The order the project's modules build in: stages, each after the ones before.
    BuildOrder { slug: String },
}

mirror!(Env => EnvironmentName { Dev, Test, Staging, Prod });
mirror!(Direction => DependencyDirection { Dependencies, Dependents });

#[derive(Subcommand, Debug)]
pub enum EnvCmd {
    /// An environment as it is now.
    Show {
        project: String,
        #[arg(value_enum)]
        env: Env,
    },
    /// Change an environment's configuration: applied at once, or (prod) held for approval.
    Set {
        project: String,
        #[arg(value_enum)]
        env: Env,
        /// The whole new configuration, as JSON.
        #[arg(long)]
        config: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// An environment's changes, newest first.
    History {
        project: String,
        #[arg(value_enum)]
        env: Env,
        /// At most this many.
        #[arg(long)]
        last: Option<i32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModuleCmd {
    /// The registry's modules (of one project, matching a search, when given).
    List {
        /// The project's slug.
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        search: Option<String>,
    },
    /// One module.
    Show { id: String },
    /// Register a module in a project.
    Register {
        /// The project's slug.
        project: String,
        name: String,
        #[arg(long)]
        kind: String,
        /// Its version (semver).
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "")]
        owner: String,
        /// Tags, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Metadata, as a JSON object.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Change a module; the options not given keep their values.
    Update {
        id: String,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// Tags, comma-separated (`''` for none).
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Remove a module (refused while others depend on it).
    Remove { id: String },
    /// What depends on a module, and what a new version of it would break.
    Impact {
        id: String,
        #[arg(long)]
        new_version: Option<String>,
    },
    /// A module's dependencies (or dependents), transitively.
    Deps {
        id: String,
        #[arg(long, value_enum, default_value = "dependencies")]
        direction: Direction,
        /// Hops to follow.
        #[arg(long, default_value_t = 10)]
        depth: i32,
    },
}

#[derive(Subcommand, Debug)]
pub enum DependencyCmd {
    /// Make one module depend on another, in a version range (`^1.2`); refused if it closes a cycle.
    Add {
        from: String,
        to: String,
        #[arg(long, default_value = "*")]
        constraint: String,
    },
    /// Remove a dependency (`NOT_FOUND` when there is none).
    Remove { from: String, to: String },
}

#[derive(Subcommand, Debug)]
pub enum BlueprintCmd {
    /// One blueprint, with its draft and its validated version.
    Show { id: String },
    /// Create a blueprint in a project.
    Create {
        /// The project's slug.
        project: String,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Draft a version from a JSON definition (a file, or `-` for stdin).
    Draft {
        id: String,
        #[arg(long)]
        file: PathBuf,
        /// The draft to replace (none: a new version).
        #[arg(long)]
        version: Option<i32>,
    },
    /// Validate a drafted version; a valid one becomes the blueprint's validated version. Exits 1 when it
    /// is not valid.
    Validate { id: String, version: i32 },
}

impl Catalogue {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        let id = cynic::Id::new;
        match self {
            Catalogue::Project(ProjectCmd::List) => output::list(format, &all(client.projects(PAGE)).await?),
            Catalogue::Project(ProjectCmd::Show { slug }) => output::one(format, &client.project_by_slug(&slug).await?),
            Catalogue::Project(ProjectCmd::Create { slug, name, description }) => {
                output::one(format, &client.create_project(CreateProjectInput { slug, name, description }).await?)
            }
            Catalogue::Project(ProjectCmd::Update { slug, name, description, owner }) => {
                let project = client.project_by_slug(&slug).await?.id;
                let input = UpdateProjectInput { name, description, owner_principal_id: owner };
                output::one(format, &client.update_project(project, input).await?)
            }
            Catalogue::Project(ProjectCmd::Archive { slug }) => {
                let project = client.project_by_slug(&slug).await?.id;
                output::one(format, &client.archive_project(project).await?)
            }
            Catalogue::Project(ProjectCmd::BuildOrder { slug }) => {
                let project = client.project_by_slug(&slug).await?.id;
                output::list(format, &client.build_order(project).await?)
            }
            Catalogue::Env(EnvCmd::Show { project, env }) => {
                let project = client.project_by_slug(&project).await?.id;
                output::one(format, &client.environment(project, env.into()).await?)
            }
            Catalogue::Env(EnvCmd::Set { project, env, config, reason }) => {
                let config = json_arg("config", &config)?;
                let project = client.project_by_slug(&project).await?.id;
                output::one(format, &client.change_environment(project, env.into(), config, &reason).await?)
            }
            Catalogue::Env(EnvCmd::History { project, env, last }) => {
                let project = client.project_by_slug(&project).await?.id;
                output::list(format, &client.environment_changes(project, env.into(), last).await?)
            }
            Catalogue::Module(ModuleCmd::List { project, search }) => {
                let project = match project {
                    Some(slug) => Some(client.project_by_slug(&slug).await?.id),
                    None => None,
                };
                let filter = search.map(|s| ModuleFilter { search: Some(s), ..Default::default() });
                output::list(format, &all(client.modules(project, filter, PAGE)).await?)
            }
            Catalogue::Module(ModuleCmd::Show { id: m }) => output::one(format, &client.module(id(m)).await?),
            Catalogue::Module(ModuleCmd::Register { project, name, kind, version, owner, tags, metadata }) => {
                let metadata = metadata.map(|m| json_arg("metadata", &m)).transpose()?;
                let project_id = client.project_by_slug(&project).await?.id;
                let tags = list(tags);
                let input = RegisterModuleInput { project_id, name, kind, version, owner, tags, metadata };
                output::one(format, &client.register_module(input).await?)
            }
            Catalogue::Module(ModuleCmd::Update { id: m, kind, version, owner, tags, metadata }) => {
                let metadata = metadata.map(|m| json_arg("metadata", &m)).transpose()?;
                let input = UpdateModuleInput { kind, version, owner, tags: tags.map(list), metadata };
                output::one(format, &client.update_module(id(m), input).await?)
            }
            Catalogue::Module(ModuleCmd::Remove { id: m }) => {
                let removed = client.remove_module(id(m)).await?;
                done(format, serde_json::json!({ "removed": removed }), format!("removed module {}", removed.inner()))
            }
            Catalogue::Module(ModuleCmd::Impact { id: m, new_version }) => {
                let report = client.impact_analysis(id(m), new_version.as_deref()).await?;
                match format {
                    Format::Json => output::value(&report),
                    Format::Table => {
                        let m = &report.module;
                        let to = report.new_version.as_deref().map(|v| format!(" → {v}")).unwrap_or_default();
                        eprintln!(
                            "{} {}{to}: {} affected, {} broken",
                            m.name,
                            m.version,
                            report.affected.len(),
                            report.breaking.len()
                        );
                        if report.truncated {
                            eprintln!("(truncated: more modules are affected than one answer holds)");
                        }
                        output::list(format, &report.affected)?;
                        if !report.breaking.is_empty() {
                            eprintln!("broken:");
                            output::list(format, &report.breaking)?;
                        }
                        Ok(())
                    }
                }
            }
            Catalogue::Module(ModuleCmd::Deps { id: m, direction, depth }) => {
                output::list(format, &client.transitive_dependencies(id(m), direction.into(), depth).await?)
            }
            Catalogue::Dependency(DependencyCmd::Add { from, to, constraint }) => {
                output::one(format, &client.add_dependency(id(from), id(to), &constraint).await?)
            }
            Catalogue::Dependency(DependencyCmd::Remove { from, to }) => {
                client.remove_dependency(id(from.clone()), id(to.clone())).await?;
                let said = format!("{from} no longer depends on {to}");
                done(format, serde_json::json!({ "removed": { "from": from, "to": to } }), said)
            }
            Catalogue::Blueprint(BlueprintCmd::Show { id: b }) => output::one(format, &client.blueprint(id(b)).await?),
            Catalogue::Blueprint(BlueprintCmd::Create { project, name, description }) => {
                let project = client.project_by_slug(&project).await?.id;
                output::one(format, &client.create_blueprint(project, &name, &description).await?)
            }
            Catalogue::Blueprint(BlueprintCmd::Draft { id: b, file, version }) => {
                let definition = read_json(&file)?;
                output::one(format, &client.draft_blueprint_version(id(b), definition, version).await?)
            }
            Catalogue::Blueprint(BlueprintCmd::Validate { id: b, version }) => {
                let run = client.validate_blueprint(id(b), version).await?;
                match format {
                    Format::Json => output::value(&run)?,
                    Format::Table => {
                        let said = if run.valid { "valid" } else { "not valid" };
                        eprintln!("version {}: {said} ({} errors, {} warnings)", run.version, run.errors, run.warnings);
                        output::list(format, &run.results)?;
                    }
                }
                verdict(run.valid, || format!("version {} is not valid", run.version))
            }
        }
    }
}

impl Row for Project {
    fn headers() -> &'static [&'static str] {
        &["ID", "SLUG", "NAME", "STATUS", "ENVIRONMENTS", "CREATED"]
    }
    fn row(&self) -> Vec<String> {
        let envs = self.environments.iter().map(|e| format!("{}@{}", name(&e.name), e.version));
        vec![
            self.id.inner().to_owned(),
            self.slug.clone(),
            self.name.clone(),
            name(&self.status),
            envs.collect::<Vec<_>>().join(" "),
            time(&self.created_at),
        ]
    }
}

impl Row for Environment {
    fn headers() -> &'static [&'static str] {
        &["NAME", "VERSION", "CONFIG", "UPDATED"]
    }
    fn row(&self) -> Vec<String> {
        vec![name(&self.name), self.version.to_string(), self.config.to_string(), time(&self.updated_at)]
    }
}

impl Row for EnvironmentChangeResult {
    fn headers() -> &'static [&'static str] {
        &["CHANGE", "STATUS", "ENVIRONMENT", "VERSION", "REASON"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.change.id.inner().to_owned(),
            name(&self.change.status),
            name(&self.environment.name),
            self.environment.version.to_string(),
            self.change.reason.clone(),
        ]
    }
}

impl Row for Module {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "KIND", "VERSION", "OWNER", "TAGS"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            self.name.clone(),
            self.kind.clone(),
            self.version.clone(),
            opt(&Some(&self.owner).filter(|o| !o.is_empty())),
            self.tags.join(", "),
        ]
    }
}

impl Row for EnvironmentChange {
    fn headers() -> &'static [&'static str] {
        &["CHANGE", "STATUS", "BASE", "APPLIED", "REASON", "BY", "REQUESTED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            name(&self.status),
            self.base_version.to_string(),
            opt(&self.applied_version),
            self.reason.clone(),
            self.requested_by.clone(),
            time(&self.requested_at),
        ]
    }
}

impl Row for Dependency {
    fn headers() -> &'static [&'static str] {
        &["MODULE", "NAME", "VERSION", "CONSTRAINT", "SATISFIED"]
    }
    fn row(&self) -> Vec<String> {
        let m = self.module.as_ref();
        vec![
            opt(&m.map(|m| m.id.inner())),
            opt(&m.map(|m| &m.name)),
            opt(&m.map(|m| &m.version)),
            self.version_constraint.clone(),
            self.satisfied.to_string(),
        ]
    }
}

impl Row for Reached {
    fn headers() -> &'static [&'static str] {
        &["MODULE", "DEPTH", "PATH"]
    }
    fn row(&self) -> Vec<String> {
        let path = self.path.iter().map(cynic::Id::inner).collect::<Vec<_>>().join(" → ");
        vec![self.module_id.inner().to_owned(), self.depth.to_string(), path]
    }
}

impl Row for BuildStage {
    fn headers() -> &'static [&'static str] {
        &["STAGE", "MODULES"]
    }
    fn row(&self) -> Vec<String> {
        let modules = self.modules.iter().map(|m| format!("{}@{}", m.name, m.version));
        vec![self.stage.to_string(), modules.collect::<Vec<_>>().join(", ")]
    }
}

impl Row for Blueprint {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "PROJECT", "DRAFT", "VALIDATED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            self.name.clone(),
            self.project_id.inner().to_owned(),
            opt(&self.draft.as_ref().map(|v| v.version)),
            opt(&self.validated_version.as_ref().map(|v| v.version)),
        ]
    }
}

impl Row for BlueprintVersion {
    fn headers() -> &'static [&'static str] {
        &["BLUEPRINT", "VERSION", "STATUS", "MUTABLE", "VALIDATED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.blueprint_id.inner().to_owned(),
            self.version.to_string(),
            name(&self.status),
            self.mutable.to_string(),
            opt(&self.validated_at.as_ref().map(time)),
        ]
    }
}

impl Row for ValidationResult {
    fn headers() -> &'static [&'static str] {
        &["SEVERITY", "RULE", "WHERE", "MESSAGE"]
    }
    fn row(&self) -> Vec<String> {
        vec![name(&self.severity), self.rule.clone(), self.location.clone(), self.message.clone()]
    }
}
