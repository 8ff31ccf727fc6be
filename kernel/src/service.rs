//! One way to run a subgraph.
//!
//! A subgraph implements [`Subgraph`] on its state type — its name and port, migrations, schema, how it
//! builds its state from the shared connections, and optionally its per-request data (DataLoaders), command
//! consumers, event listeners, extra background tasks and extra HTTP routes — and its `main.rs` is
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     kernel::service::main::<tenancy::State>()
//! }
//! ```
//!
//! which gives it the same commands as every other subgraph: `serve` (config from flags or environment,
//! connect, migrate when `MIGRATE_DATABASE_URL` is set, start the outbox relay, its consumers and listeners
//! and the revocation listener, serve, shut down gracefully on SIGINT/SIGTERM), `print-schema` (federation
//! SDL) and `provision` (database, roles and migrations; a one-shot init job), plus any of its own
//! ([`Subgraph::Command`]). Tests start subgraphs through [`start`] too, so they run the production wiring.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, ObjectType, Schema, SchemaBuilder, SubscriptionType};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::broker::Broker;
use crate::cache::Cache;
use crate::config::KernelConfig;
use crate::consumer::{self, ConsumerSpec, Handler, Notice, RetryPolicy};
use crate::context::RequestContext;
use crate::db::Db;
use crate::outbox::Relay;
use crate::server;

/// Shared handles every subgraph's state holds.
#[derive(Clone)]
pub struct Kernel {
    pub db: Db,
    pub cache: Cache,
    pub broker: Arc<Broker>,
    pub auth: Arc<Authenticator>,
    pub config: Arc<KernelConfig>,
}

/// The connections [`start`] makes before the subgraph builds its state.
pub struct Connections {
    pub db: Db,
    pub cache: Cache,
    pub broker: Arc<Broker>,
    pub config: Arc<KernelConfig>,
}

impl Connections {
    /// The kernel with the standard authenticator: JWTs against `JWKS`, API tokens through identity's
    /// introspection endpoint. Every subgraph but identity (the issuer) uses this.
    pub async fn kernel(self) -> anyhow::Result<Kernel> {
        let auth = server::authenticator(&self.config, &self.cache).await?;
        Ok(self.kernel_with(auth))
    }

    /// The kernel with an authenticator of the subgraph's own.
    pub fn kernel_with(self, auth: Arc<Authenticator>) -> Kernel {
        Kernel { db: self.db, cache: self.cache, broker: self.broker, auth, config: self.config }
    }
}

/// A durable command (or event) consumer a subgraph runs.
pub struct Consumer {
    pub spec: ConsumerSpec,
    pub handler: Arc<dyn Handler>,
}

/// A per-replica listener: every event matching `bindings`, on every replica (cache invalidation, live
/// subscriptions).
pub struct Listener {
    pub bindings: Vec<String>,
    pub on_notice: Arc<dyn Fn(Notice) + Send + Sync>,
}

/// What a domain subgraph declares; the kernel does the rest.
pub trait Subgraph: Send + Sync + Sized + 'static {
    /// `tenancy`: the database is `cp_<NAME>`, the routing-key prefix `<NAME>.`, the binary `<NAME>`.
    const NAME: &'static str;
    /// The port `serve` listens on by default (and `supergraph.yaml` routes to): the domain's entry in
    /// [`crate::contracts::SUBGRAPHS`], where every domain's name and port are written once.
    const PORT: u16 = crate::contracts::port(Self::NAME);

    type Query: ObjectType + 'static;
    type Mutation: ObjectType + 'static;
    type Subscription: SubscriptionType + 'static;
    /// Flags and environment variables of the subgraph's own ([`NoConfig`] when it has none).
    type Config: clap::Args + Clone + std::fmt::Debug + Send + Sync + 'static;
    /// Commands of the subgraph's own beside `serve | print-schema | provision` ([`NoCommand`] when none).
    type Command: clap::Subcommand + Send + 'static;

    fn migrations() -> &'static Migrator;

    /// The schema without runtime data (enough to print the SDL).
    fn schema() -> SchemaBuilder<Self::Query, Self::Mutation, Self::Subscription>;

    /// Builds the state from the shared connections; most subgraphs call `conns.kernel().await?` first.
    fn build(conns: Connections, config: &Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    fn kernel(&self) -> &Kernel;

    /// Per-request data (DataLoaders), added to every request and WebSocket connection.
    fn per_request(&self, _data: &mut Data, _ctx: &RequestContext) {}

    /// Durable consumers (commands addressed to this domain, events it reacts to).
    fn consumers(_state: &Arc<Self>, _retry: &RetryPolicy) -> Vec<Consumer> {
        Vec::new()
    }

    /// Per-replica listeners.
    fn listeners(_state: &Arc<Self>) -> Vec<Listener> {
        Vec::new()
    }

    /// The subgraph's periodic workers ([`Worker`]): the kernel runs them (unless
    /// [`Options::manual_workers`]), and tests step them by name ([`step`]).
    fn workers(_state: &Arc<Self>) -> Vec<Worker<Self>> {
        Vec::new()
    }

    /// Background work of the subgraph's own that is not a periodic pass: spawn it on `background`, which
    /// tells it when to stop ([`Background::shutdown`]) and which graceful shutdown waits for.
    fn tasks(_state: &Arc<Self>, _background: &Background) {}

    /// Public HTTP routes beside `/graphql`, health and metrics, which authenticate on their own terms
    /// (identity's token service: client credentials).
    fn routes(_state: &Arc<Self>) -> axum::Router {
        axum::Router::new()
    }

    /// HTTP routes that act for a caller: the kernel guards them with the router secret like `/graphql`,
    /// and their handlers take [`crate::server::Authenticated`] (the verified bearer token).
    fn protected_routes(_state: &Arc<Self>) -> axum::Router {
        axum::Router::new()
    }

    /// Runs one of the subgraph's own commands.
    fn command(_command: Self::Command) -> impl Future<Output = anyhow::Result<()>> {
        async { anyhow::bail!("{} has no commands of its own", Self::NAME) }
    }
}

