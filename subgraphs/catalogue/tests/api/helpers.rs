//! Catalogue under test: the app started through the production wiring by `test-support`, and the few
//! steps most tests take (a project, modules, dependencies; publishing to the broker).

use std::ops::Deref;

use kernel::broker::{Broker, EXCHANGE};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use serde_json::{json, Value};
pub use test_support::{code, AMQP_URL as AMQP};

pub struct TestApp(pub test_support::TestApp<catalogue::State>);

impl Deref for TestApp {
    type Target = test_support::TestApp<catalogue::State>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp(test_support::TestApp::start(&catalogue::Config::default()).await)
}

/// An app whose outbox relay polls once at start and then not for an hour (statement counting).
pub async fn spawn_app_without_polling() -> TestApp {
    let mut builder = test_support::TestApp::<catalogue::State>::builder();
    builder.config.outbox_poll_ms = 3_600_000;
    TestApp(builder.start::<catalogue::State>(&catalogue::Config::default()).await)
}

impl TestApp {
    /// A member of `tenant` who may read and change its catalogue.
    pub fn member(&self, tenant: &str) -> String {
        self.tenant_token(tenant, &["catalogue:read", "catalogue:write"])
    }

    /// Creates a project; returns its id.
    pub async fn project(&self, token: &str, slug: &str) -> String {
        let v = self
            .ok(
                token,
                "mutation($s: String!) { createProject(input: { slug: $s, name: \"P\" }) { id } }",
                json!({ "s": slug }),
            )
            .await;
        v["createProject"]["id"].as_str().unwrap().to_owned()
    }

    /// Registers a module; returns its id.
    pub async fn module(&self, token: &str, project: &str, name: &str, metadata: Value) -> String {
        let v = self
            .ok(
                token,
                "mutation($p: ID!, $n: String!, $m: JSON) { registerModule(input: { projectId: $p, name: $n,
                   version: \"1.0.0\", kind: \"service\", metadata: $m }) { id } }",
                json!({ "p": project, "n": name, "m": metadata }),
            )
            .await;
        v["registerModule"]["id"].as_str().unwrap().to_owned()
    }

    /// Adds `from → to`; returns the answer (errors included).
    pub async fn depend(&self, token: &str, from: &str, to: &str) -> Value {
        self.gql(
            token,
            "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"^1\") {
               versionConstraint } }",
            json!({ "f": from, "t": to }),
        )
        .await
    }

    /// Publishes `payload` as an envelope for `tenant` under `<namespace>.<rest>` — the routing key this
    /// app's durable consumers bind (`rest` = `governance.ApprovalGranted.catalogue`, `CreateProject`, …).
    pub async fn publish<E: Event>(&self, tenant: &str, rest: &str, payload: &E) -> Envelope {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
        let env = Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, payload);
        self.publish_envelope(rest, &env).await;
        env
    }

    /// Publishes governance's answer `payload` about environment change `change`, as governance would: caused
    /// by the `RequestApproval` command catalogue sent for it.
    pub async fn answer<E: Event>(&self, tenant: &str, change: &str, rest: &str, payload: &E) -> Envelope {
        let asked: Option<String> =
            sqlx::query_scalar("SELECT approval_request FROM environment_changes WHERE change_id = $1::uuid")
                .bind(change)
                .fetch_one(&self.admin_pool().await)
                .await
                .unwrap();
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: asked, actor: None };
        let env = Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, payload);
        self.publish_envelope(rest, &env).await;
        env
    }

    pub async fn publish_envelope(&self, rest: &str, env: &Envelope) {
        let ch = Broker::new(AMQP.to_owned().into()).channel().await.unwrap();
        let key = format!("{}.{rest}", self.command_prefix());
        let body = serde_json::to_vec(env).unwrap();
        let props = BasicProperties::default().with_delivery_mode(2);
        ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
    }

    pub async fn cleanup(self) {
        self.0.cleanup().await;
    }
}
