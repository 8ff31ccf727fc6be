//! Developer chores: `cargo xtask provision | up | token | sqlx-prepare`.
//!
//! `up` is the README's one command that brings the system up on this machine: it provisions every
//! subgraph's database and roles, runs migrations, writes local signing keys (tokens, audit checkpoints),
//! builds and starts the subgraphs, prints their URLs and a token to try them with, and stops them all on
//! Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kernel::auth::LocalSigner;

/// Every domain subgraph, its port, and whether it is built yet: `kernel::contracts::SUBGRAPHS`, the one
/// place they are written.
fn domains() -> Vec<(&'static str, u16, bool)> {
    kernel::contracts::SUBGRAPHS.iter().map(|d| (d.name, d.port, d.built)).collect()
}
/// Identity's base URL: the issuer of every token, and the JWKS and introspection endpoints.
const IDENTITY: &str = "http://127.0.0.1:4001";
const ISSUER: &str = "http://127.0.0.1:4001/";
const AUDIENCE: &str = "control-plane";

#[derive(Parser)]
#[command(about = "Control-plane developer tasks")]
struct Cli {
    /// Superuser connection used to create databases and roles.
    #[arg(
        long,
        env = "ADMIN_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        global = true
    )]
    admin_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create every subgraph's database and roles (idempotent) and run the migrations that exist.
    Provision,
    /// Provision, build and run every subgraph and the router until Ctrl-C.
    Up {
        /// Build with --release.
        #[arg(long)]
        release: bool,
        /// Which router serves the supergraph: Hive Router serves everything including subscriptions;
        /// Apollo Router serves queries, mutations and @defer (its subscriptions need a GraphOS licence).
        #[arg(long, value_enum, default_value = "hive")]
        router: RouterKind,
    },
    /// Print a dev bearer token signed with the local key in .dev/jwt.
    Token {
        /// Tenant the token is for; omit for a platform operator.
        #[arg(long)]
        tenant: Option<String>,
        /// Space-separated scopes.
        #[arg(
            long,
            default_value = "tenancy:read tenancy:write quota:consume catalogue:read catalogue:write governance:read governance:write usage:record workflow:read workflow:write lineage:read lineage:write"
        )]
        scopes: String,
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Export each subgraph's SDL to schema/, compose schema/supergraph.graphql offline, and check the
    /// supergraph for unacknowledged breaking changes and for anything needing an Apollo licence.
    Schema {
        /// Change nothing; fail if schema/ is not what the code exports and composes (CI).
        #[arg(long)]
        check: bool,
    },
    /// Regenerate each subgraph's committed `.sqlx/` query data from a migrated database.
    SqlxPrepare {
        /// Only check that the committed data is current (CI).
        #[arg(long)]
        check: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RouterKind {
    Hive,
    Apollo,
    /// Subgraphs only.
    None,
}

/// The one public endpoint: the edge, which refuses hostile requests and proxies the rest to the router.
const PUBLIC_ADDR: &str = "127.0.0.1:4000";
/// The router, behind the edge.
const ROUTER_ADDR: &str = "127.0.0.1:4100";

/// Where cargo puts what it builds.
fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"))
}

/// Builds every crate and target of the workspace in the dev profile, `env` added: one selection (so one
/// set of dependency features), the one `scripts/test` builds and tests with, so nothing here compiles a
/// dependency a second time with other features (`cargo run -p <domain>` would, per domain).
async fn build_workspace(env: &[(&str, String)]) -> anyhow::Result<()> {
    let status = tokio::process::Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .await?;
    anyhow::ensure!(status.success(), "cargo build failed");
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Provision => provision(&cli.admin_url).await,
        Command::Up { release, router } => up(&cli.admin_url, release, router).await,
        Command::Token { tenant, scopes, subject, ttl } => {
            let signer = LocalSigner::load_or_create(&root().join(".dev/jwt"))?;
            let scopes: Vec<&str> = scopes.split_whitespace().collect();
            println!(
                "{}",
                signer.mint(ISSUER, AUDIENCE, &subject, tenant.as_deref(), &scopes, Duration::from_secs(ttl))
            );
            Ok(())
        }
        Command::Schema { check } => schema(check).await,
        Command::SqlxPrepare { check } => sqlx_prepare(&cli.admin_url, check).await,
    }
}

