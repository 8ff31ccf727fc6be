//! Identity under test: a fresh database, signing keys by `file:` configRef, the whole app via `oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use kernel::auth::LocalSigner;
use kernel::config::KernelConfig;
use kernel::telemetry::LogFormat;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ISSUER: &str = "https://identity.test/";
pub const SECRET: &str = "internal-test-secret";

fn admin_url() -> String {
    std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestApp {
    pub database: String,
    pub state: Arc<identity::State>,
    pub router: axum::Router,
    pub keys: Vec<LocalSigner>,
    pub dir: std::path::PathBuf,
}

/// `keys`: how many signing keys (the first signs).
pub async fn spawn_app(keys: usize) -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = format!("cp_t_identity_{id}");
    let admin = admin_url();
    let roles = kernel::db::provision(&admin, "identity", &database).await.unwrap();
    let dir = std::env::temp_dir().join(format!("cp-identity-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let signers: Vec<LocalSigner> =
        (0..keys).map(|_| LocalSigner::from_base64(&LocalSigner::generate("x").to_base64()).unwrap()).collect();
    let refs: Vec<String> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = dir.join(format!("key-{i}"));
            std::fs::write(&path, s.to_base64()).unwrap();
            format!("file:{}", path.display())
        })
        .collect();
    let cfg = identity::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        signing_keys: refs,
        kernel: KernelConfig {
            database_url: kernel::db::url_for(&admin, &roles.app, &database).unwrap().into(),
            migrate_database_url: Some(kernel::db::url_for(&admin, &roles.owner, &database).unwrap().into()),
            database_max_connections: 8,
            redis_url: "redis://127.0.0.1:6379".to_owned().into(),
            redis_namespace: format!("cp-t-{id}"),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into(),
            router_secret: SECRET.to_owned().into(),
            jwt_issuer: ISSUER.into(),
            jwt_audience: "control-plane".into(),
            jwks: None,
            identity_url: None,
            max_depth: 12,
            max_complexity: 5000,
            outbox_poll_ms: 50,
            log_format: LogFormat::Text,
        },
    };
    let state = identity::connect(&cfg).await.expect("identity state");
    let router = identity::app(state.clone(), 12, 5000);
    TestApp { database, state, router, keys: signers, dir }
}

impl TestApp {
    pub async fn call(&self, req: Request<Body>) -> (u16, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let req = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header(kernel::server::ROUTER_SECRET_HEADER, SECRET)
            .body(Body::from(json!({ "query": query, "variables": variables }).to_string()))
            .unwrap();
        self.call(req).await.1
    }

    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let v = self.gql(token, query, variables).await;
        assert!(v.get("errors").is_none(), "unexpected errors: {v}");
        v["data"].clone()
    }

    /// POSTs a form to the token service, with optional Basic credentials and extra headers.
    pub async fn form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        use base64::Engine;
        let mut req = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            req = req.header(
                "authorization",
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.call(req.body(Body::from(body.to_owned())).unwrap()).await
    }

    pub async fn admin_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&kernel::db::url_for(&admin_url(), "postgres", &self.database).unwrap()).await.unwrap()
    }

    /// A service principal in `tenant` holding a role with `permissions`; returns its id.
    pub async fn service(&self, op: &str, tenant: &str, role: &str, permissions: &[&str]) -> String {
        let p = self
            .ok(op, "mutation($t: ID) { createPrincipal(tenantId: $t, input: { kind: SERVICE, displayName: \"svc\" }) { id } }", json!({ "t": tenant }))
            .await;
        let id = p["createPrincipal"]["id"].as_str().unwrap().to_owned();
        self.ok(op, "mutation($t: ID, $k: String!, $p: [String!]!) { defineRole(tenantId: $t, input: { key: $k, permissions: $p }) { key } }", json!({ "t": tenant, "k": role, "p": permissions }))
            .await;
        self.ok(
            op,
            "mutation($t: ID, $id: ID!, $k: String!) { bindRole(tenantId: $t, principalId: $id, roleKey: $k) }",
            json!({ "t": tenant, "id": id, "k": role }),
        )
        .await;
        id
    }

    pub async fn cleanup(self) {
        self.state.kernel.pool.close().await;
        let _ = kernel::db::drop_database(&admin_url(), &self.database).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {v}"))
}
