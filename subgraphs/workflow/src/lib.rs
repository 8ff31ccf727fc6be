//! Workflow subgraph: versioned workflow definitions, and their instances — event-sourced sagas whose agent
//! tasks run under fenced leases, watched live.
//!
//! | folder | owns |
//! |---|---|
//! | `definitions/` | workflow definitions (steps, their checks, publication), the platform registry, the skills they may name |
//! | `history/` | the event store: an append-only stream per instance, optimistic concurrency, the global order |
//! | `saga/` | the instances running: what each does next, and its unit of work (timers, leases, approvals, usage) |
//! | `agents/` | agent pools, the tasks their agents hold under fenced leases and report on, and the model policies they work under (governance's) |
//! | `process/` | the process-state projection (a table and a Redis hot copy, by the projector), live subscriptions, federation |
//! | `replay/` | a recorded history run again through the saga's decisions, to find where the code now differs; shadow streams and their retention |
//!
//! beside `events.rs` (everything published) and `ids.rs`. Durable timers and fenced leases are the
//! kernel's (`kernel::timers`, `kernel::leases`).

pub mod agents;
pub mod definitions;
pub mod events;
pub mod history;
pub mod ids;
pub mod process;
pub mod replay;
pub mod saga;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema, SchemaBuilder};
use kernel::consumer::RetryPolicy;
use kernel::service::{Connections, Consumer, Listener, NoCommand, NoConfig, Worker};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/workflow");

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(definitions::schema::DefinitionQuery, process::schema::ProcessQuery, agents::schema::AgentQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    definitions::schema::DefinitionMutation,
    saga::schema::SagaMutation,
    agents::schema::AgentMutation,
    process::schema::ProcessMutation,
    replay::schema::ReplayMutation,
);

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    /// What this replica's listener hears, for the live subscriptions.
    pub events: tokio::sync::broadcast::Sender<process::live::Live>,
}

impl Subgraph for State {
    const NAME: &'static str = "workflow";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = process::live::LiveRoot;
    type Config = NoConfig;
    type Command = NoCommand;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, process::live::LiveRoot> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), process::live::LiveRoot)
            .enable_federation()
            .enable_subscription_in_federation()
    }

    async fn build(conns: Connections, _: &NoConfig) -> anyhow::Result<Self> {
        let kernel = conns.kernel().await?;
        // The platform registry, at every start: an upgrade brings its new versions (idempotent).
        let loaded = definitions::registry::load(&kernel.db).await.map_err(|e| anyhow::anyhow!(e.describe()))?;
        tracing::info!(published = loaded.published, unchanged = loaded.unchanged, "workflow registry loaded");
        Ok(Self { kernel, events: process::live::channel() })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn workers(_: &Arc<Self>) -> Vec<Worker<Self>> {
        vec![
            Worker {
                name: "process-state projector",
                every: process::projector::INTERVAL,
                pass: |s| Box::pin(async move { process::projector::catch_up(&s.kernel).await.map(|_| ()) }),
            },
            Worker {
                name: "replay retention",
                every: replay::retention::INTERVAL,
                pass: |s| Box::pin(async move { replay::retention::pass(&s.kernel.db).await.map(|_| ()) }),
            },
            Worker {
                name: "workflow timers",
                every: saga::timers::INTERVAL,
                pass: |s| {
                    Box::pin(async move { saga::timers::fire_due(&s.kernel, chrono::Utc::now()).await.map(|_| ()) })
                },
            },
        ]
    }

    fn listeners(state: &Arc<Self>) -> Vec<Listener> {
        vec![process::live::listener(state.events.clone())]
    }

    fn consumers(state: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![
            Consumer {
                spec: definitions::consumer::spec(retry.clone()),
                handler: Arc::new(definitions::consumer::KnownSkills),
            },
            Consumer {
                spec: saga::approvals::spec(retry.clone()),
                handler: Arc::new(saga::approvals::ApprovalOutcomes { kernel: state.kernel.clone() }),
            },
            Consumer { spec: replay::LEGAL_HOLDS.spec(retry.clone()), handler: Arc::new(replay::LEGAL_HOLDS) },
            Consumer {
                spec: agents::models::spec(retry.clone()),
                handler: Arc::new(agents::models::KnownModelPolicies),
            },
            Consumer {
                spec: saga::commands::spec(retry.clone()),
                handler: Arc::new(saga::commands::Commands { kernel: state.kernel.clone() }),
            },
        ]
    }
}
