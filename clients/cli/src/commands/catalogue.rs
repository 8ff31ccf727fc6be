//! Catalogue: projects, their environments, and the module registry.

use clap::{Subcommand, ValueEnum};
use cp_sdk::ops::catalogue::{
    CreateProjectInput, Environment, EnvironmentChangeResult, EnvironmentName, Module, ModuleFilter, Project,
};
use cp_sdk::Client;

use super::{all, json_arg, PAGE};
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
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Env {
    Dev,
    Test,
    Staging,
    Prod,
}

impl From<Env> for EnvironmentName {
    fn from(e: Env) -> Self {
        match e {
            Env::Dev => EnvironmentName::Dev,
            Env::Test => EnvironmentName::Test,
            Env::Staging => EnvironmentName::Staging,
            Env::Prod => EnvironmentName::Prod,
        }
    }
}

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
}

impl Catalogue {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Catalogue::Project(ProjectCmd::List) => output::list(format, &all(client.projects(PAGE)).await?),
            Catalogue::Project(ProjectCmd::Show { slug }) => output::one(format, &client.project_by_slug(&slug).await?),
            Catalogue::Project(ProjectCmd::Create { slug, name, description }) => {
                output::one(format, &client.create_project(CreateProjectInput { slug, name, description }).await?)
            }
            Catalogue::Env(EnvCmd::Show { project, env }) => {
                let id = client.project_by_slug(&project).await?.id;
                output::one(format, &client.environment(id, env.into()).await?)
            }
            Catalogue::Env(EnvCmd::Set { project, env, config, reason }) => {
                let config = json_arg("config", &config)?;
                let id = client.project_by_slug(&project).await?.id;
                output::one(format, &client.change_environment(id, env.into(), config, &reason).await?)
            }
            Catalogue::Module(ModuleCmd::List { project, search }) => {
                let project = match project {
                    Some(slug) => Some(client.project_by_slug(&slug).await?.id),
                    None => None,
                };
                let filter = search.map(|s| ModuleFilter { search: Some(s), ..Default::default() });
                output::list(format, &all(client.modules(project, filter, PAGE)).await?)
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
