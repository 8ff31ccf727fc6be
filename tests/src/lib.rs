//! End-to-end harness: the identity and tenancy subgraphs served on real ports (with their relays,
//! consumers and listeners) on fresh databases, and the real router binaries in front of them as child
//! processes. Identity signs with the harness's key, so tokens minted here and tokens identity issues
//! verify alike; tenancy validates API tokens through identity's introspection endpoint.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kernel::auth::{Authenticator, JwksSource, JwtVerifier, LocalSigner};
use kernel::broker::Broker;
use kernel::cache::Cache;
use kernel::consumer::RetryPolicy;
use kernel::server::Kernel;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const ISSUER: &str = "https://issuer.e2e/";
pub const AUDIENCE: &str = "control-plane";
/// The routing URLs `supergraph.yaml` gives the subgraphs; tests point them at their own ports.
const TENANCY_ROUTING_URL: &str = "http://127.0.0.1:4002/graphql";
const IDENTITY_ROUTING_URL: &str = "http://127.0.0.1:4001/graphql";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn admin_url() -> String {
    std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Where router/install.sh puts the routers.
pub fn tool(name: &str) -> PathBuf {
    let root = std::env::var("CP_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/control-plane/tools"));
    let bin = root.join("bin").join(name);
    assert!(bin.exists(), "{} is not installed: run router/install.sh", bin.display());
    bin
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Stack {
    pub id: String,
    databases: Vec<String>,
    /// This stack's own durable queues, deleted when it stops.
    commands: kernel::consumer::ConsumerSpec,
    pub subgraph_url: String,
    pub identity_url: String,
    /// A platform operator's API token, from identity's bootstrap.
    pub operator_api_token: String,
    pub signer: LocalSigner,
    pub secret: String,
    pub dir: PathBuf,
    shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Stack {
    pub async fn start() -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("cp_t_e2e_{id}");
        let admin = admin_url();
        let roles = kernel::db::provision_and_migrate(&admin, "tenancy", &database, &tenancy::MIGRATIONS)
            .await
            .expect("provision");

        let dir = std::env::temp_dir().join(format!("cp-e2e-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let signer = LocalSigner::from_base64(&LocalSigner::generate("e2e").to_base64()).unwrap();
        std::fs::write(dir.join("jwks.json"), signer.jwks().to_string()).unwrap();
        std::fs::write(dir.join("signing-key"), signer.to_base64()).unwrap();
        let secret = format!("secret-{}", uuid::Uuid::new_v4());
        let shutdown = CancellationToken::new();

        // Identity: the issuer, on its own port.
        let identity_db = format!("cp_t_e2e_id_{id}");
        let id_roles = kernel::db::provision(&admin, "identity", &identity_db).await.expect("provision identity");
        let id_cfg = identity::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            signing_keys: vec![format!("file:{}", dir.join("signing-key").display())],
            kernel: kernel::config::KernelConfig {
                database_url: kernel::db::url_for(&admin, &id_roles.app, &identity_db).unwrap().into(),
                migrate_database_url: Some(kernel::db::url_for(&admin, &id_roles.owner, &identity_db).unwrap().into()),
                database_max_connections: 16,
                redis_url: "redis://127.0.0.1:6379".to_owned().into(),
                redis_namespace: format!("cp-e2e-{id}"),
                amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into(),
                router_secret: secret.clone().into(),
                jwt_issuer: ISSUER.into(),
                jwt_audience: AUDIENCE.into(),
                jwks: None,
                identity_url: None,
                max_depth: 12,
                max_complexity: 5000,
                outbox_poll_ms: 50,
                log_format: kernel::telemetry::LogFormat::Text,
            },
        };
        let id_state = identity::connect(&id_cfg).await.expect("identity");
        identity::spawn_background(&id_state, Duration::from_millis(50), &shutdown);
        let operator_api_token = identity::bootstrap(&id_state).await.expect("bootstrap");
        let id_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let identity_base = format!("http://{}", id_listener.local_addr().unwrap());
        tokio::spawn(kernel::server::serve(id_listener, identity::app(id_state, 12, 5000), shutdown.clone()));

        let app_url = kernel::db::url_for(&admin, &roles.app, &database).unwrap();
        let jwt = JwtVerifier::new(ISSUER, AUDIENCE, JwksSource::File(dir.join("jwks.json")));
        jwt.preload().await.unwrap();
        let cache = Cache::connect(&"redis://127.0.0.1:6379".to_owned().into(), &format!("cp-e2e-{id}")).await.unwrap();
        let introspection = kernel::auth::IntrospectionSource::new(&identity_base, secret.clone().into());
        let auth = Arc::new(Authenticator::new(jwt, Some(Arc::new(introspection)), Some(cache.clone())));
        let state = tenancy::State::new(Kernel {
            pool: kernel::db::connect(&app_url.into(), 16).await.unwrap(),
            cache,
            broker: Arc::new(Broker::new("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into())),
            auth,
            router_secret: secret.clone().into(),
        });
        let retry = RetryPolicy { retries: 3, first: Duration::from_millis(50), last: Duration::from_millis(200) };
        // A command queue of this stack's own, so tests never take commands meant for anyone else.
        let mut commands = tenancy::consumers::command_spec(retry);
        commands.queue = format!("e2e-{id}.commands");
        commands.bindings = vec![format!("e2e-{id}.ProvisionTenant")];
        tenancy::spawn_background(&state, Duration::from_millis(50), commands.clone(), &shutdown);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let subgraph_url = format!("http://{}/graphql", listener.local_addr().unwrap());
        let app = tenancy::app(state, 12, 5000);
        tokio::spawn(kernel::server::serve(listener, app, shutdown.clone()));

        // The committed supergraph, pointed at this test's subgraph.
        let supergraph = std::fs::read_to_string(repo().join("schema/supergraph.graphql")).unwrap();
        assert!(supergraph.contains(TENANCY_ROUTING_URL), "supergraph.yaml's tenancy routing_url changed");
        assert!(supergraph.contains(IDENTITY_ROUTING_URL), "supergraph.yaml's identity routing_url changed");
        let identity_url = format!("{identity_base}/graphql");
        let supergraph =
            supergraph.replace(TENANCY_ROUTING_URL, &subgraph_url).replace(IDENTITY_ROUTING_URL, &identity_url);
        std::fs::write(dir.join("supergraph.graphql"), supergraph).unwrap();

        Stack {
            id,
            databases: vec![database, identity_db],
            commands,
            subgraph_url,
            identity_url,
            operator_api_token,
            signer,
            secret,
            dir,
            shutdown,
            http: reqwest::Client::new(),
        }
    }

    pub fn operator_token(&self) -> String {
        self.signer.mint(ISSUER, AUDIENCE, "op", None, &["platform:admin"], Duration::from_secs(600))
    }

    pub fn member_token(&self, tenant: &str) -> String {
        let scopes = ["tenancy:read", "tenancy:write", "quota:consume"];
        self.signer.mint(ISSUER, AUDIENCE, &format!("u@{tenant}"), Some(tenant), &scopes, Duration::from_secs(600))
    }

    /// Starts Hive Router in front of the subgraph.
    pub async fn hive(&self) -> Router {
        let port = free_port();
        let mut cmd = tokio::process::Command::new(tool("hive_router"));
        cmd.env("ROUTER_CONFIG_FILE_PATH", repo().join("router/hive.yaml"))
            .env("SUPERGRAPH_FILE_PATH", self.dir.join("supergraph.graphql"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("ROUTER_SECRET", &self.secret);
        Router::spawn("hive", cmd, port, &self.dir).await
    }

    /// Starts Apollo Router in front of the subgraph.
    pub async fn apollo(&self) -> Router {
        let port = free_port();
        let mut cmd = tokio::process::Command::new(tool("router"));
        cmd.arg("--supergraph")
            .arg(self.dir.join("supergraph.graphql"))
            .arg("--config")
            .arg(repo().join("router/apollo.yaml"))
            .env("APOLLO_ROUTER_LISTEN", format!("127.0.0.1:{port}"))
            .env("APOLLO_ROUTER_HEALTH_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("APOLLO_TELEMETRY_DISABLED", "true")
            .env("ROUTER_SECRET", &self.secret);
        Router::spawn("apollo", cmd, port, &self.dir).await
    }

    /// POSTs GraphQL to `url` with a bearer token and extra headers; returns the JSON body.
    pub async fn post(&self, url: &str, token: &str, headers: &[(&str, &str)], query: &str, vars: Value) -> Value {
        let mut req = self.http.post(url).bearer_auth(token).json(&json!({ "query": query, "variables": vars }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
    }

    pub async fn ok(&self, url: &str, token: &str, query: &str, vars: Value) -> Value {
        let v = self.post(url, token, &[], query, vars).await;
        assert!(v.get("errors").is_none(), "unexpected errors: {v}");
        v["data"].clone()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(ch) = Broker::new("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into()).channel().await {
            let spec = &self.commands;
            let mut queues = vec![spec.queue.clone(), spec.dead_letter_queue()];
            queues.extend((1..=spec.retry.retries).map(|n| spec.retry_queue(n)));
            for q in queues {
                let _ = ch.queue_delete(&q, lapin::options::QueueDeleteOptions::default()).await;
            }
        }
        for db in &self.databases {
            let _ = kernel::db::drop_database(&admin_url(), db).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Router {
    pub name: &'static str,
    pub url: String,
    pub ws_url: String,
    child: tokio::process::Child,
}

impl Router {
    async fn spawn(name: &'static str, mut cmd: tokio::process::Command, port: u16, dir: &Path) -> Router {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        cmd.current_dir(repo()).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let url = format!("http://127.0.0.1:{port}/graphql");
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
                panic!("{name} exited with {status}:\n{log}");
            }
            let probe = http.post(&url).json(&json!({ "query": "{ __typename }" })).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Router { name, ws_url: url.replace("http://", "ws://"), url, child };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        panic!("{name} did not become ready at {url}:\n{log}");
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Installs the pinned Node tools (for the graphql-ws client) unless present.
pub async fn ensure_node_tools() {
    let dir = repo().join("router");
    if !dir.join("node_modules/graphql-ws").exists() {
        let status = tokio::process::Command::new("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .status()
            .await
            .expect("npm");
        assert!(status.success(), "npm ci failed");
    }
}
