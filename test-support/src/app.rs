//! A subgraph under test, started through the production wiring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use kernel::auth::LocalSigner;
use kernel::config::KernelConfig;
use kernel::consumer::RetryPolicy;
use kernel::service::{self, Options};
use kernel::Subgraph;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::resources::{Queues, RedisNamespace, TestDb};

pub const ISSUER: &str = "https://issuer.test/";
pub const AUDIENCE: &str = "control-plane";

/// The key tests mint tokens with; its JWKS is what the app verifies against (identity verifies with its
/// own signing keys instead).
pub type Signer = LocalSigner;

/// A running subgraph on resources of its own, all removed when it is dropped.
pub struct TestApp<S: Subgraph> {
    /// 12 hex characters, unique per app: use it in tenant slugs and names to keep tests apart.
    pub id: String,
    pub state: Arc<S>,
    /// The whole HTTP app, driven with `oneshot` (or served on a port with [`TestApp::serve`]).
    pub router: axum::Router,
    pub signer: Signer,
    /// The configuration the app was started with.
    pub config: KernelConfig,
    /// A directory of the app's own (JWKS, keys), removed on drop.
    pub dir: PathBuf,
    pub shutdown: CancellationToken,
    /// The app's background work (relay, consumers, workers), which `cleanup` waits for.
    pub background: kernel::service::Background,
    // Dropped last, in this order: the app's connections are gone by then.
    pub queues: Queues,
    pub redis: RedisNamespace,
    pub db: TestDb,
}

/// Sets up an app before it starts: its configuration, its directory, how its background work runs.
pub struct Builder {
    pub id: String,
    pub config: KernelConfig,
    pub options: Options,
    pub dir: PathBuf,
    pub signer: Signer,
}

/// Retries fast enough for tests: 3 retries, 50 ms → 200 ms.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy { retries: 3, first: Duration::from_millis(50), last: Duration::from_millis(200) }
}

impl Builder {
    /// The subgraph's workers do not run on their own: the test steps them ([`TestApp::step`]).
    pub fn manual_workers(mut self) -> Self {
        self.options.manual_workers = true;
        self
    }

    /// Starts `S` with its own configuration `own`.
    pub async fn start<S: Subgraph>(mut self, own: &S::Config) -> TestApp<S> {
        let db = TestDb::create(S::NAME, &self.id, S::migrations()).await;
        let redis = RedisNamespace::new(&self.id);
        self.config.database_url = db.app_url.clone().into();
        self.config.migrate_database_url = None;
        self.config.redis_namespace = redis.0.clone();
        if self.config.jwks.is_none() {
            let path = self.dir.join("jwks.json");
            std::fs::write(&path, self.signer.jwks().to_string()).unwrap();
            self.config.jwks = Some(path.display().to_string());
        }
        let shutdown = CancellationToken::new();
        let running = service::start::<S>(self.config.clone(), own, &self.options, shutdown.clone())
            .await
            .unwrap_or_else(|e| panic!("starting {}: {e:#}", S::NAME));
        let mut queues = Queues {
            queues: running.consumers.iter().flat_map(Queues::of).collect(),
            exchanges: running.consumers.iter().map(|c| c.republish_exchange()).collect(),
        };
        // The relay's unrouted queue and exchange (the namespace's, so never a running stack's).
        if let Some(ns) = &self.options.namespace {
            queues.queues.push(format!("{ns}.unrouted"));
            queues.exchanges.push(format!("{ns}.unrouted"));
        }
        TestApp {
            id: self.id,
            state: running.state,
            router: running.app,
            signer: self.signer,
            config: self.config,
            dir: self.dir,
            shutdown,
            background: running.background,
            queues,
            redis,
            db,
        }
    }
}

