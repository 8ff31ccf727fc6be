//! Workflow: instances started, inspected, cancelled and watched; definitions listed.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use cp_sdk::ops::workflow::{StartWorkflowInput, WorkflowDefinition, WorkflowInstance, WorkflowStatus};
use cp_sdk::Client;
use futures::StreamExt;

use super::{all, json_arg, spinner, PAGE};
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
    },
    /// Start an instance of a definition's latest version.
    Start {
        key: String,
        /// The instance's input, as a JSON object.
        #[arg(long)]
        input: Option<String>,
        /// The platform registry's definition rather than the tenant's own.
        #[arg(long)]
        platform: bool,
        /// Wait until it ends, showing its state as it moves.
        #[arg(long)]
        wait: bool,
    },
    /// An instance's state.
    Show { id: String },
    /// Cancel an instance (its completed steps are compensated).
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Stream an instance's state as it moves, until it ends; reconnects on its own.
    Watch { id: String },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Status {
    Running,
    Waiting,
    AwaitingAgent,
    AwaitingApproval,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Subcommand, Debug)]
pub enum DefinitionCmd {
    /// The tenant's definitions (or the platform registry's).
    List {
        #[arg(long)]
        platform: bool,
    },
}

impl Workflow {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Workflow::Workflow(WorkflowCmd::List { status }) => {
                let status = status.map(|s| match s {
                    Status::Running => WorkflowStatus::Running,
                    Status::Waiting => WorkflowStatus::Waiting,
                    Status::AwaitingAgent => WorkflowStatus::AwaitingAgent,
                    Status::AwaitingApproval => WorkflowStatus::AwaitingApproval,
                    Status::Completed => WorkflowStatus::Completed,
                    Status::Failed => WorkflowStatus::Failed,
                    Status::Cancelled => WorkflowStatus::Cancelled,
                });
                output::list(format, &all(client.workflow_instances(status, None, PAGE)).await?)
            }
            Workflow::Workflow(WorkflowCmd::Start { key, input, platform, wait }) => {
                let input = input.map(|i| json_arg("input", &i)).transpose()?;
                let started = client
                    .start_workflow(StartWorkflowInput { input, platform, ..StartWorkflowInput::new(&key) })
                    .await?;
                if wait {
                    watch(client, format, started.id).await
                } else {
                    output::one(format, &started)
                }
            }
            Workflow::Workflow(WorkflowCmd::Show { id }) => {
                let instance = client
                    .workflow_instance(cynic::Id::new(&id))
                    .await?
                    .with_context(|| format!("no instance {id}"))?;
                output::one(format, &instance)
            }
            Workflow::Workflow(WorkflowCmd::Cancel { id, reason }) => {
                output::one(format, &client.cancel_workflow(cynic::Id::new(id), &reason).await?)
            }
            Workflow::Workflow(WorkflowCmd::Watch { id }) => watch(client, format, cynic::Id::new(id)).await,
            Workflow::Definition(DefinitionCmd::List { platform }) => {
                output::list(format, &all(client.workflow_definitions(platform, PAGE)).await?)
            }
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