async fn provision(admin_url: &str) -> anyhow::Result<()> {
    for (domain, _, _) in domains() {
        let database = format!("cp_{domain}");
        let roles = kernel::db::provision(admin_url, domain, &database)
            .await
            .with_context(|| format!("provisioning {database}"))?;
        let dir = root().join("migrations").join(domain);
        if dir.is_dir() {
            let owner_url = kernel::db::url_for(admin_url, &roles.owner, &database)?;
            let domain_migrations = kernel::db::domain_migrations(&dir).await?;
            kernel::db::migrate(&owner_url.into(), &domain_migrations)
                .await
                .with_context(|| format!("migrating {database}"))?;
        }
        eprintln!("  {database}: roles {} (migrations), {} (app)", roles.owner, roles.app);
    }
    if let Err(e) = broker_users().await {
        // All or none: a subgraph on another vhost than the rest would never hear them. Without their own
        // users, every subgraph uses the broker's admin on the default vhost (what `amqp_url` reads from the
        // missing passwords).
        let _ = std::fs::remove_dir_all(root().join(".dev/amqp"));
        eprintln!("  no broker users ({e:#}): the subgraphs will use the broker's admin user on the default vhost");
    }
    Ok(())
}

/// The dev stack's RabbitMQ vhost: its exchange, queues and bindings apart from the default vhost's, where
/// the tests declare theirs, so a stack left running (or its durable queues, left behind) never receives
/// or routes a test's messages — governance's audit queue, bound to `#`, would otherwise make every
/// test's unroutable message routable.
const DEV_VHOST: &str = "cp-dev";

/// Each subgraph's own RabbitMQ user (its password in `.dev/amqp/<domain>`, mode 0600) in [`DEV_VHOST`],
/// whose topic permissions let it publish only under its own domain, provisioned through the management
/// API (`RABBITMQ_MANAGEMENT_URL`, default the local broker's). What the stack left on the default vhost
/// before it had its own (queues and exchanges named `<domain>.…`; the tests' are `t-…`) is deleted.
async fn broker_users() -> anyhow::Result<()> {
    let url = std::env::var("RABBITMQ_MANAGEMENT_URL").unwrap_or_else(|_| "http://guest:guest@127.0.0.1:15672".into());
    let management = kernel::broker::Management::new(&url)?;
    management.ensure_vhost(DEV_VHOST).await?;
    let dir = root().join(".dev/amqp");
    std::fs::create_dir_all(&dir)?;
    for (domain, _, _) in domains() {
        let path = dir.join(domain);
        let password = match std::fs::read_to_string(&path) {
            Ok(p) if !p.trim().is_empty() => p.trim().to_owned(),
            _ => {
                let p = uuid::Uuid::new_v4().simple().to_string();
                kernel::auth::write_private(&path, p.as_bytes())?;
                p
            }
        };
        let user = management.provision_domain_user(domain, &password, DEV_VHOST).await?;
        eprintln!(
            "  broker user {user}: publishes only `{domain}.…` on {} in vhost {DEV_VHOST}",
            kernel::broker::EXCHANGE
        );
        let (queues, exchanges) = management.delete_prefixed("/", &format!("{domain}.")).await?;
        if queues + exchanges > 0 {
            eprintln!("    deleted {queues} queue(s) and {exchanges} exchange(s) it had left on the default vhost");
        }
    }
    Ok(())
}

/// The AMQP URL a subgraph connects with: its own broker user in [`DEV_VHOST`] when provisioned, else the
/// broker's admin on the default vhost.
fn amqp_url(domain: &str) -> String {
    match std::fs::read_to_string(root().join(".dev/amqp").join(domain)) {
        Ok(p) if !p.trim().is_empty() => format!("amqp://cp_{domain}:{}@127.0.0.1:5672/{DEV_VHOST}", p.trim()),
        _ => "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
    }
}

fn tools_bin(name: &str) -> PathBuf {
    let base = std::env::var("CP_TOOLS").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/control-plane/tools")
    });
    base.join("bin").join(name)
}

