//! Lineage subgraph: artifacts and their versions — what agents and builds produce, where each body is
//! stored, and where each version stands.
//!
//! | folder | owns |
//! |---|---|
//! | `artifacts/` | artifacts, their versions (semver, content hash, status chain, publication), their storage references; agent tasks' outputs from workflow (`consumer.rs`) |
//! | `bodies/` | versions' bodies in blob storage: streamed upload and download over HTTP (`/api/v1/artifacts/…/body`), the sweeper of abandoned uploads |
//! | `graph/` | the lineage graph (tasks, artifact versions, blueprints, deployments, OpenLineage jobs, runs, datasets): edges recorded once, traversals on `kernel::graph`; catalogue's deployments (`consumer.rs`) |
//! | `retention/` | retention per artifact type (versions and their bodies deleted, never the published one, never under legal hold) |
//! | `openlineage/` | OpenLineage ingestion at Marquez's `POST /api/v1/lineage`: events read against the spec, recorded into the graph |
//!
//! beside `redaction.rs` (who sees the sensitive parts of classified artifacts), `events.rs` (everything
//! published), `ids.rs` and `loaders.rs` (the per-request DataLoader).

pub mod artifacts;
pub mod bodies;
pub mod events;
pub mod graph;
pub mod ids;
pub mod loaders;
pub mod openlineage;
pub mod redaction;
pub mod retention;

use std::sync::Arc;

use async_graphql::{Data, MergedObject, Schema, SchemaBuilder};
use kernel::consumer::RetryPolicy;
use kernel::context::RequestContext;
use kernel::db::Access;
use kernel::service::{Connections, Consumer, NoCommand, Worker};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/lineage");

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(artifacts::schema::ArtifactQuery, graph::schema::GraphQuery, retention::schema::RetentionQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(artifacts::schema::ArtifactMutation, retention::schema::RetentionMutation);

/// Lineage's own settings.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// The folder artifact bodies are stored in (created if missing), unless they go to Azure Blob.
    #[arg(long, env = "ARTIFACT_STORE_DIR", default_value = "artifact-bodies")]
    pub artifact_store_dir: String,
    /// Store bodies in this Azure Blob container instead of the folder (it must exist).
    #[arg(long, env = "ARTIFACT_STORE_AZURE_CONTAINER")]
    pub artifact_store_azure_container: Option<String>,
    /// The Azure storage account (with ARTIFACT_STORE_AZURE_CONTAINER).
    #[arg(long, env = "ARTIFACT_STORE_AZURE_ACCOUNT")]
    pub artifact_store_azure_account: Option<String>,
    /// The account's access key, by `configRef` (`env:VAR`, `file:/path`).
    #[arg(long, env = "ARTIFACT_STORE_AZURE_KEY")]
    pub artifact_store_azure_key: Option<String>,
    /// The blob endpoint, when not `https://<account>.blob.core.windows.net` (Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`; plain http only when named here).
    #[arg(long, env = "ARTIFACT_STORE_AZURE_ENDPOINT")]
    pub artifact_store_azure_endpoint: Option<String>,
    /// Largest artifact body, in bytes (uploads are streamed: memory does not grow with it). The edge's
    /// EDGE_MAX_PASS_BODY_BYTES must be at least this.
    #[arg(long, env = "ARTIFACT_MAX_BODY_BYTES", default_value_t = 4 << 30)]
    pub artifact_max_body_bytes: u64,
    /// Seconds between sweeps of abandoned uploads; 0 turns the sweeper off.
    #[arg(long, env = "ARTIFACT_SWEEP_INTERVAL_SECS", default_value_t = 300)]
    pub artifact_sweep_interval_secs: u64,
    /// Seconds between passes of the retention worker; 0 turns it off.
    #[arg(long, env = "ARTIFACT_RETENTION_INTERVAL_SECS", default_value_t = 3600)]
    pub artifact_retention_interval_secs: u64,
    /// Largest OpenLineage event accepted at `POST /api/v1/lineage`, in bytes.
    #[arg(long, env = "OPENLINEAGE_MAX_EVENT_BYTES", default_value_t = 1 << 20)]
    pub openlineage_max_event_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            artifact_store_dir: "artifact-bodies".into(),
            artifact_store_azure_container: None,
            artifact_store_azure_account: None,
            artifact_store_azure_key: None,
            artifact_store_azure_endpoint: None,
            artifact_max_body_bytes: 4 << 30,
            artifact_sweep_interval_secs: 300,
            artifact_retention_interval_secs: 3600,
            openlineage_max_event_bytes: 1 << 20,
        }
    }
}

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    pub bodies: bodies::Bodies,
    pub config: Config,
    /// The group-commit writer of OpenLineage events.
    pub openlineage: openlineage::Writer,
    /// Lineage's events as the listener receives them, for live subscriptions.
    pub events: tokio::sync::broadcast::Sender<Arc<kernel::envelope::Envelope>>,
}