/// No subgraph-specific configuration.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NoConfig {}

/// No subgraph-specific commands.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum NoCommand {}

/// `serve`'s arguments: the listen address, the kernel's configuration and the subgraph's own.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs<C: clap::Args> {
    /// Address to listen on (default 127.0.0.1 and the subgraph's port).
    #[arg(long = "listen", env = "LISTEN_ADDR")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub kernel: KernelConfig,
    #[command(flatten)]
    pub own: C,
}

#[derive(clap::Parser)]
struct Cli<C: clap::Args, E: clap::Subcommand> {
    #[command(subcommand)]
    command: Command<C, E>,
}

#[derive(clap::Subcommand)]
enum Command<C: clap::Args, E: clap::Subcommand> {
    /// Serve GraphQL, health and metrics; run the outbox relay, consumers and listeners.
    Serve(Box<ServeArgs<C>>),
    /// Print the federation SDL.
    PrintSchema,
    /// Create the database and its roles if missing, then migrate (a one-shot init job; needs a superuser).
    Provision {
        /// Superuser connection URL.
        #[arg(long, env = "ADMIN_DATABASE_URL")]
        admin_database_url: String,
        /// Database name (default `cp_<subgraph>`).
        #[arg(long, env = "DATABASE_NAME")]
        database: Option<String>,
    },
    #[command(flatten)]
    Own(E),
}

/// A subgraph binary's `main`: parses the command line and runs it on a Tokio runtime; a failure prints
/// its whole cause chain on one line (no backtrace) and exits with status 1.
pub fn main<S: Subgraph>() -> std::process::ExitCode {
    match run_cli::<S>() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e:#}", S::NAME);
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli<S: Subgraph>() -> anyhow::Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    let about = format!("The {} subgraph of the control plane", S::NAME);
    let matches = Cli::<S::Config, S::Command>::command().name(S::NAME).about(about).get_matches();
    let cli = match Cli::<S::Config, S::Command>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::<S>(*args).await,
            Command::PrintSchema => {
                print!("{}", server::federation_sdl(&S::schema().finish()));
                Ok(())
            }
            Command::Provision { admin_database_url, database } => {
                let database = database.unwrap_or_else(|| format!("cp_{}", S::NAME));
                let roles =
                    crate::db::provision_and_migrate(&admin_database_url, S::NAME, &database, S::migrations()).await?;
                eprintln!("{database} is provisioned and migrated (roles {}, {})", roles.owner, roles.app);
                Ok(())
            }
            Command::Own(command) => S::command(command).await,
        }
    })
}

/// How [`start`] runs the background work. Production uses the default; tests isolate their queues.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Retry policy of every durable consumer.
    pub retry: RetryPolicy,
    /// Replaces the domain prefix of every durable consumer's queue and bindings (`tenancy.commands` →
    /// `<namespace>.commands`, `tenancy.ProvisionTenant` → `<namespace>.ProvisionTenant`), so a test's
    /// consumers never take messages meant for a running stack or another test; the relay's unrouted queue
    /// becomes `<namespace>.unrouted`.
    pub namespace: Option<String>,
    /// The subgraph's workers ([`Subgraph::workers`]) do not run on their own: a test steps them with
    /// [`step`], so no pass races what it is checking.
    pub manual_workers: bool,
}

