//! Workflow: instances started, inspected, cancelled and watched, their events live; definitions
//! published and read.

use std::path::PathBuf;

use clap::Subcommand;
use cp_sdk::ops::workflow::{
    StartWorkflowInput, WorkflowDefinition, WorkflowEvent, WorkflowInstance, WorkflowStatus, WorkflowStep,
};
use cp_sdk::Client;
use futures::StreamExt;

use super::{all, json_arg, not_found, read_json, spinner, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Workflow {
    /// Workflow instances.
    #[command(subcommand)]
    Workflow(WorkflowCmd),
    /// Workflow definitions.
    #[command(subcommand)]
    Definition(DefinitionCmd),
}

#[derive(Subcommand, Debug)]
pub enum WorkflowCmd {
    /// The tenant's instances, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Of one project (its id).
        #[arg(long)]
        project: Option<String>,
    },
    /// Start an instance of a definition (its latest version unless given).
    Start {
        key: String,
        /// The instance's input, as a JSON object.
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        version: Option<i32>,
        /// The platform registry's definition rather than the tenant's own.
        #[arg(long)]
        platform: bool,
        /// The project it runs for (its id).
        #[arg(long)]
        project: Option<String>,
        /// Wait until it ends, showing its state as it moves.
        #[arg(long)]
        wait: bool,
    },
    /// An instance's state.
    Show { id: String },
    /// An instance's events, oldest first.
    History {
        id: String,
        /// After this event (its version).
        #[arg(long, default_value_t = 0)]
        after: i32,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Cancel an instance (its completed steps are compensated).
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Stream an instance's state as it moves, until it ends; reconnects on its own.
    Watch { id: String },
    /// Stream workflow events as they happen (Ctrl-C ends it); reconnects on its own.
    Events {
        /// Of one instance.
        #[arg(long)]
        instance: Option<String>,
        /// Only events of this type (again for more).
        #[arg(long = "type")]
        types: Vec<String>,
    },
}

mirror!(Status => WorkflowStatus {
    Created, Running, AssigningTask, AwaitingAgent, AwaitingApproval, Waiting, Compensating, Completed, Failed,
    Cancelled, ContinuedAsNew,
});

#[derive(Subcommand, Debug)]
pub enum DefinitionCmd {
    /// The tenant's definitions (or the platform registry's).
    List {
        #[arg(long)]
        platform: bool,
    },
    /// A definition's latest version (or the one given), with its steps.
    Show {
        key: String,
        #[arg(long)]
        version: Option<i32>,
        #[arg(long)]
        platform: bool,
    },
    /// Publish a definition from a JSON file (`-` for stdin): key, name, description, start, steps; a new
    /// version of its key.
    Publish {
        #[arg(long)]
        file: PathBuf,
    },
}

impl Workflow {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        let id = cynic::Id::new;
        match self {
            Workflow::Workflow(WorkflowCmd::List { status, project }) => {
                let instances = client.workflow_instances(status.map(Into::into), project.map(id), PAGE);
                output::list(format, &all(instances).await?)
            }
            Workflow::Workflow(WorkflowCmd::Start { key, input, version, platform, project, wait }) => {
                let input = input.map(|i| json_arg("input", &i)).transpose()?;
                let start = StartWorkflowInput {
                    input,
                    version,
                    platform,
                    project_id: project.map(id),
                    ..StartWorkflowInput::new(&key)
                };
                let started = client.start_workflow(start).await?;
                if wait {
                    watch(client, format, started.id).await
                } else {
                    output::one(format, &started)
                }
            }
            Workflow::Workflow(WorkflowCmd::Show { id: i }) => {
                let instance = client
                    .workflow_instance(cynic::Id::new(&i))
                    .await?
                    .ok_or_else(|| not_found(format!("no instance {i}")))?;
                output::one(format, &instance)
            }
            Workflow::Workflow(WorkflowCmd::History { id: i, after, limit }) => {
                let history = client.workflow_history(id(i.clone()), after, limit).await?;
                // No events at all: an instance that does not exist (every instance has its first).
                if history.is_empty() && client.workflow_instance(id(i.clone())).await?.is_none() {
                    return Err(not_found(format!("no instance {i}")));
                }
                output::list(format, &history)
            }
            Workflow::Workflow(WorkflowCmd::Cancel { id: i, reason }) => {
                output::one(format, &client.cancel_workflow(id(i), &reason).await?)
            }
            Workflow::Workflow(WorkflowCmd::Watch { id: i }) => watch(client, format, id(i)).await,
            Workflow::Workflow(WorkflowCmd::Events { instance, types }) => {
                output::follow(format, client.workflow_events(instance.map(id), types), |e| {
                    let instance = opt(&e.instance_id.as_ref().map(cynic::Id::inner));
                    format!("{}  {:<28} {instance:<36} {}", time(&e.occurred_at), e.event_type, e.payload)
                })
                .await
            }
            Workflow::Definition(DefinitionCmd::List { platform }) => {
                output::list(format, &all(client.workflow_definitions(platform, PAGE)).await?)
            }
            Workflow::Definition(DefinitionCmd::Show { key, version, platform }) => {
                let definition = client
                    .workflow_definition(&key, version, platform)
                    .await?
                    .ok_or_else(|| not_found(format!("no definition `{key}`")))?;
                definition_out(format, &definition)
            }
            Workflow::Definition(DefinitionCmd::Publish { file }) => {
                definition_out(format, &client.publish_workflow_definition(read_json(&file)?).await?)
            }
        }
    }
}

