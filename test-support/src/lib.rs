//! Test support for every subgraph's tests and the end-to-end tests.
//!
//! [`TestApp::start`] starts a subgraph through [`kernel::service::start`] — the same connect, migrate,
//! background-task and HTTP code `serve` runs — on a throwaway database of its own, a Redis namespace of its
//! own and, for its durable consumers, queues of its own. All three are removed when the app is dropped,
//! also when the test fails (a panic unwinds through the drop); nothing shared is ever wiped (no
//! `FLUSHALL`: other test binaries and a running dev stack share the Redis and the broker).
//!
//! | item | for |
//! |---|---|
//! | [`TestApp`] | a running subgraph: `gql`/`ok`/`get`/`call`, tokens, `serve` on a real port |
//! | [`config`] | a [`KernelConfig`] for tests (the config builder); adjust its fields |
//! | [`TestDb`], [`RedisNamespace`], [`Queues`] | throwaway resources removed on drop |
//! | [`data`], [`error_code`], [`code`] | reading GraphQL answers |
//! | [`eventually`] | waiting on a condition instead of sleeping |
//! | [`Tap`] | a broker tap: every event matching a pattern, read with a deadline |
//! | [`Proxy`] | a TCP proxy that can be taken down, for fault injection |
//! | [`WsClient`] | a graphql-transport-ws client for live subscriptions |
//! | [`count_statements`] | the SQL statements requests issue, for N+1 tests |
//! | [`Azurite`] | the Azure Blob emulator, started with a container of the test's own |

mod app;
pub mod azurite;
pub mod bench;
mod broker;
mod resources;
mod statements;
mod ws;

use std::future::Future;
use std::time::Duration;

pub use app::{fast_retry, principal, tenant_subject, Builder, Signer, TestApp, AUDIENCE, ISSUER};
pub use azurite::Azurite;
pub use broker::{consumers_on, consuming, Proxy, Tap};
use kernel::config::KernelConfig;
pub use resources::{Queues, RedisNamespace, TestDb};
use serde_json::Value;
pub use statements::count_statements;
pub use ws::{Next, WsClient};

/// PostgreSQL superuser URL (`ADMIN_DATABASE_URL`, default the local trust-auth server).
pub fn admin_url() -> String {
    std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A kernel configuration for tests: local services, a fresh 32-byte router secret and internal secret,
/// fast outbox polling. The database URLs are placeholders [`TestApp::start`] fills in.
pub fn config() -> KernelConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        kernel: KernelConfig,
    }
    let router_secret = format!("router-{}", uuid::Uuid::new_v4().simple());
    let internal_secret = format!("internal-{}", uuid::Uuid::new_v4().simple());
    Wrap::parse_from([
        "test".to_owned(),
        "--database-url=postgres://unset@127.0.0.1/unset".to_owned(),
        format!("--router-secret={router_secret}"),
        format!("--internal-secret={internal_secret}"),
        format!("--jwt-issuer={ISSUER}"),
        format!("--redis-url={REDIS_URL}"),
        format!("--amqp-url={AMQP_URL}"),
        "--outbox-poll-ms=50".to_owned(),
    ])
    .kernel
}

/// The first error's `extensions.code` (panics when there is none).
pub fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {v:#}"))
}

/// The first error's `extensions.code`, if any.
pub fn error_code(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["code"].as_str()
}

/// `data` of an answer that must have no errors.
pub fn data(v: &Value) -> &Value {
    assert!(v.get("errors").is_none(), "unexpected errors: {v:#}");
    &v["data"]
}

/// Polls `condition` every 20 ms until it holds, panicking with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_value(what, timeout, || {
        let fut = condition();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Polls `probe` every 20 ms until it yields a value, panicking with `what` after `timeout`.
pub async fn eventually_value<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
