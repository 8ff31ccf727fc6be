//! Test harness: a fresh database per test (provisioned with the real roles and migrations), the real
//! Redis and RabbitMQ, and the whole HTTP app driven with `oneshot`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use kernel::auth::{Authenticator, JwksSource, JwtVerifier, LocalSigner};
use kernel::broker::Broker;
use kernel::cache::Cache;
use kernel::consumer::RetryPolicy;
use kernel::server::Kernel;
use serde_json::{json, Value};
use sqlx::PgPool;
use tenancy::State;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub const ISSUER: &str = "https://issuer.test/";
pub const AUDIENCE: &str = "control-plane";
pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS: &str = "redis://127.0.0.1:6379";
pub const ROUTER_SECRET: &str = "test-router-secret";

pub fn admin_url() -> String {
    std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Drops test databases a crashed earlier run left behind, once per test process.
async fn sweep_stale_databases() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let pool = PgPool::connect(&admin_url()).await.expect("admin connection");
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'cp\\_t\\_%' \
                 AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '2 hours'",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            for db in stale {
                let _ = kernel::db::drop_database(&admin_url(), &db).await;
            }
        })
        .await;
}

pub struct Options {
    /// Run the outbox relay, command consumer and invalidation listener.
    pub background: bool,
    /// Where the app's broker connection goes (a proxy, in the broker-outage test).
    pub amqp_url: String,
    /// Routing-key prefix the command consumer binds (unique per test, so tests don't share commands).
    pub command_prefix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self { background: false, amqp_url: AMQP.into(), command_prefix: None }
    }
}

pub struct TestApp {
    pub id: String,
    pub database: String,
    pub router: axum::Router,
    pub state: Arc<State>,
    pub pool: PgPool,
    pub signer: LocalSigner,
    pub app_url: String,
    pub owner_url: String,
    pub shutdown: CancellationToken,
    _jwks_dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    sweep_stale_databases().await;
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = format!("cp_t_tenancy_{id}");
    let admin = admin_url();
    let roles =
        kernel::db::provision_and_migrate(&admin, "tenancy", &database, &tenancy::MIGRATIONS).await.expect("provision");
    let owner_url = kernel::db::url_for(&admin, &roles.owner, &database).unwrap();
    let app_url = kernel::db::url_for(&admin, &roles.app, &database).unwrap();

