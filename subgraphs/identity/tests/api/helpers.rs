//! Identity under test: started through the production wiring by `test-support`, with its signing keys by
//! `file:` configRef, the whole app driven via `oneshot`.

use std::ops::Deref;

use axum::body::Body;
use axum::http::Request;
use kernel::auth::LocalSigner;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
pub use test_support::{code, ISSUER};

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
    let builder = test_support::TestApp::<identity::State>::builder();
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
    let app = builder.start::<identity::State>(&identity::Config { signing_keys: refs }).await;
    TestApp { app, keys: signers }
}

impl TestApp {
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
