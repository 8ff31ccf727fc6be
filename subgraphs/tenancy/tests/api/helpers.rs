//! Tenancy under test: the app started through the production wiring by `test-support`, with the helpers
//! only tenancy's tests need (an edition, an active tenant).

use std::ops::Deref;

use kernel::service::NoConfig;
use serde_json::json;
pub use test_support::{admin_url, code, fast_retry, Proxy, Tap, AMQP_URL as AMQP, AUDIENCE, ISSUER};

pub struct TestApp(pub test_support::TestApp<tenancy::State>);

impl Deref for TestApp {
    type Target = test_support::TestApp<tenancy::State>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp(test_support::TestApp::start(&NoConfig {}).await)
}

/// An app whose broker connection goes to `amqp_url` (a proxy, in the broker-outage test).
pub async fn spawn_app_with_amqp(amqp_url: &str) -> TestApp {
    let mut builder = test_support::TestApp::<tenancy::State>::builder();
    builder.config.amqp_url = amqp_url.to_owned().into();
    TestApp(builder.start::<tenancy::State>(&NoConfig {}).await)
}

/// An app whose outbox relay polls once at start and then not for an hour, so a test counting SQL
/// statements sees only the ones its requests issue.
pub async fn spawn_app_without_polling() -> TestApp {
    let mut builder = test_support::TestApp::<tenancy::State>::builder();
    builder.config.outbox_poll_ms = 3_600_000;
    TestApp(builder.start::<tenancy::State>(&NoConfig {}).await)
}

/// An app with its kernel configuration adjusted by `tune`.
pub async fn spawn_app_tuned(tune: impl FnOnce(&mut kernel::config::KernelConfig)) -> TestApp {
    let mut builder = test_support::TestApp::<tenancy::State>::builder();
    tune(&mut builder.config);
    TestApp(builder.start::<tenancy::State>(&NoConfig {}).await)
}

impl TestApp {
    /// A tenant member with every tenant scope.
    pub fn member_token(&self, tenant: &str) -> String {
        self.tenant_token(tenant, &["tenancy:read", "tenancy:write", "quota:consume"])
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

    pub async fn cleanup(self) {
        self.0.cleanup().await;
    }
}
