//! End-to-end harness: the identity, tenancy, catalogue, workflow, governance and lineage subgraphs served on real ports through the
//! production wiring (`test-support`: their relays, consumers and listeners, fresh databases, Redis
//! namespaces and queues of their own), and the real router binaries in front of them as child processes.
//! Identity signs with the harness's key, so tokens minted here and tokens identity issues verify alike; the
//! other subgraphs validate API tokens through identity's introspection endpoint.
//!
//! Each app's durable queues are namespaced (`test-support`), while relays publish under the real routing
//! keys; so that the stack's subgraphs hear each other as in production (catalogue's `RequestApproval`,
//! governance's answers, identity's role bindings, tenancy's usage), the harness also binds their queues to
//! those real keys.
//! A topic exchange copies a message to every bound queue, so this takes nothing from a running stack or
//! another test (they only receive copies they ignore: unknown tenants, unknown changes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kernel::auth::LocalSigner;
use kernel::service::NoConfig;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

pub mod live;

pub use live::Live;
pub use test_support::{AUDIENCE, ISSUER};
/// The routing URL `supergraph.yaml` gives a subgraph (from `kernel::contracts::SUBGRAPHS`); the stack points
/// each at its own port.
fn routing_url(domain: &str) -> String {
    format!("http://127.0.0.1:{}/graphql", kernel::contracts::port(domain))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
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

/// A Python with the pinned `openlineage-python` (tests/openlineage/requirements.txt), made once in a
/// virtual environment under the tools cache, named by the requirements' hash (a new pin makes a new one).
pub async fn openlineage_python() -> PathBuf {
    use sha2::Digest;
    let requirements = repo().join("tests/openlineage/requirements.txt");
    let pins = std::fs::read(&requirements).expect("tests/openlineage/requirements.txt");
    let hash = hex::encode(&sha2::Sha256::digest(&pins)[..8]);
    let root = std::env::var("CP_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/control-plane/tools"));
    let venv = root.join(format!("openlineage-{hash}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return python;
    }
    // Made beside, then moved into place: a run that stops half-way leaves no half-made environment.
    let staging = root.join(format!("openlineage-{hash}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let (staging2, requirements2) = (staging.clone(), requirements.clone());
    tokio::task::spawn_blocking(move || {
        run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&staging2));
        run(std::process::Command::new(staging2.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements2));
    })
    .await
    .unwrap();
    // venv writes its own path into its scripts; python itself runs from anywhere, which is all we use.
    if std::fs::rename(&staging, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging); // another run made it meanwhile
    }
    python
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Identity, tenancy, catalogue, workflow, governance and lineage on real ports, each started through the production wiring by `test-support` on
/// resources of its own (removed when the stack stops or is dropped).
pub struct Stack {
    pub id: String,
    identity: test_support::TestApp<identity::State>,
    tenancy: test_support::TestApp<tenancy::State>,
    catalogue: test_support::TestApp<catalogue::State>,
    workflow: test_support::TestApp<workflow::State>,
    governance: test_support::TestApp<governance::State>,
    lineage: test_support::TestApp<lineage::State>,
    /// Tenancy's `/graphql`.
    pub subgraph_url: String,
    /// Every subgraph's `/graphql`, by name.
    pub subgraph_urls: Vec<(&'static str, String)>,
    pub identity_url: String,
    /// A platform operator's API token, from identity's bootstrap.
    pub operator_api_token: String,
    pub signer: LocalSigner,
    /// The router-to-subgraph secret.
    pub secret: String,
    /// The stack's directory: the supergraph pointed at its ports, router logs.
    pub dir: PathBuf,
    pub http: reqwest::Client,
    /// The verifier key of governance's audit checkpoints, as a partner pins it.
    pub audit_verifier_key: String,
}

/// Every domain's read and write permissions, as the tests' partner clients hold them: all a tenant's
/// principal may hold but an agent's `agent:report` and `lineage:read-restricted` (so redaction applies).
pub const PARTNER_PERMISSIONS: [&str; 15] = [
    "tenancy:write",
    "tenancy:read",
    "quota:consume",
    "identity:read",
    "identity:write",
    "catalogue:read",
    "catalogue:write",
    "governance:read",
    "governance:write",
    "approvals:decide",
    "usage:record",
    "workflow:read",
    "workflow:write",
    "lineage:read",
    "lineage:write",
];

/// A verifier key of the same name as the stack's audit key but another key pair: what a forged
/// checkpoint would be checked with.
pub fn foreign_audit_verifier_key() -> String {
    governance::audit::checkpoint::CheckpointSigner::generate("e2e.example/audit").unwrap().1
}

/// What a stack may be started with beside the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// Identity's `ACCESS_TOKEN_TTL_SECONDS`.
    pub access_token_ttl_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { access_token_ttl_seconds: 900 }
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Stack {
        // Identity: the issuer, signing with the stack's key (so tokens minted here verify like its own).
        let mut builder = test_support::TestApp::<identity::State>::builder();
        let id = builder.id.clone();
        let signer = LocalSigner::from_base64(&LocalSigner::generate("e2e").to_base64()).unwrap();
        let key = builder.dir.join("signing-key");
        kernel::auth::write_private(&key, signer.to_base64().as_bytes()).unwrap();
        builder.config.database_max_connections = 16;
        let (router_secret, internal_secret) =
            (builder.config.router_secret.clone(), builder.config.internal_secret.clone());
        let config = identity::Config {
            access_token_ttl_seconds: options.access_token_ttl_seconds,
            ..identity::Config::with_keys(vec![format!("file:{}", key.display())])
        };
        let identity = builder.start::<identity::State>(&config).await;
        let operator_api_token = identity::bootstrap(&identity.state).await.expect("bootstrap");
        let identity_base = identity.serve().await;

        // Every other subgraph verifies against identity's JWKS URL and introspects API tokens there, and
        // demands the stack's router and internal secrets. (`builder()` is the same for every subgraph.)
        let wired = || {
            let mut builder = test_support::TestApp::<identity::State>::builder();
            builder.config.router_secret = router_secret.clone();
            builder.config.internal_secret = internal_secret.clone();
            builder.config.jwks = Some(format!("{identity_base}/.well-known/jwks.json"));
            builder.config.identity_url = Some(identity_base.clone());
            builder.config.database_max_connections = 16;
            builder
        };
        let tenancy = wired().start::<tenancy::State>(&NoConfig {}).await;
        let subgraph_url = format!("{}/graphql", tenancy.serve().await);
        let catalogue = wired().start::<catalogue::State>(&catalogue::Config::default()).await;
        let catalogue_url = format!("{}/graphql", catalogue.serve().await);
        let workflow = wired().start::<workflow::State>(&NoConfig {}).await;
        let workflow_url = format!("{}/graphql", workflow.serve().await);
        // Governance with its approval expiry worker on a short interval, signing audit checkpoints with a
        // key of the stack's.
        let builder = wired();
        let (signer_key, audit_verifier_key) =
            governance::audit::checkpoint::CheckpointSigner::generate("e2e.example/audit").unwrap();
        let audit_key = builder.dir.join("audit-checkpoint-key");
        governance::audit::checkpoint::write_key(&audit_key, &signer_key).unwrap();
        let config = governance::Config {
            approval_expiry_interval_secs: 1,
            audit_checkpoint_key: Some(format!("file:{}", audit_key.display())),
            // Exports into the app's own folder, four entries an object.
            audit_export_dir: builder.dir.join("audit-exports").display().to_string(),
            audit_export_range: 4,
            ..Default::default()
        };
        let governance = builder.start::<governance::State>(&config).await;
        let governance_url = format!("{}/graphql", governance.serve().await);
        // Lineage with its artifact bodies in its own folder (gone with the app).
        let builder = wired();
        let bodies = builder.dir.join("artifact-bodies").display().to_string();
        let config = lineage::Config { artifact_store_dir: bodies, ..Default::default() };
        let lineage = builder.start::<lineage::State>(&config).await;
        let lineage_url = format!("{}/graphql", lineage.serve().await);

        // The stack's subgraphs hear each other's real routing keys (see the module docs).
        use kernel::contracts::governance::{ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRejected};
        use kernel::envelope::Event;
        bridge(
            &format!("{}.approval-outcomes", catalogue.command_prefix()),
            &[
                ApprovalGranted::routing_key_to(catalogue::events::DOMAIN),
                ApprovalRejected::routing_key_to(catalogue::events::DOMAIN),
                ApprovalExpired::routing_key_to(catalogue::events::DOMAIN),
                ApprovalCancelled::routing_key_to(catalogue::events::DOMAIN),
            ],
        )
        .await;
        bridge(
            &format!("{}.approval-outcomes", workflow.command_prefix()),
            &[
                ApprovalGranted::routing_key_to(workflow::events::DOMAIN),
                ApprovalRejected::routing_key_to(workflow::events::DOMAIN),
                ApprovalExpired::routing_key_to(workflow::events::DOMAIN),
                ApprovalCancelled::routing_key_to(workflow::events::DOMAIN),
            ],
        )
        .await;
        bridge(
            &format!("{}.approval-requests", governance.command_prefix()),
            &[catalogue::events::RequestApproval::routing_key(), workflow::events::RequestApproval::routing_key()],
        )
        .await;
        // Workflow learns the skills catalogue publishes.
        bridge(
            &format!("{}.skills", workflow.command_prefix()),
            &[
                kernel::contracts::catalogue::SkillDefinitionPublished::routing_key(),
                kernel::contracts::catalogue::SkillDefinitionDeprecated::routing_key(),
            ],
        )
        .await;
        bridge(
            &format!("{}.directory", governance.command_prefix()),
            &[
                kernel::contracts::identity::RoleBound::routing_key(),
                kernel::contracts::identity::RoleUnbound::routing_key(),
                kernel::contracts::tenancy::TenantLegalHoldChanged::routing_key(),
            ],
        )
        .await;
        // Lineage records agent tasks' outputs.
        bridge(
            &format!("{}.task-outputs", lineage.command_prefix()),
            &[kernel::contracts::workflow::AgentTaskCompleted::routing_key()],
        )
        .await;
        // Workflow keeps governance's model policies.
        bridge(
            &format!("{}.model-policies", workflow.command_prefix()),
            &[
                kernel::contracts::governance::ModelPolicyPublished::routing_key(),
                kernel::contracts::governance::ModelPolicyDeprecated::routing_key(),
            ],
        )
        .await;
        // Tenancy meters granted quota consumption as usage (README, "Usage and quotas").
        // ...and workflow meters its agent tasks.
        bridge(
            &format!("{}.usage", governance.command_prefix()),
            &[tenancy::events::UsageRecorded::routing_key(), workflow::events::UsageRecorded::routing_key()],
        )
        .await;

        // The committed supergraph, pointed at this stack's subgraphs.
        let dir = std::env::temp_dir().join(format!("cp-e2e-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let supergraph = std::fs::read_to_string(repo().join("schema/supergraph.graphql")).unwrap();
        let identity_url = format!("{identity_base}/graphql");
        let subgraph_urls = vec![
            ("identity", identity_url.clone()),
            ("tenancy", subgraph_url.clone()),
            ("catalogue", catalogue_url.clone()),
            ("workflow", workflow_url.clone()),
            ("governance", governance_url.clone()),
            ("lineage", lineage_url.clone()),
        ];
        let built: Vec<&str> = kernel::contracts::SUBGRAPHS.iter().filter(|d| d.built).map(|d| d.name).collect();
        let started: Vec<&str> = subgraph_urls.iter().map(|(d, _)| *d).collect();
        assert_eq!(started, built, "the stack starts every built subgraph of kernel::contracts::SUBGRAPHS");
        let mut supergraph = supergraph;
        for (domain, url) in &subgraph_urls {
            let routing = routing_url(domain);
            assert!(supergraph.contains(&routing), "the supergraph does not route {domain} to {routing}");
            supergraph = supergraph.replace(&routing, url);
        }
        std::fs::write(dir.join("supergraph.graphql"), supergraph).unwrap();

        Stack {
            id,
            subgraph_urls,
            identity,
            tenancy,
            catalogue,
            workflow,
            governance,
            lineage,
            subgraph_url,
            identity_url,
            operator_api_token,
            signer,
            secret: router_secret.expose_secret().to_owned(),
            dir,
            http: reqwest::Client::new(),
            audit_verifier_key,
        }
    }

    /// Binds governance's audit consumer of this stack to `keys` (`tenancy.#`), so the events published
    /// under them are audited here. Not to `#`: unroutable messages must stay unroutable for other tests.
    pub async fn audit(&self, keys: &[&str]) {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        bridge(&format!("{}.audit", self.governance.command_prefix()), &keys).await;
    }

    /// The routing-key prefix tenancy's command consumer binds in this stack.
    pub fn command_prefix(&self) -> String {
        self.tenancy.command_prefix()
    }

    /// The identity app (its state, config, database).
    pub fn identity(&self) -> &test_support::TestApp<identity::State> {
        &self.identity
    }

    pub fn operator_token(&self) -> String {
        self.signer.mint(ISSUER, AUDIENCE, "op", None, &["platform:admin"], Duration::from_secs(600))
    }

    /// The catalogue app (its state, config, database).
    pub fn catalogue(&self) -> &test_support::TestApp<catalogue::State> {
        &self.catalogue
    }

    /// The workflow app (its state, config, database).
    pub fn workflow(&self) -> &test_support::TestApp<workflow::State> {
        &self.workflow
    }

    /// The lineage app (its state, config, database).
    pub fn lineage(&self) -> &test_support::TestApp<lineage::State> {
        &self.lineage
    }

    /// The governance app (its state, config, database).
    pub fn governance(&self) -> &test_support::TestApp<governance::State> {
        &self.governance
    }

    /// A token of `tenant`'s principal `subject` with `scopes`.
    pub fn token(&self, tenant: &str, subject: &str, scopes: &[&str]) -> String {
        self.signer.mint(ISSUER, AUDIENCE, subject, Some(tenant), scopes, Duration::from_secs(600))
    }

    pub fn member_token(&self, tenant: &str) -> String {
        let scopes = [
            "tenancy:read",
            "tenancy:write",
            "quota:consume",
            "catalogue:read",
            "catalogue:write",
            "governance:read",
            "workflow:read",
            "workflow:write",
        ];
        let member = test_support::principal(&format!("u@{tenant}"));
        self.signer.mint(ISSUER, AUDIENCE, &member, Some(tenant), &scopes, Duration::from_secs(600))
    }

    /// A tenant's service that reports usage: `usage:record` only.
    pub fn producer_token(&self, tenant: &str) -> String {
        self.signer.mint(
            ISSUER,
            AUDIENCE,
            &format!("meter@{tenant}"),
            Some(tenant),
            &["usage:record"],
            Duration::from_secs(600),
        )
    }

    /// Starts Hive Router in front of the subgraphs.
    pub async fn hive(&self) -> Router {
        let port = free_port();
        let (supergraph, secret) = (self.dir.join("supergraph.graphql"), self.secret.clone());
        let command = move || {
            let mut cmd = tokio::process::Command::new(tool("hive_router"));
            cmd.env("ROUTER_CONFIG_FILE_PATH", repo().join("router/hive.yaml"))
                .env("SUPERGRAPH_FILE_PATH", &supergraph)
                .env("HOST", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("ROUTER_SECRET", &secret);
            cmd
        };
        Router::spawn("hive", Box::new(command), port, self).await
    }

    /// Starts Apollo Router in front of the subgraphs.
    pub async fn apollo(&self) -> Router {
        let port = free_port();
        let (supergraph, secret, health) = (self.dir.join("supergraph.graphql"), self.secret.clone(), free_port());
        let command = move || {
            let mut cmd = tokio::process::Command::new(tool("router"));
            cmd.arg("--supergraph")
                .arg(&supergraph)
                .arg("--config")
                .arg(repo().join("router/apollo.yaml"))
                .env("APOLLO_ROUTER_LISTEN", format!("127.0.0.1:{port}"))
                .env("APOLLO_ROUTER_HEALTH_LISTEN", format!("127.0.0.1:{health}"))
                .env("APOLLO_TELEMETRY_DISABLED", "true")
                .env("ROUTER_SECRET", &secret);
            cmd
        };
        Router::spawn("apollo", Box::new(command), port, self).await
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

    /// A service principal of `tenant` holding `permissions` (a role of its own), and an OAuth client of it
    /// with those scopes, made through `url` as an operator: (client id, client secret, principal id).
    pub async fn oauth_client(&self, url: &str, tenant: &str, permissions: &[&str]) -> (String, String, String) {
        let op = self.operator_token();
        let p = self
            .ok(url, &op, "mutation($t: ID) { createPrincipal(tenantId: $t, input: { kind: SERVICE, displayName: \"partner\" }) { id } }", json!({ "t": tenant }))
            .await["createPrincipal"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let role = format!("partner-{p}");
        self.ok(url, &op, "mutation($t: ID, $k: String!, $p: [String!]!) { defineRole(tenantId: $t, input: { key: $k, permissions: $p }) { key } }", json!({ "t": tenant, "k": role, "p": permissions }))
            .await;
        self.ok(
            url,
            &op,
            "mutation($t: ID, $p: ID!, $k: String!) { bindRole(tenantId: $t, principalId: $p, roleKey: $k) }",
            json!({ "t": tenant, "p": p, "k": role }),
        )
        .await;
        let c = self
            .ok(url, &op, "mutation($t: ID, $p: ID!, $s: [String!]!) { createOAuthClient(tenantId: $t, principalId: $p, scopes: $s) { clientSecret client { clientId } } }", json!({ "t": tenant, "p": p, "s": permissions }))
            .await["createOAuthClient"]
            .clone();
        (c["client"]["clientId"].as_str().unwrap().to_owned(), c["clientSecret"].as_str().unwrap().to_owned(), p)
    }

    pub async fn stop(self) {
        let dir = self.dir.clone();
        self.lineage.cleanup().await;
        self.governance.cleanup().await;
        self.workflow.cleanup().await;
        self.catalogue.cleanup().await;
        self.tenancy.cleanup().await;
        self.identity.cleanup().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Also binds `queue` (declared already by its consumer) to the events exchange under each of `keys`.
async fn bridge(queue: &str, keys: &[String]) {
    test_support::consuming(queue).await;
    let ch = kernel::broker::Broker::new(test_support::AMQP_URL.to_owned().into()).channel().await.expect("broker");
    for key in keys {
        ch.queue_bind(
            queue,
            kernel::broker::EXCHANGE,
            key,
            lapin::options::QueueBindOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("binding {queue} to {key}: {e}"));
    }
}

/// How a router process is started (again, on the same port, for a restart).
type RouterCommand = Box<dyn Fn() -> tokio::process::Command + Send + Sync>;

/// A router behind the edge, as the public sees it.
pub struct Router {
    pub name: &'static str,
    /// The public endpoint (the edge).
    pub url: String,
    pub ws_url: String,
    /// The router itself, behind the edge.
    pub router_url: String,
    child: tokio::process::Child,
    command: RouterCommand,
    log: PathBuf,
    edge_stop: tokio_util::sync::CancellationToken,
}

impl Router {
    async fn spawn(name: &'static str, command: RouterCommand, port: u16, stack: &Stack) -> Router {
        let log = stack.dir.join(format!("{name}.log"));
        let router_url = format!("http://127.0.0.1:{port}/graphql");
        let child = Self::start_process(name, &command, &log, &router_url).await;
        // The public endpoint: the edge in front of the router, as its binary serves it (threads with a
        // runtime each, in this process, so a benchmark counts its CPU).
        let mut cfg = edge::Config::new("127.0.0.1:0".parse().unwrap(), format!("http://127.0.0.1:{port}"));
        // What is not GraphQL goes to lineage and identity, as `scripts/up` and compose pass it.
        let base = |domain: &str| {
            let (_, url) = stack.subgraph_urls.iter().find(|(d, _)| *d == domain).expect("the subgraph runs");
            url.trim_end_matches("/graphql").to_owned()
        };
        let (lineage, identity) = (base("lineage"), base("identity"));
        cfg.pass = [
            format!("/api/v1/={lineage}"),
            format!("/oauth/token={identity}"),
            format!("/oauth/revoke={identity}"),
            format!("/.well-known/jwks.json={identity}"),
        ]
        .iter()
        .map(|r| r.parse().expect("a pass route"))
        .collect();
        cfg.router_secret = Some(stack.secret.clone().into());
        // The live dashboard page, as `scripts/up` and compose serve it.
        cfg.pages = vec![format!("/dashboard/={}", repo().join("clients/dashboard/public").display())
            .parse()
            .expect("a pages route")];
        let edge_stop = tokio_util::sync::CancellationToken::new();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = edge::start(cfg, threads, edge_stop.clone()).expect("the edge starts");
        let public = format!("http://{}/graphql", running.addr);
        Router {
            name,
            ws_url: public.replace("http://", "ws://"),
            url: public,
            router_url,
            child,
            command,
            log,
            edge_stop,
        }
    }

    /// Starts the router process (its output appended to `log`) and waits until it answers at `url`.
    async fn start_process(
        name: &str,
        command: &RouterCommand,
        log: &std::path::Path,
        url: &str,
    ) -> tokio::process::Child {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut cmd = command();
        cmd.current_dir(repo()).stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("{name} exited with {status}:\n{log}");
            }
            let probe = http.post(url).json(&json!({ "query": "{ __typename }" })).send().await;
            // Answered, and by this process: one that lost its port to another exits rather than serve.
            if probe.is_ok_and(|r| r.status().is_success()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{name} exited with {status} (its port {url} answered for another process)");
                }
                return child;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{name} did not become ready at {url}:\n{log}");
    }

    /// Stops the router process behind the edge (the edge stays: the public endpoint answers 502 until
    /// [`Router::resume`]).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the router process again on the same port, and waits until it answers.
    pub async fn resume(&mut self) {
        self.child = Self::start_process(self.name, &self.command, &self.log, &self.router_url).await;
    }

    pub async fn stop(mut self) {
        self.edge_stop.cancel();
        let _ = self.child.kill().await;
    }
}

/// Installs the pinned Node tools (for the graphql-ws client) unless present.
pub async fn ensure_node_tools() {
    ensure_npm("router", "graphql-ws").await;
}

/// Installs the pinned npm packages of `folder` (relative to the repository) unless `probe` is there.
pub async fn ensure_npm(folder: &str, probe: &str) {
    let dir = repo().join(folder);
    if !dir.join("node_modules").join(probe).exists() {
        let status = tokio::process::Command::new("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .status()
            .await
            .expect("npm");
        assert!(status.success(), "npm ci failed");
    }
}