/// A periodic worker a subgraph declares ([`Subgraph::workers`]): partition upkeep, retention, expiry,
/// rollups, exports. The kernel runs its pass at start and then every `every` until shutdown
/// ([`crate::periodic::every`]: a failed pass is logged and retried at the next), and shutdown waits for a
/// pass under way. A pass reads the time it needs from the database (`now()`), never from the caller, so a
/// test moves time by writing rows in the past and steps the pass when it wants ([`step`]).
pub struct Worker<S> {
    /// What the logs call it, and what [`step`] takes.
    pub name: &'static str,
    pub every: Duration,
    pub pass: fn(Arc<S>) -> futures::future::BoxFuture<'static, crate::Result<()>>,
}

/// Runs one pass of `state`'s worker `name` now (a test's step); `NOT_FOUND` naming the workers there are
/// when the subgraph declares none by that name.
pub async fn step<S: Subgraph>(state: &Arc<S>, name: &str) -> crate::Result<()> {
    let workers = S::workers(state);
    let Some(worker) = workers.iter().find(|w| w.name == name) else {
        let names: Vec<&str> = workers.iter().map(|w| w.name).collect();
        return Err(crate::Error::not_found(format!("{} has no worker `{name}` (it has: {names:?})", S::NAME)));
    };
    (worker.pass)(state.clone()).await
}

/// A subgraph's background work — the relay, consumers, listeners and its own tasks: everything is spawned
/// here, told to stop through one token, and waited for at shutdown, so a pass under way (a rollup, an
/// export, a consumer's batch) finishes or rolls back before the process exits instead of being dropped.
#[derive(Clone)]
pub struct Background {
    shutdown: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
}

impl Background {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { shutdown, tracker: tokio_util::task::TaskTracker::new() }
    }

    /// Cancelled when the subgraph stops: background work ends its loop when it is.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Spawns `task` as background work that shutdown waits for.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// How many background tasks are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Waits (at most `grace`) for every background task to end once shutdown was requested; says what
    /// was still running if the grace ran out.
    pub async fn wait(&self, grace: Duration) {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait()).await.is_err() {
            tracing::warn!(running = self.tracker.len(), ?grace, "background work still running at exit");
        }
    }
}

/// A started subgraph: its state, its HTTP app, and the handle that stops its background work.
pub struct Running<S: Subgraph> {
    pub state: Arc<S>,
    pub app: axum::Router,
    /// The durable consumers' specs as started (tests delete their queues afterwards).
    pub consumers: Vec<ConsumerSpec>,
    pub shutdown: CancellationToken,
    /// The background work, which shutdown waits for.
    pub background: Background,
}

/// Connects (migrating first when `MIGRATE_DATABASE_URL` is set), builds the state, starts the background
/// work and builds the HTTP app. Both `serve` and the test-support crate start subgraphs through here.
pub async fn start<S: Subgraph>(
    kernel: KernelConfig,
    own: &S::Config,
    options: &Options,
    shutdown: CancellationToken,
) -> anyhow::Result<Running<S>> {
    let kernel = kernel.resolved(&crate::secrets::Secrets::default()).await?;
    kernel.validate()?;
    if let Some(owner) = &kernel.migrate_database_url {
        crate::db::migrate(owner, S::migrations()).await?;
    }
    let pool = crate::db::connect(&kernel.database_url, kernel.database_max_connections).await?;
    let cache = Cache::connect(&kernel.redis_url, &kernel.redis_namespace).await?;
    let broker = Arc::new(Broker::new(kernel.amqp_url.clone()));
    let conns = Connections { db: Db::new(pool), cache, broker, config: Arc::new(kernel) };
    let state = Arc::new(S::build(conns, own).await?);
    // Access tokens revoked before this replica started are refused by it too.
    if let Err(e) = state.kernel().auth.load_revoked().await {
        tracing::warn!(code = ?e.code(), "could not load revoked access tokens from Redis; relying on events");
    }
    let background = Background::new(shutdown.clone());
    let consumers = spawn_background(&state, options, &background);
    let app = app(&state);
    Ok(Running { state, app, consumers, shutdown, background })
}

/// The subgraph's whole HTTP app.
pub fn app<S: Subgraph>(state: &Arc<S>) -> axum::Router {
    let k = state.kernel();
    let schema = schema(state);
    let per_request: server::PerRequest = {
        let state = state.clone();
        Arc::new(move |data: &mut Data, ctx: &RequestContext| state.per_request(data, ctx))
    };
    let protected = server::protect(S::protected_routes(state), k.config.router_secret.clone(), k.auth.clone());
    server::app(schema, k.clone(), per_request).merge(S::routes(state)).merge(protected)
}

/// The executable schema with the state and the configured limits.
pub fn schema<S: Subgraph>(state: &Arc<S>) -> Schema<S::Query, S::Mutation, S::Subscription> {
    let cfg = &state.kernel().config;
    let builder = S::schema().data(state.clone());
    server::limits(builder, cfg).finish()
}

