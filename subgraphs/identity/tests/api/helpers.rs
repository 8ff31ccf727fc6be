//! Identity under test: started through the production wiring by `test-support`, with its signing keys by
//! `file:` configRef, the whole app driven via `oneshot`.

use std::ops::Deref;

use axum::body::Body;
use axum::http::Request;
use kernel::auth::LocalSigner;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
pub use test_support::{code, AUDIENCE, ISSUER};

pub struct TestApp {
    pub app: test_support::TestApp<identity::State>,
    /// The signing keys, the first signs.
    pub keys: Vec<LocalSigner>,
}

impl Deref for TestApp {
    type Target = test_support::TestApp<identity::State>;
    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

/// `keys`: how many signing keys (the first signs).
pub async fn spawn_app(keys: usize) -> TestApp {
    spawn_app_tuned(keys, |_| {}).await
}

/// An app whose outbox relay polls once at start and then not for an hour, so a test counting SQL
/// statements sees only the ones its requests issue.
pub async fn spawn_app_without_polling() -> TestApp {
    spawn_app_tuned(1, |config| config.outbox_poll_ms = 3_600_000).await
}

/// An app with `keys` signing keys and its kernel configuration adjusted by `tune`.
pub async fn spawn_app_tuned(keys: usize, tune: impl FnOnce(&mut kernel::config::KernelConfig)) -> TestApp {
    let mut builder = test_support::TestApp::<identity::State>::builder();
    tune(&mut builder.config);
    let signers: Vec<LocalSigner> =
        (0..keys).map(|_| LocalSigner::from_base64(&LocalSigner::generate("x").to_base64()).unwrap()).collect();
    let refs: Vec<String> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = builder.dir.join(format!("key-{i}"));
            kernel::auth::write_private(&path, s.to_base64().as_bytes()).unwrap();
            format!("file:{}", path.display())
        })
        .collect();
    let app = builder.start::<identity::State>(&identity::Config::with_keys(refs)).await;
    TestApp { app, keys: signers }
}

/// Creates the first platform operator; returns its API token.
pub async fn bootstrap(app: &TestApp) -> String {
    identity::bootstrap(&app.state).await.expect("bootstrap")
}

/// An OAuth client of `principal` in `tenant`; returns its id and secret.
pub async fn client(app: &TestApp, op: &str, tenant: &str, principal: &str, scopes: &[&str]) -> (String, String) {
    let v = app
        .ok(op, "mutation($t: ID, $p: ID!, $s: [String!]!) { createOAuthClient(tenantId: $t, principalId: $p, scopes: $s) { clientSecret client { clientId } } }", json!({ "t": tenant, "p": principal, "s": scopes }))
        .await;
    let c = &v["createOAuthClient"];
    (c["client"]["clientId"].as_str().unwrap().to_owned(), c["clientSecret"].as_str().unwrap().to_owned())
}

/// An API token of `principal` in `tenant`; returns the token and its id.
pub async fn api_token(app: &TestApp, op: &str, tenant: &str, principal: &str, scopes: &[&str]) -> (String, String) {
    let v = app
        .ok(op, "mutation($t: ID, $p: ID!, $s: [String!]!) { createApiToken(tenantId: $t, input: { principalId: $p, name: \"ci\", scopes: $s }) { token apiToken { id scopes } } }", json!({ "t": tenant, "p": principal, "s": scopes }))
        .await;
    let t = &v["createApiToken"];
    (t["token"].as_str().unwrap().to_owned(), t["apiToken"]["id"].as_str().unwrap().to_owned())
}

impl TestApp {
    /// A JWT for a member of `tenant` holding `scopes`, signed with identity's current key (as the
    /// client-credentials grant would issue it, without a principal behind it).
    pub fn member_token(&self, tenant: &str, scopes: &[&str]) -> String {
        let subject = format!("member@{tenant}");
        self.keys[0].mint(ISSUER, AUDIENCE, &subject, Some(tenant), scopes, std::time::Duration::from_secs(600))
    }

    /// The internal credential subgraphs present to introspection and revocation.
    pub fn internal_secret(&self) -> String {
        self.config.internal_secret.as_ref().expect("tests set an internal secret").expose_secret().to_owned()
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
        self.app.cleanup().await;
    }
}