impl<S: Subgraph> TestApp<S> {
    /// A builder with a fresh id and directory, the test [`crate::config`], fast retries and durable
    /// queues namespaced by the id (so its consumers never take a running stack's or another test's messages).
    pub fn builder() -> Builder {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let dir = std::env::temp_dir().join(format!("cp-test-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let options = Options { retry: fast_retry(), namespace: Some(format!("t-{id}")), manual_workers: false };
        Builder { id, config: crate::config(), options, dir, signer: LocalSigner::generate("test-key") }
    }

    /// Starts `S` with the defaults of [`TestApp::builder`].
    pub async fn start(own: &S::Config) -> Self {
        Self::builder().start(own).await
    }

    /// Runs one pass of the subgraph's worker `name` now ([`kernel::service::step`]).
    pub async fn step(&self, worker: &str) {
        kernel::service::step(&self.state, worker).await.unwrap_or_else(|e| panic!("{worker}: {}", e.describe()));
    }

    /// The routing-key prefix this app's durable consumers bind (commands go to `<prefix>.<Command>`).
    pub fn command_prefix(&self) -> String {
        format!("t-{}", self.id)
    }

    /// The app's database pool (app role: row-level security applies).
    pub fn pool(&self) -> &sqlx::PgPool {
        self.state.kernel().db.shared()
    }

    pub async fn admin_pool(&self) -> sqlx::PgPool {
        self.db.admin_pool().await
    }

    pub fn operator_token(&self) -> String {
        self.signer.mint(
            ISSUER,
            AUDIENCE,
            "op-1",
            None,
            &[kernel::permissions::PLATFORM_ADMIN],
            Duration::from_secs(600),
        )
    }

    /// A token of [`tenant_subject`]`(tenant)`, a principal of `tenant`, with `scopes`.
    pub fn tenant_token(&self, tenant: &str, scopes: &[&str]) -> String {
        self.signer.mint(ISSUER, AUDIENCE, &tenant_subject(tenant), Some(tenant), scopes, Duration::from_secs(600))
    }

    /// Sends `req` to the app; returns the status and the body as JSON (`Null` when it is not JSON).
    pub async fn call(&self, req: Request<Body>) -> (u16, Value) {
        let (status, bytes) = self.call_raw(req).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Sends `req` to the app; returns the status and the body's bytes.
    pub async fn call_raw(&self, req: Request<Body>) -> (u16, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, bytes.to_vec())
    }

    /// POSTs a GraphQL request with the router secret (unless `headers` carry one), an optional bearer
    /// token and extra headers; returns the JSON body.
    pub async fn gql_with(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> Value {
        let mut req = Request::post("/graphql").header("content-type", "application/json");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(kernel::server::ROUTER_SECRET_HEADER)) {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, self.config.router_secret.expose_secret());
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, bytes) = self.call_raw(req.body(Body::from(body)).unwrap()).await;
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}, not JSON: {}", String::from_utf8_lossy(&bytes)))
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.gql_with(Some(token), &[], query, variables).await
    }

    /// Like `gql`, but panics on any error and returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        crate::data(&self.gql(token, query, variables).await).clone()
    }

    /// GETs `path`; returns the status and the body as text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, bytes) = self.call_raw(Request::get(path).body(Body::empty()).unwrap()).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Serves the app on a free local port until the app stops; returns its base URL (`http://127.0.0.1:…`).
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(kernel::server::serve(listener, self.router.clone(), self.shutdown.clone()));
        base
    }

    /// Stops the background work, waits for it to end, and closes the pool; the database, Redis keys and
    /// queues go with the drop.
    pub async fn cleanup(self) {
        self.shutdown.cancel();
        self.background.wait(std::time::Duration::from_secs(10)).await;
        self.state.kernel().db.close().await;
    }
}

impl<S: Subgraph> Drop for TestApp<S> {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The subject of [`TestApp::tenant_token`]'s tokens: a principal id (tokens from identity carry one), the
/// same for every token of one tenant, so a test can name the caller it acted as.
pub fn tenant_subject(tenant: &str) -> String {
    principal(&format!("user@{tenant}"))
}

/// The principal id a test calls `name` (`"alice"`): a UUID derived from the name, stable across runs, as
/// identity would have given it. Tests that speak of people by name mint their tokens with it.
pub fn principal(name: &str) -> String {
    // FNV-1a, spread over 128 bits.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    uuid::Uuid::from_u64_pair(h, h.rotate_left(29) ^ 0x5bd1_e995).to_string()
}