/// The command that starts the chosen router in front of the subgraphs (installing the router first if
/// needed); `None` for no router.
async fn router_command(kind: RouterKind, secret: &str) -> anyhow::Result<Option<tokio::process::Command>> {
    let (bin, install) = match kind {
        RouterKind::None => return Ok(None),
        RouterKind::Hive => (tools_bin("hive_router"), "hive"),
        RouterKind::Apollo => (tools_bin("router"), "apollo"),
    };
    if !bin.exists() {
        eprintln!("the router is not installed yet: building it (about 15 minutes, once)…");
        let status =
            tokio::process::Command::new("bash").arg(root().join("router/install.sh")).arg(install).status().await?;
        anyhow::ensure!(status.success(), "router/install.sh {install} failed");
    }
    let supergraph = root().join("schema/supergraph.graphql");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.current_dir(root()).env("ROUTER_SECRET", secret).stdin(Stdio::null()).kill_on_drop(true);
    let (host, port) = ROUTER_ADDR.split_once(':').expect("host:port");
    match kind {
        RouterKind::Hive => {
            cmd.env("ROUTER_CONFIG_FILE_PATH", root().join("router/hive.yaml"))
                .env("SUPERGRAPH_FILE_PATH", &supergraph)
                .env("HOST", host)
                .env("PORT", port);
        }
        _ => {
            cmd.arg("--supergraph")
                .arg(&supergraph)
                .arg("--config")
                .arg(root().join("router/apollo.yaml"))
                .env("APOLLO_ROUTER_LISTEN", ROUTER_ADDR)
                .env("APOLLO_TELEMETRY_DISABLED", "true");
        }
    }
    Ok(Some(cmd))
}

/// One process `up` runs and keeps running: restarted when it exits, after a pause that doubles from one
/// second up to thirty while it keeps failing (back to one once it has stayed up a minute).
struct Supervised {
    name: String,
    command: Box<dyn Fn() -> tokio::process::Command>,
    child: tokio::process::Child,
    started: std::time::Instant,
    backoff: Duration,
}

impl Supervised {
    fn start(name: &str, command: Box<dyn Fn() -> tokio::process::Command>) -> anyhow::Result<Self> {
        let child = command().spawn().with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            command,
            child,
            started: std::time::Instant::now(),
            backoff: Duration::from_secs(1),
        })
    }
}

/// Waits for any process to exit; its index and exit status.
async fn any_exit(procs: &mut [Supervised]) -> (usize, std::io::Result<std::process::ExitStatus>) {
    let (res, idx, _) = futures::future::select_all(procs.iter_mut().map(|p| Box::pin(p.child.wait()))).await;
    (idx, res)
}