    let dir = TempDir(std::env::temp_dir().join(format!("cp-test-{id}")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let signer = LocalSigner::generate("test-key");
    let jwks_path = dir.0.join("jwks.json");
    std::fs::write(&jwks_path, signer.jwks().to_string()).unwrap();

    let pool = kernel::db::connect(&app_url.clone().into(), 8).await.expect("app pool");
    // A namespace per test app: every test database gets Redis keys of its own.
    let cache = Cache::connect(&REDIS.into(), &format!("cp-t-{id}")).await.expect("redis");
    let broker = Arc::new(Broker::new(opts.amqp_url.clone().into()));
    let jwt = JwtVerifier::new(ISSUER, AUDIENCE, JwksSource::File(jwks_path));
    jwt.preload().await.expect("jwks");
    let auth = Arc::new(Authenticator::new(jwt, None, Some(cache.clone())));
    let router_secret = ROUTER_SECRET.to_owned().into();
    let state = State::new(Kernel { pool: pool.clone(), cache, broker, auth, router_secret });
    let shutdown = CancellationToken::new();
    if opts.background {
        spawn_background(&state, &opts, &shutdown);
    }
    let router = tenancy::app(state.clone(), 12, 5000);
    TestApp { id, database, router, state, pool, signer, app_url, owner_url, shutdown, _jwks_dir: dir }
}

fn spawn_background(state: &Arc<State>, opts: &Options, shutdown: &CancellationToken) {
    let k = &state.kernel;
    tokio::spawn(
        kernel::outbox::Relay::new(k.pool.clone(), k.broker.clone(), Duration::from_millis(50)).run(shutdown.clone()),
    );
    if let Some(prefix) = &opts.command_prefix {
        let mut spec = tenancy::consumers::command_spec(fast_retry());
        spec.queue = format!("{prefix}.commands");
        spec.bindings = vec![format!("{prefix}.ProvisionTenant")];
        tokio::spawn(kernel::consumer::run(
            k.broker.clone(),
            k.pool.clone(),
            spec,
            Arc::new(tenancy::consumers::ProvisionTenantHandler),
            shutdown.clone(),
        ));
    }
    tokio::spawn(kernel::consumer::listen(
        k.broker.clone(),
        tenancy::consumers::listener_bindings(),
        tenancy::consumers::on_notice(state.clone()),
        shutdown.clone(),
    ));
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy { retries: 3, first: Duration::from_millis(50), last: Duration::from_millis(200) }
}

impl TestApp {
    pub fn operator_token(&self) -> String {
        self.signer.mint(ISSUER, AUDIENCE, "op-1", None, &["platform:admin"], Duration::from_secs(600))
    }

    pub fn tenant_token(&self, tenant: &str, scopes: &[&str]) -> String {
        self.signer.mint(ISSUER, AUDIENCE, &format!("user@{tenant}"), Some(tenant), scopes, Duration::from_secs(600))
    }

    /// A tenant member with every tenant scope.
    pub fn member_token(&self, tenant: &str) -> String {
        self.tenant_token(tenant, &["tenancy:read", "tenancy:write", "quota:consume"])
    }

    /// POSTs a GraphQL request with optional bearer token and extra headers; returns the JSON body.
    pub async fn gql_with(
        &self,
        token: Option<&str>,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> Value {
        let mut req = Request::post("/graphql").header("content-type", "application/json");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(kernel::server::ROUTER_SECRET_HEADER)) {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, ROUTER_SECRET);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        let resp = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.gql_with(Some(token), &[], query, variables).await
    }

    /// Like `gql`, but panics on any error.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let v = self.gql(token, query, variables).await;
        assert!(v.get("errors").is_none(), "unexpected errors: {v:#}");
        v["data"].clone()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Creates and publishes an edition with one monthly `api-calls` quota.
    pub async fn published_edition(&self, id: &str, api_calls: i64) {
        let op = self.operator_token();
        self.ok(
            &op,
            "mutation($id: String!, $n: Int!) { createEdition(input: { id: $id, name: \"Edition\", featureSet: [\"sso\"],
               quotaTemplate: [{ key: \"api-calls\", limit: $n, period: MONTH }] }) { version } }",
            json!({ "id": id, "n": api_calls }),
        )
        .await;
        self.ok(&op, "mutation($id: String!) { publishEdition(id: $id, version: 1) { status } }", json!({ "id": id }))
            .await;
    }

    /// Provisions and activates a tenant on `edition`.
    pub async fn active_tenant(&self, tenant: &str, edition: &str) {
        let op = self.operator_token();
        self.ok(
            &op,
            "mutation($id: ID!, $e: String!) { provisionTenant(input: { id: $id, displayName: \"T\", region: \"eu-west\",
               editionId: $e }) { id } }",
            json!({ "id": tenant, "e": edition }),
        )
        .await;
        self.ok(&op, "mutation($id: ID!) { activateTenant(id: $id) { status } }", json!({ "id": tenant })).await;
    }

    /// A superuser connection to this test's database, for looking behind the API.
    pub async fn admin_pool(&self) -> PgPool {
        PgPool::connect(&kernel::db::url_for(&admin_url(), "postgres", &self.database).unwrap()).await.unwrap()
    }

    pub async fn cleanup(self) {
        self.shutdown.cancel();
        self.pool.close().await;
        let _ = kernel::db::drop_database(&admin_url(), &self.database).await;
    }
}

/// The first error's `extensions.code`.
pub fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {v:#}"))
}

/// A TCP proxy that can be taken down and brought back, to stand between the app and RabbitMQ.
pub struct Proxy {
    pub addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = tokio::sync::watch::channel(true);
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }
}