fn namespaced(name: &str, domain: &str, namespace: &str) -> String {
    match name.strip_prefix(domain).and_then(|rest| rest.strip_prefix('.')) {
        Some(rest) => format!("{namespace}.{rest}"),
        None => format!("{namespace}.{name}"),
    }
}

/// Starts the relay, the durable consumers, the listeners (the subgraph's and the revocation listener)
/// and the subgraph's own tasks. Returns the consumers' specs as started.
fn spawn_background<S: Subgraph>(state: &Arc<S>, options: &Options, background: &Background) -> Vec<ConsumerSpec> {
    let k = state.kernel();
    let shutdown = &background.shutdown;
    let poll = Duration::from_millis(k.config.outbox_poll_ms);
    let mut relay = Relay::new(k.db.clone(), k.broker.clone(), poll, S::NAME);
    relay.publish_timeout = Duration::from_millis(k.config.outbox_publish_timeout_ms);
    if let Some(ns) = &options.namespace {
        relay.unrouted_queue = format!("{ns}.unrouted");
    }
    background.spawn(relay.run(shutdown.clone()));
    let mut specs = Vec::new();
    for Consumer { mut spec, handler } in S::consumers(state, &options.retry) {
        if let Some(ns) = &options.namespace {
            spec.queue = namespaced(&spec.queue, S::NAME, ns);
            spec.bindings = spec.bindings.iter().map(|b| namespaced(b, S::NAME, ns)).collect();
        }
        specs.push(spec.clone());
        background.spawn(consumer::run(k.broker.clone(), k.db.clone(), spec, handler, shutdown.clone()));
    }
    let revocation = Listener {
        bindings: crate::auth::revocation_bindings(),
        on_notice: Arc::new(crate::auth::on_revocation(k.auth.clone())),
    };
    for listener in std::iter::once(revocation).chain(S::listeners(state)) {
        let on_notice = listener.on_notice;
        background.spawn(consumer::listen(
            k.broker.clone(),
            listener.bindings,
            move |notice| on_notice(notice),
            shutdown.clone(),
        ));
    }
    if !options.manual_workers {
        for worker in S::workers(state) {
            let (state, pass) = (state.clone(), worker.pass);
            background.spawn(crate::periodic::every(worker.name, worker.every, shutdown.clone(), move || {
                pass(state.clone())
            }));
        }
    }
    S::tasks(state, background);
    specs
}

/// How long shutdown waits for background work to finish after the last request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// `serve`: starts the subgraph and serves it until SIGINT/SIGTERM, then lets in-flight requests and
/// background work finish (at most [`SHUTDOWN_GRACE`] for the latter).
pub async fn serve<S: Subgraph>(args: ServeArgs<S::Config>) -> anyhow::Result<()> {
    crate::telemetry::init(args.kernel.log_format);
    let listen = args.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], S::PORT)));
    let shutdown = CancellationToken::new();
    server::cancel_on_signal(shutdown.clone());
    let running = start::<S>(args.kernel, &args.own, &Options::default(), shutdown.clone()).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listen, subgraph = S::NAME, "subgraph listening");
    let served = server::serve(listener, running.app, shutdown).await;
    running.background.wait(SHUTDOWN_GRACE).await;
    served
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_background_work_to_finish_its_pass() {
        let shutdown = CancellationToken::new();
        let background = Background::new(shutdown.clone());
        let finished = Arc::new(AtomicBool::new(false));
        background.spawn({
            let (stop, finished) = (background.shutdown(), finished.clone());
            async move {
                stop.cancelled().await;
                // The pass under way when shutdown came takes a while to end.
                tokio::time::sleep(Duration::from_millis(200)).await;
                finished.store(true, Ordering::SeqCst);
            }
        });
        assert_eq!(background.running(), 1);
        shutdown.cancel();
        background.wait(Duration::from_secs(10)).await;
        assert!(finished.load(Ordering::SeqCst), "wait returned before the task ended");
        assert_eq!(background.running(), 0);
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_work_that_ignores_it_after_the_grace() {
        let background = Background::new(CancellationToken::new());
        background.spawn(std::future::pending());
        let started = tokio::time::Instant::now();
        background.wait(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(background.running(), 1);
    }

    #[test]
    fn namespacing_replaces_the_domain_prefix() {
        assert_eq!(namespaced("tenancy.commands", "tenancy", "t-1"), "t-1.commands");
        assert_eq!(namespaced("tenancy.ProvisionTenant", "tenancy", "t-1"), "t-1.ProvisionTenant");
        assert_eq!(namespaced("other.thing", "tenancy", "t-1"), "t-1.other.thing");
    }
}