/// Keeps every process running until `stop` (Ctrl-C or SIGTERM for `up`): one that exits (a crash, a kill)
/// is said on the terminal and restarted with backoff, while the others go on serving.
async fn supervise(mut procs: Vec<Supervised>, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    tokio::pin!(stop);
    loop {
        let (i, res) = tokio::select! {
            _ = &mut stop => break,
            exited = any_exit(&mut procs) => exited,
        };
        let p = &mut procs[i];
        if p.started.elapsed() > Duration::from_secs(60) {
            p.backoff = Duration::from_secs(1);
        }
        let how = match res {
            Ok(status) => status.to_string(),
            Err(e) => e.to_string(),
        };
        eprintln!("!! {} exited ({how}); restarting it in {} s", p.name, p.backoff.as_secs());
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(p.backoff) => {}
        }
        match (p.command)().spawn() {
            Ok(child) => {
                p.child = child;
                eprintln!("!! {} restarted", p.name);
            }
            // Not startable now (its binary gone?): tried again after the next pause.
            Err(e) => {
                eprintln!("!! {} could not be restarted: {e}", p.name);
                p.child = tokio::process::Command::new("false").kill_on_drop(true).spawn()?;
            }
        }
        p.started = std::time::Instant::now();
        p.backoff = (p.backoff * 2).min(Duration::from_secs(30));
    }
    eprintln!("stopping…");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn up(admin_url: &str, release: bool, router: RouterKind) -> anyhow::Result<()> {
    // Two different 256-bit secrets: the router's (router → subgraphs) and the internal one (subgraphs →
    // identity's introspection); the subgraphs refuse either when shorter than 32 bytes.
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let internal = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    eprintln!("provisioning databases…");
    provision(admin_url).await?;
    let jwt_dir = root().join(".dev/jwt");
    let signer = LocalSigner::load_or_create(&jwt_dir)?;
    let built: Vec<_> = domains().into_iter().filter(|d| d.2).collect();
    eprintln!("building subgraphs…");
    let mut build = tokio::process::Command::new(env!("CARGO"));
    build.current_dir(root()).args(["build", "--quiet"]);
    if release {
        build.arg("--release");
    }
    for (domain, _, _) in &built {
        build.args(["-p", domain]);
    }
    build.args(["-p", "edge"]);
    anyhow::ensure!(build.status().await?.success(), "cargo build failed");

    let profile = if release { "release" } else { "debug" };
    let target = target_dir();
    // Identity starts first: it is the issuer whose JWKS the others load at start-up.
    let http = reqwest::Client::new();
    let mut procs = Vec::new();
    let mut ports = Vec::new();
    for (domain, port, _) in &built {
        let database = format!("cp_{domain}");
        let roles = kernel::db::Roles::for_domain(domain);
        let bin = target.join(profile).join(domain);
        if *domain == "governance" {
            // Audit checkpoints are signed with a key of this machine's, made once, by configRef.
            let key = root().join(".dev/audit/checkpoint-key");
            if !key.exists() {
                let made = tokio::process::Command::new(&bin)
                    .args(["audit-keygen", "--name", "control-plane.local/audit", "--out"])
                    .arg(&key)
                    .stdout(Stdio::null())
                    .status()
                    .await?;
                anyhow::ensure!(made.success(), "governance audit-keygen failed");
            }
        }
        let (domain, port) = (*domain, *port);
        let env: Vec<(String, String)> = vec![
            ("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
            ("DATABASE_URL".into(), kernel::db::url_for(admin_url, &roles.app, &database)?),
            ("MIGRATE_DATABASE_URL".into(), kernel::db::url_for(admin_url, &roles.owner, &database)?),
            ("JWT_ISSUER".into(), ISSUER.into()),
            ("JWT_AUDIENCE".into(), AUDIENCE.into()),
            ("ROUTER_SECRET".into(), secret.clone()),
            ("INTERNAL_SECRET".into(), internal.clone()),
            ("AMQP_URL".into(), amqp_url(domain)),
        ];
        let own: Vec<(String, String)> = match domain {
            "governance" => vec![
                ("AUDIT_CHECKPOINT_KEY".into(), format!("file:{}", root().join(".dev/audit/checkpoint-key").display())),
                ("AUDIT_EXPORT_DIR".into(), root().join(".dev/audit-exports").display().to_string()),
                ("JWKS".into(), format!("{IDENTITY}/.well-known/jwks.json")),
                ("IDENTITY_URL".into(), IDENTITY.into()),
            ],
            // The signing key by configRef: a file here, a Key Vault or Vault reference in production.
            "identity" => vec![("SIGNING_KEYS".into(), format!("file:{}", jwt_dir.join("signing-key").display()))],
            "lineage" => vec![
                ("JWKS".into(), format!("{IDENTITY}/.well-known/jwks.json")),
                ("IDENTITY_URL".into(), IDENTITY.into()),
                ("ARTIFACT_STORE_DIR".into(), root().join(".dev/artifact-bodies").display().to_string()),
            ],
            _ => vec![
                ("JWKS".into(), format!("{IDENTITY}/.well-known/jwks.json")),
                ("IDENTITY_URL".into(), IDENTITY.into()),
            ],
        };
        let command = move || {
            let mut cmd = tokio::process::Command::new(&bin);
            cmd.arg("serve").envs(env.iter().chain(&own).cloned()).stdin(Stdio::null()).kill_on_drop(true);
            cmd
        };
        procs.push(Supervised::start(domain, Box::new(command))?);
        // Identity starts first: it is the issuer whose JWKS the others load at start-up.
        let url = format!("http://127.0.0.1:{port}/health/ready");
        wait_ready(domain, &url, || http.get(&url)).await?;
        ports.push((domain, port));
    }
    let routed = router != RouterKind::None;
    if let Some(first) = router_command(router, &secret).await? {
        // The command is built once (the install check runs once); a restart builds the same again.
        let again = move || {
            let mut cmd = tokio::process::Command::new(first.as_std().get_program());
            cmd.args(first.as_std().get_args())
                .envs(first.as_std().get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))))
                .current_dir(root())
                .stdin(Stdio::null())
                .kill_on_drop(true);
            cmd
        };
        procs.push(Supervised::start("the router", Box::new(again))?);
        let url = format!("http://{ROUTER_ADDR}/graphql");
        wait_ready("the router", &url, || http.post(&url).json(&serde_json::json!({ "query": "{ __typename }" })))
            .await?;
        let edge_bin = target.join(profile).join("edge");
        // What is not GraphQL goes straight to its subgraph: lineage's bodies and OpenLineage ingestion,
        // identity's token endpoint and JWKS.
        let passes: Vec<String> = ports
            .iter()
            .flat_map(|(domain, port)| {
                let paths: &[&str] = match *domain {
                    "lineage" => &["/api/v1/"],
                    "identity" => &["/oauth/token", "/oauth/revoke", "/.well-known/jwks.json"],
                    _ => &[],
                };
                paths.iter().map(move |p| format!("--pass={p}=http://127.0.0.1:{port}"))
            })
            .collect();
        let edge_secret = secret.clone();
        let edge = move || {
            let mut cmd = tokio::process::Command::new(&edge_bin);
            cmd.args(["--listen", PUBLIC_ADDR, "--upstream", &format!("http://{ROUTER_ADDR}")])
                .args(&passes)
                .arg(format!("--pages=/dashboard/={}", root().join("clients/dashboard/public").display()))
                .env("ROUTER_SECRET", &edge_secret)
                .stdin(Stdio::null())
                .kill_on_drop(true);
            cmd
        };
        procs.push(Supervised::start("the edge", Box::new(edge))?);
        let url = format!("http://{PUBLIC_ADDR}/health");
        wait_ready("the edge", &url, || http.get(&url)).await?;
    }
    println!("\nThe control plane is up.\n");
    if routed {
        let name = if router == RouterKind::Hive { "Hive Router" } else { "Apollo Router" };
        println!("  GraphQL (the one public endpoint, {name} behind the edge):  http://{PUBLIC_ADDR}/graphql");
        if router == RouterKind::Hive {
            println!("  subscriptions (graphql-transport-ws):                        ws://{PUBLIC_ADDR}/graphql");
            println!("  the live dashboard (open the link `cpctl dashboard` prints): http://{PUBLIC_ADDR}/dashboard/");
        }
        println!();
    }
    for (domain, port) in &ports {
        println!("  {domain:<10} subgraph http://127.0.0.1:{port}/graphql (router only), health /health/ready, metrics /metrics");
    }
    let operator =
        signer.mint(ISSUER, AUDIENCE, "dev-operator", None, &["platform:admin"], Duration::from_secs(8 * 3600));
    println!("\nA platform-operator token (8 h), for the examples in the README:\n\n  export CP_TOKEN={operator}\n");
    println!(
        "Tenant tokens: cargo xtask token --tenant <slug>\nCtrl-C stops everything; a process that exits is restarted."
    );
    supervise(procs, interrupted()).await
}

