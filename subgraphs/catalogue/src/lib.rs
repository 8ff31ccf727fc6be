//! Catalogue subgraph: what a tenant builds — projects and their environments, the module catalogue and its
//! dependency graph, blueprints (versioned, validated) with the context maps and domain models derived from
//! them, and the agent and skill registries.
//!
//! Each area is a folder with the same three parts — `mod.rs` (its types and rules), `schema.rs` (its share
//! of the query and mutation roots, merged below) and `store.rs` (its SQL, compile-time checked) — so one area
//! can change without reading the others:
//!
//! | folder | owns |
//! |---|---|
//! | `projects/` | projects (the `Project` entity), `Tenant.projects`, the `CreateProject` command |
//! | `environments/` | dev/test/staging/prod configuration, its Redis cache, the approval gate on prod |
//! | `modules/` | the module catalogue: JSONB metadata and its typed filters |
//! | `graph/` | the dependency graph: cycle-free inserts, transitive queries, build order, impact |
//! | `blueprints/` | blueprint versions, validation runs and results (and their retention), context maps |
//! | `registry/` | agent and skill definitions, tenant-owned and platform-wide |
//! | `legal_holds/` | tenancy's legal holds, which the validation-result retention honours |
//!
//! beside `commands.rs` (the commands catalogue accepts), `events.rs` (everything published and accepted) and `loaders.rs`
//! (the per-request DataLoader every area's nested fields batch through). Who may do what is checked in the
//! resolvers through the kernel (`ctx.authorize(READ)`, `kernel::access`).

#![recursion_limit = "256"]

pub mod blueprints;
pub mod commands;
pub mod environments;
pub mod events;
pub mod graph;
pub mod ids;
pub mod legal_holds;
pub mod loaders;
pub mod modules;
pub mod projects;
pub mod registry;

use std::sync::Arc;

use async_graphql::{Data, EmptySubscription, MergedObject, Schema, SchemaBuilder};
use kernel::consumer::RetryPolicy;
use kernel::context::RequestContext;
use kernel::service::{Connections, Consumer, Listener, NoCommand, Worker};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/catalogue");

/// Catalogue's own settings (flags or environment variables of `catalogue serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Roles, any of which may approve a change to a `prod` environment (comma-separated).
    #[arg(long, env = "PROD_APPROVER_ROLES", value_delimiter = ',', default_value = "release-approver")]
    pub prod_approver_roles: Vec<String>,
    /// Approvals a prod change needs.
    #[arg(long, env = "PROD_APPROVAL_QUORUM", default_value_t = 1)]
    pub prod_approval_quorum: u32,
    /// Hours a prod change waits for its approval before governance expires it.
    #[arg(long, env = "PROD_APPROVAL_TTL_HOURS", default_value_t = 72)]
    pub prod_approval_ttl_hours: u32,
    /// Seconds an environment's configuration stays cached in Redis (changes drop it at once).
    #[arg(long, env = "ENVIRONMENT_CACHE_TTL_SECS", default_value_t = 300)]
    pub environment_cache_ttl_secs: u64,
    /// Months of blueprint validation results kept, at least 12 (whole monthly partitions are dropped after).
    #[arg(long, env = "VALIDATION_RETENTION_MONTHS", default_value_t = 12)]
    pub validation_retention_months: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            prod_approver_roles: vec!["release-approver".into()],
            prod_approval_quorum: 1,
            prod_approval_ttl_hours: 72,
            environment_cache_ttl_secs: 300,
            validation_retention_months: 12,
        }
    }
}

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    projects::schema::ProjectQuery,
    environments::schema::EnvironmentQuery,
    modules::schema::ModuleQuery,
    graph::schema::GraphQuery,
    blueprints::schema::BlueprintQuery,
    registry::schema::RegistryQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    projects::schema::ProjectMutation,
    environments::schema::EnvironmentMutation,
    modules::schema::ModuleMutation,
    graph::schema::GraphMutation,
    blueprints::schema::BlueprintMutation,
    registry::schema::RegistryMutation,
);

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    pub config: Config,
}

impl Subgraph for State {
    const NAME: &'static str = "catalogue";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = EmptySubscription;
    type Config = Config;
    type Command = NoCommand;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).enable_federation()
    }

    async fn build(conns: Connections, config: &Config) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.prod_approver_roles.iter().all(|r| r.trim().is_empty()),
            "PROD_APPROVER_ROLES must name at least one role"
        );
        anyhow::ensure!(config.prod_approval_quorum >= 1, "PROD_APPROVAL_QUORUM must be at least 1");
        anyhow::ensure!(
            config.validation_retention_months >= 12,
            "VALIDATION_RETENTION_MONTHS must be at least 12 (validation results are kept a year)"
        );
        Ok(Self { kernel: conns.kernel().await?, config: config.clone() })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn per_request(&self, data: &mut Data, ctx: &RequestContext) {
        if let Ok(access) = kernel::Authorize::token_access(ctx) {
            data.insert(loaders::CatalogueLoader::per_request(self.kernel.db.clone(), access));
        }
    }

    fn consumers(_: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![
            Consumer { spec: commands::spec(retry.clone()), handler: Arc::new(commands::Commands) },
            Consumer {
                spec: environments::approvals::spec(retry.clone()),
                handler: Arc::new(environments::approvals::ApprovalOutcomes),
            },
            Consumer { spec: legal_holds::CONSUMER.spec(retry.clone()), handler: Arc::new(legal_holds::CONSUMER) },
            Consumer {
                spec: blueprints::projection::spec(retry.clone()),
                handler: Arc::new(blueprints::projection::ContextMapProjection),
            },
        ]
    }

    fn listeners(state: &Arc<Self>) -> Vec<Listener> {
        vec![Listener {
            bindings: environments::cache::bindings(),
            on_notice: Arc::new(environments::cache::on_notice(state.clone())),
        }]
    }

    fn workers(_state: &Arc<Self>) -> Vec<Worker<Self>> {
        vec![Worker {
            name: "validation retention",
            every: blueprints::retention::INTERVAL,
            pass: |s| Box::pin(blueprints::retention::pass(s)),
        }]
    }
}
