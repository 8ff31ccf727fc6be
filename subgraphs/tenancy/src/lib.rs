//! Tenancy subgraph: tenants, editions, subscriptions, feature flags and quotas.
//!
//! | file | owns |
//! |---|---|
//! | `schema.rs` | query and mutation roots, the `Tenant` entity resolver, who may do what |
//! | `model.rs` | GraphQL types |
//! | `domain.rs` | lifecycle rules and input validation (pure) |
//! | `ops.rs` | provisioning and lifecycle transitions, shared by the API and the command consumer |
//! | `store.rs` | all SQL (compile-time checked) |
//! | `loaders.rs` | per-request DataLoaders |
//! | `flags.rs` | flag evaluation and its caches |
//! | `quota.rs` | quota check-and-increment (Redis in front of PostgreSQL) |
//! | `events.rs` | event payloads and commands |
//! | `consumers.rs` | the `ProvisionTenant` command consumer and cache invalidation |

pub mod consumers;
pub mod domain;
pub mod events;
pub mod flags;
pub mod loaders;
pub mod model;
pub mod ops;
pub mod quota;
pub mod schema;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Schema, SchemaBuilder};
use kernel::broker::Broker;
use kernel::cache::Cache;
use kernel::config::KernelConfig;
use kernel::consumer::{self, ConsumerSpec, RetryPolicy};
use kernel::outbox::Relay;
use kernel::server::{self, Kernel, PerRequest};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::flags::FlagCache;
use crate::loaders::TenancyLoader;
use crate::quota::QuotaGate;
use crate::schema::{MutationRoot, QueryRoot, SubscriptionRoot};

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/tenancy");

pub type TenancySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    pub flags: FlagCache,
    pub quota: QuotaGate,
    /// Every tenancy event this replica hears from RabbitMQ, fanned out to live subscriptions.
    pub events: tokio::sync::broadcast::Sender<Arc<kernel::envelope::Envelope>>,
}

impl State {
    pub fn new(kernel: Kernel) -> Arc<Self> {
        Arc::new(Self {
            flags: FlagCache::new(kernel.cache.clone()),
            quota: QuotaGate::default(),
            events: tokio::sync::broadcast::channel(1024).0,
            kernel,
        })
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:4002")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub kernel: KernelConfig,
}

/// The schema without runtime data: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).enable_federation().enable_subscription_in_federation()
}

pub fn schema(state: Arc<State>, max_depth: usize, max_complexity: usize) -> TenancySchema {
    schema_builder().data(state).limit_depth(max_depth).limit_complexity(max_complexity).finish()
}

/// The subgraph's HTTP app.
pub fn app(state: Arc<State>, max_depth: usize, max_complexity: usize) -> axum::Router {
    let pool = state.kernel.pool.clone();
    let per_request: PerRequest = Arc::new(move |data, ctx| {
        if let Ok(access) = ctx.access() {
            data.insert(TenancyLoader::per_request(pool.clone(), access));
        }
    });
    let kernel = state.kernel.clone();
    server::app(schema(state, max_depth, max_complexity), kernel, per_request)
}

/// Connects to PostgreSQL, Redis and RabbitMQ and builds the state (migrating first when configured).
pub async fn connect(cfg: &KernelConfig) -> anyhow::Result<Arc<State>> {
    if let Some(owner) = &cfg.migrate_database_url {
        kernel::db::migrate(owner, &MIGRATIONS).await?;
    }
    let pool = kernel::db::connect(&cfg.database_url, cfg.database_max_connections).await?;
    let cache = Cache::connect(&cfg.redis_url, &cfg.redis_namespace).await?;
    let broker = Arc::new(Broker::new(cfg.amqp_url.clone()));
    let auth = server::authenticator(cfg, &cache).await?;
    Ok(State::new(Kernel { pool, cache, broker, auth, router_secret: cfg.router_secret.clone() }))
}

/// Starts the outbox relay, the command consumer and the event listener (cache invalidation, live
/// subscriptions).
/// `commands` is normally [`consumers::command_spec`]; tests give each stack a queue of its own.
pub fn spawn_background(state: &Arc<State>, poll: Duration, commands: ConsumerSpec, shutdown: &CancellationToken) {
    let k = &state.kernel;
    tokio::spawn(Relay::new(k.pool.clone(), k.broker.clone(), poll).run(shutdown.clone()));
    tokio::spawn(consumer::run(
        k.broker.clone(),
        k.pool.clone(),
        commands,
        Arc::new(consumers::ProvisionTenantHandler),
        shutdown.clone(),
    ));
    server::spawn_revocation_listener(k, shutdown);
    tokio::spawn(consumer::listen(
        k.broker.clone(),
        consumers::listener_bindings(),
        consumers::on_notice(state.clone()),
        shutdown.clone(),
    ));
}

/// Runs the subgraph until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    kernel::telemetry::init(cfg.kernel.log_format);
    let state = connect(&cfg.kernel).await?;
    let shutdown = CancellationToken::new();
    server::cancel_on_signal(shutdown.clone());
    let commands = consumers::command_spec(RetryPolicy::default());
    spawn_background(&state, Duration::from_millis(cfg.kernel.outbox_poll_ms), commands, &shutdown);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %cfg.listen, "tenancy subgraph listening");
    server::serve(listener, app(state, cfg.kernel.max_depth, cfg.kernel.max_complexity), shutdown).await
}