/// Installs the pinned Node tools (composer, schema diff, graphql-ws client) unless already installed.
pub async fn node_tools() -> anyhow::Result<()> {
    let dir = root().join("router");
    let installed = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (std::fs::metadata(&installed), std::fs::metadata(&lock)) {
        (Ok(i), Ok(l)) => i.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        eprintln!("installing the pinned Node schema tools (npm ci)…");
        let status = tokio::process::Command::new("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .status()
            .await
            .context("running npm (Node.js 20+ and npm are needed for schema composition)")?;
        anyhow::ensure!(status.success(), "npm ci failed");
    }
    Ok(())
}

/// `supergraph.yaml` as the domain table gives it: every built subgraph at its port on this machine.
fn supergraph_config() -> String {
    let mut out = String::from(
        "# The supergraph, in rover's config format. Composed offline (no rover, no network) by\n\
         # `cargo xtask schema`, which exports each subgraph's SDL to schema/<name>.graphql and composes\n\
         # schema/supergraph.graphql. routing_url is where the routers reach each subgraph on this machine;\n\
         # compose.yaml overrides them for containers. Written by `cargo xtask schema` from\n\
         # kernel::contracts::SUBGRAPHS: change the table, not this file.\n\
         federation_version: =2.5.0\nsubgraphs:\n",
    );
    for (domain, port, _) in domains().into_iter().filter(|d| d.2) {
        out.push_str(&format!(
            "  {domain}:\n    routing_url: http://127.0.0.1:{port}/graphql\n    schema:\n      file: ./schema/{domain}.graphql\n"
        ));
    }
    out
}

/// `router/hive.compose.yaml` with its container routing URLs (`override_subgraph_urls`) from the domain
/// table; the rest of the file is kept as written.
fn hive_compose_config(current: &str) -> anyhow::Result<String> {
    const START: &str = "override_subgraph_urls:\n  subgraphs:\n";
    let at = current.find(START).context("router/hive.compose.yaml has no override_subgraph_urls block")?;
    let body = at + START.len();
    // The block is the indented lines after its head.
    let end =
        body + current[body..].split_inclusive('\n').take_while(|l| l.starts_with("    ")).map(str::len).sum::<usize>();
    let mut urls = String::new();
    for (domain, port, _) in domains().into_iter().filter(|d| d.2) {
        urls.push_str(&format!("    {domain}:\n      url: http://{domain}:{port}/graphql\n"));
    }
    Ok(format!("{}{urls}{}", &current[..body], &current[end..]))
}

/// Writes (or with `check`, compares) the files the domain table generates; returns the stale ones.
fn routing_files(check: bool) -> anyhow::Result<Vec<String>> {
    let hive = root().join("router/hive.compose.yaml");
    let current_hive = std::fs::read_to_string(&hive)?;
    let files = [
        ("supergraph.yaml", root().join("supergraph.yaml"), supergraph_config()),
        ("router/hive.compose.yaml", hive, hive_compose_config(&current_hive)?),
    ];
    let mut stale = Vec::new();
    for (name, path, wanted) in files {
        if std::fs::read_to_string(&path).unwrap_or_default() == wanted {
            continue;
        }
        if check {
            stale.push(name.to_owned());
        } else {
            std::fs::write(&path, wanted)?;
            eprintln!("  wrote {name}");
        }
    }
    // compose.yaml is written by hand (each service has more than a port); it must agree with the table.
    let compose = std::fs::read_to_string(root().join("compose.yaml"))?;
    for (domain, port, _) in domains().into_iter().filter(|d| d.2) {
        let listen = format!("LISTEN_ADDR: 0.0.0.0:{port}");
        anyhow::ensure!(
            compose.contains(&format!("\n  {domain}:\n")) && compose.contains(&listen),
            "compose.yaml has no `{domain}` service listening on {port} (kernel::contracts::SUBGRAPHS)"
        );
    }
    Ok(stale)
}

async fn schema(check: bool) -> anyhow::Result<()> {
    node_tools().await?;
    let mut stale = routing_files(check)?;
    build_workspace(&[]).await?;
    for (domain, _, built) in domains() {
        if !built {
            continue;
        }
        let out =
            tokio::process::Command::new(target_dir().join("debug").join(domain)).arg("print-schema").output().await?;
        anyhow::ensure!(out.status.success(), "{domain} print-schema failed: {}", String::from_utf8_lossy(&out.stderr));
        let path = root().join("schema").join(format!("{domain}.graphql"));
        let current = std::fs::read(&path).unwrap_or_default();
        if current != out.stdout {
            if check {
                stale.push(format!("schema/{domain}.graphql"));
            } else {
                std::fs::write(&path, &out.stdout)?;
                eprintln!("  wrote schema/{domain}.graphql");
            }
        }
    }
    anyhow::ensure!(
        stale.is_empty(),
        "{} differ from what the subgraphs and the domain table give: run `cargo xtask schema` and commit",
        stale.join(", ")
    );
    let tools = root().join("router/schema-tools.mjs");
    let steps: [&[&str]; 3] = [if check { &["compose", "--check"] } else { &["compose"] }, &["breaking"], &["licence"]];
    for args in steps {
        let status = tokio::process::Command::new("node").arg(&tools).args(args).status().await?;
        anyhow::ensure!(status.success(), "schema check `{}` failed", args.join(" "));
    }
    Ok(())
}

/// Polls `request` until it answers 2xx, for up to 30 seconds.
async fn wait_ready(what: &str, url: &str, request: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<()> {
    for _ in 0..150 {
        if request().send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("{what} did not become ready at {url}")
}

async fn sqlx_prepare(admin_url: &str, check: bool) -> anyhow::Result<()> {
    provision(admin_url).await?;
    // Everything built first from the committed data, so that each pass below recompiles only the domain
    // it touches (another domain's stale crate would expand its queries against the wrong database).
    build_workspace(&[]).await.context("building the workspace from the committed .sqlx data")?;
    // Every domain with a crate, served yet or not: its queries are compiled either way.
    for (domain, _, _) in domains() {
        let crate_dir = root().join("subgraphs").join(domain);
        if !crate_dir.exists() {
            continue;
        }
        let committed = crate_dir.join(".sqlx");
        // Written beside the committed data and swapped in only once the build succeeded: a failed pass
        // leaves the committed data as it was.
        let out = std::env::temp_dir().join(format!("cp-sqlx-{domain}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        // Touching a source file makes cargo re-expand the domain's query macros (against its own database;
        // no other crate has any), which write into SQLX_OFFLINE_DIR. A workspace build rather than a check
        // of the one crate: its artifacts are the ones the tests use, with the same dependency features.
        let lib = crate_dir.join("src/lib.rs");
        std::fs::OpenOptions::new().append(true).open(&lib)?.set_modified(std::time::SystemTime::now())?;
        build_workspace(&[
            ("SQLX_OFFLINE", "false".into()),
            ("SQLX_OFFLINE_DIR", out.display().to_string()),
            ("DATABASE_URL", kernel::db::url_for(admin_url, "postgres", &format!("cp_{domain}"))?),
        ])
        .await
        .with_context(|| format!("building with {domain}'s queries checked against its database"))?;
        if check {
            let diff = tokio::process::Command::new("diff").arg("-r").arg(&committed).arg(&out).status().await?;
            anyhow::ensure!(
                diff.success(),
                "subgraphs/{domain}/.sqlx is stale: run `cargo xtask sqlx-prepare` and commit the result"
            );
        } else {
            let _ = std::fs::remove_dir_all(&committed);
            let copied = tokio::process::Command::new("cp").arg("-r").arg(&out).arg(&committed).status().await?;
            anyhow::ensure!(copied.success(), "could not copy {} to {}", out.display(), committed.display());
        }
        eprintln!("  {domain}: .sqlx {}", if check { "is current" } else { "written" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that dies is restarted (with backoff), and the others keep running untouched.
    #[tokio::test]
    async fn a_process_that_exits_is_restarted_and_the_others_keep_serving() {
        let dir = std::env::temp_dir().join(format!("cp-supervise-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // Each start appends a line to its file: the crasher exits at once, the server stays up.
        let starts = |name: &str, script: &'static str| {
            let file = dir.join(name);
            let command: Box<dyn Fn() -> tokio::process::Command> = Box::new(move || {
                let mut cmd = tokio::process::Command::new("sh");
                cmd.args(["-c", script]).env("STARTS", &file).kill_on_drop(true);
                cmd
            });
            command
        };
        let procs = vec![
            Supervised::start("crasher", starts("crasher", "echo start >> \"$STARTS\"; exit 3")).unwrap(),
            Supervised::start("server", starts("server", "echo start >> \"$STARTS\"; exec sleep 600")).unwrap(),
        ];
        let count = |name: &str| std::fs::read_to_string(dir.join(name)).map_or(0, |s| s.lines().count());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watch = async {
            // Backoff: 1 s before the first restart, 2 s before the second.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while count("crasher") < 3 {
                assert!(std::time::Instant::now() < deadline, "the crasher was started {} times", count("crasher"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(count("server"), 1, "the server was never restarted");
            stop.send(()).unwrap();
        };
        let stopped = async move {
            let _ = stopped.await;
        };
        let (supervised, ()) = tokio::join!(supervise(procs, stopped), watch);
        supervised.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