impl Subgraph for State {
    const NAME: &'static str = "lineage";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = artifacts::live::ArtifactSubscription;
    type Config = Config;
    type Command = NoCommand;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, artifacts::live::ArtifactSubscription> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), artifacts::live::ArtifactSubscription)
            .enable_federation()
            .enable_subscription_in_federation()
    }

    async fn build(conns: Connections, config: &Config) -> anyhow::Result<Self> {
        let kernel = conns.kernel().await?;
        let settings = kernel::blob::BlobSettings {
            prefix: "ARTIFACT_STORE".into(),
            dir: config.artifact_store_dir.clone(),
            azure_container: config.artifact_store_azure_container.clone(),
            azure_account: config.artifact_store_azure_account.clone(),
            azure_key: config.artifact_store_azure_key.clone(),
            azure_endpoint: config.artifact_store_azure_endpoint.clone(),
        };
        let blob = kernel::blob::Blob::open(&settings, &kernel::secrets::Secrets::default()).await?;
        let bodies = bodies::Bodies { blob, max_bytes: config.artifact_max_body_bytes };
        let openlineage = openlineage::writer(kernel.db.clone());
        Ok(Self { kernel, bodies, config: config.clone(), openlineage, events: artifacts::live::channel() })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn per_request(&self, data: &mut Data, ctx: &RequestContext) {
        if let Ok(Access::Tenant(tenant)) = kernel::Authorize::token_access(ctx) {
            data.insert(loaders::LineageLoader::per_request(self.kernel.db.clone(), tenant));
        }
    }

    fn listeners(state: &Arc<Self>) -> Vec<kernel::service::Listener> {
        vec![artifacts::live::listener(state.events.clone())]
    }

    fn protected_routes(state: &Arc<Self>) -> axum::Router {
        bodies::routes::routes(state.clone()).merge(openlineage::routes::routes(state.clone()))
    }

    fn workers(state: &Arc<Self>) -> Vec<Worker<Self>> {
        let mut workers = Vec::new();
        if let secs @ 1.. = state.config.artifact_sweep_interval_secs {
            workers.push(Worker {
                name: "upload sweeper",
                every: std::time::Duration::from_secs(secs),
                pass: |s| Box::pin(bodies::sweeper::pass(s)),
            });
        }
        if let secs @ 1.. = state.config.artifact_retention_interval_secs {
            workers.push(Worker {
                name: "artifact retention",
                every: std::time::Duration::from_secs(secs),
                pass: |s| Box::pin(retention::pass(s)),
            });
        }
        workers
    }

    fn consumers(_: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![
            Consumer {
                spec: artifacts::consumer::spec(retry.clone()),
                handler: Arc::new(artifacts::consumer::AgentOutputs),
            },
            Consumer {
                spec: graph::consumer::spec(retry.clone()),
                handler: Arc::new(graph::consumer::DeploymentEdges),
            },
            Consumer { spec: retention::LEGAL_HOLDS.spec(retry.clone()), handler: Arc::new(retention::LEGAL_HOLDS) },
        ]
    }
}