/// A definition: its row and its steps as a table, or JSON.
fn definition_out(format: Format, definition: &WorkflowDefinition) -> anyhow::Result<()> {
    match format {
        Format::Json => output::value(definition),
        Format::Table => {
            output::one(format, definition)?;
            output::list(format, &definition.steps)
        }
    }
}

/// Follows an instance to its end: a spinner with its state for people, one JSON line per state for
/// scripts; the final state printed.
async fn watch(client: &Client, format: Format, id: cynic::Id) -> anyhow::Result<()> {
    let bar = (format == Format::Table).then(|| spinner(format!("{} starting", id.inner())));
    let mut states = Box::pin(client.watch_workflow(id));
    let mut last = None;
    while let Some(state) = states.next().await {
        let state = state?;
        match &bar {
            Some(bar) => {
                bar.set_message(format!("{} {} (event {})", state.id.inner(), name(&state.status), state.version))
            }
            None => println!("{}", serde_json::to_string(&state)?),
        }
        last = Some(state);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
        if let Some(last) = &last {
            output::one(format, last)?;
        }
    }
    match last.map(|s| s.status) {
        Some(WorkflowStatus::Completed | WorkflowStatus::ContinuedAsNew) => Ok(()),
        Some(other) => anyhow::bail!("the instance ended {}", name(&other)),
        None => anyhow::bail!("the watch ended before any state"),
    }
}

impl Row for WorkflowInstance {
    fn headers() -> &'static [&'static str] {
        &["ID", "DEFINITION", "STATUS", "EVENTS", "STARTED", "ENDED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            format!("{}@{}", self.definition_key, self.definition_version),
            name(&self.status),
            self.version.to_string(),
            time(&self.started_at),
            opt(&self.ended_at.as_ref().map(time)),
        ]
    }
}

impl Row for WorkflowDefinition {
    fn headers() -> &'static [&'static str] {
        &["KEY", "VERSION", "NAME", "STATUS", "STEPS", "PUBLISHED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.key.clone(),
            self.version.to_string(),
            self.name.clone(),
            name(&self.status),
            self.steps.len().to_string(),
            time(&self.published_at),
        ]
    }
}

impl Row for WorkflowStep {
    fn headers() -> &'static [&'static str] {
        &["STEP", "TYPE", "DOES", "NEXT", "ON FAILURE"]
    }
    fn row(&self) -> Vec<String> {
        let does = match (&self.skill, &self.approver_roles, self.wait_seconds, &self.branches) {
            (Some(skill), ..) => {
                format!("skill {skill}{}", self.skill_version.as_ref().map(|v| format!("@{v}")).unwrap_or_default())
            }
            (_, Some(roles), ..) => format!("approval by {} ({} needed)", roles.join(", "), self.quorum.unwrap_or(1)),
            (_, _, Some(s), _) => format!("wait {s} s"),
            (_, _, _, Some(b)) => format!("branches {} → {}", b.join(", "), opt(&self.join)),
            _ => String::new(),
        };
        vec![self.id.clone(), name(&self.step_type), does, opt(&self.next), opt(&self.on_failure)]
    }
}

impl Row for WorkflowEvent {
    fn headers() -> &'static [&'static str] {
        &["VERSION", "TYPE", "RECORDED", "DATA"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.version.to_string(), self.event_type.clone(), time(&self.recorded_at), self.data.to_string()]
    }
}
