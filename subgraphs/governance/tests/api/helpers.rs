//! Governance under test: the app started through the production wiring by `test-support`, tokens for its
//! callers, publishing to the broker, and a capture of everything the process logs.

use std::io::Write;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kernel::broker::{Broker, EXCHANGE};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use serde_json::{json, Value};
pub use test_support::{code, AMQP_URL as AMQP};

pub struct TestApp(pub test_support::TestApp<governance::State>);

impl Deref for TestApp {
    type Target = test_support::TestApp<governance::State>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// An app configured as in production: with an audit checkpoint key (see [`checkpoint_key`]).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(config()).await
}

/// An app whose expiry worker runs every second.
pub async fn spawn_app_expiring_fast() -> TestApp {
    spawn_app_with(governance::Config { approval_expiry_interval_secs: 1, ..config() }).await
}

/// An app whose workers run only when the test steps them (the expiry worker declared every second).
pub async fn spawn_app_with_manual_workers() -> TestApp {
    capture_logs();
    let config = governance::Config { approval_expiry_interval_secs: 1, ..config() };
    TestApp(test_support::TestApp::<governance::State>::builder().manual_workers().start(&config).await)
}

pub async fn spawn_app_with(config: governance::Config) -> TestApp {
    capture_logs();
    TestApp(test_support::TestApp::start(&config).await)
}

/// An app with its kernel configuration adjusted by `tune`.
pub async fn spawn_app_tuned(tune: impl FnOnce(&mut kernel::config::KernelConfig)) -> TestApp {
    capture_logs();
    let mut builder = test_support::TestApp::<governance::State>::builder();
    tune(&mut builder.config);
    TestApp(builder.start::<governance::State>(&config()).await)
}

/// The tests' configuration: the checkpoint key, exports into one scratch folder, no export worker (the
/// tests that export run it themselves, each into a folder or container of its own), no usage rollup
/// worker (the usage tests roll up themselves, at the times they choose).
pub fn config() -> governance::Config {
    governance::Config {
        audit_checkpoint_key: Some(checkpoint_key()),
        audit_export_dir: concat!(env!("CARGO_TARGET_TMPDIR"), "/governance-audit-exports").into(),
        audit_export_interval_secs: 0,
        usage_rollup_interval_secs: 0,
        ..Default::default()
    }
}

/// A `file:` reference to the tests' audit checkpoint key (named `control-plane.test/audit`), made once in
/// Cargo's scratch directory for integration tests and reused by every run.
pub fn checkpoint_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("governance-audit-checkpoint-key");
        if !path.exists() {
            let (signer, _) =
                governance::audit::checkpoint::CheckpointSigner::generate("control-plane.test/audit").unwrap();
            // Written whole under a name of this process's, then linked into place: a test process that
            // loses the race uses the winner's key, and none reads a half-written file.
            let tmp = path.with_extension(std::process::id().to_string());
            let _ = std::fs::remove_file(&tmp);
            governance::audit::checkpoint::write_key(&tmp, &signer).unwrap();
            let _ = std::fs::hard_link(&tmp, &path);
            std::fs::remove_file(&tmp).unwrap();
        }
        format!("file:{}", path.display())
    })
    .clone()
}

pub const MEMBER: &[&str] = &["governance:read", "governance:write"];

impl TestApp {
    /// A member of `tenant` who may read and change its governance data.
    pub fn member(&self, tenant: &str) -> String {
        self.tenant_token(tenant, MEMBER)
    }

    /// A token for the principal a test calls `name` ([`test_support::principal`]) of `tenant` with `scopes`.
    pub fn as_principal(&self, tenant: &str, name: &str, scopes: &[&str]) -> String {
        self.signer.mint(
            test_support::ISSUER,
            test_support::AUDIENCE,
            &test_support::principal(name),
            Some(tenant),
            scopes,
            Duration::from_secs(600),
        )
    }

    /// Drafts and publishes a policy; returns its id.
    pub async fn policy(&self, token: &str, name: &str, effect: &str, cedar: &str) -> String {
        let v = self
            .ok(
                token,
                "mutation($n: String!, $e: PolicyEffect!, $c: String!) { draftPolicy(input: { name: $n, effect: $e, cedar: $c }) { id } }",
                json!({ "n": name, "e": effect, "c": cedar }),
            )
            .await;
        let id = v["draftPolicy"]["id"].as_str().unwrap().to_owned();
        self.ok(token, "mutation($id: ID!) { publishPolicy(id: $id) { status } }", json!({ "id": id })).await;
        id
    }

    /// Publishes `payload` as an envelope for `tenant` under `<namespace>.<rest>` — the routing key this
    /// app's durable consumers bind (`rest` = `catalogue.RequestApproval`, `identity.RoleBound`, …).
    pub async fn publish<E: Event>(&self, tenant: &str, rest: &str, payload: &E) -> Envelope {
        let meta = EventMeta {
            trace_id: "t".into(),
            correlation_id: format!("corr-{}", uuid::Uuid::new_v4()),
            causation_id: None,
            actor: Some(format!("publisher-of-{tenant}")),
        };
        let env = Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, payload);
        self.publish_envelope(rest, &env).await;
        env
    }

    pub async fn publish_envelope(&self, rest: &str, env: &Envelope) {
        let ch = Broker::new(AMQP.to_owned().into()).channel().await.unwrap();
        let key = format!("{}.{rest}", self.command_prefix());
        let body = serde_json::to_vec(env).unwrap();
        // As the relay publishes it: persistent, with the `cs-*` headers (`cs-actor` among them).
        let props = kernel::broker::properties(env, 1);
        ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
    }

    /// Binds the principal a test calls `name` to `role` in `tenant`, as identity's `RoleBound` does, and
    /// waits until it applies.
    pub async fn bind_role(&self, tenant: &str, name: &str, role: &str) {
        test_support::consuming(&format!("{}.directory", self.command_prefix())).await;
        let principal = test_support::principal(name);
        let principal = principal.as_str();
        let e =
            kernel::contracts::identity::RoleBound { principal_id: principal.parse().unwrap(), role_key: role.into() };
        self.publish(tenant, "identity.RoleBound", &e).await;
        let admin = self.admin_pool().await;
        test_support::eventually(&format!("{name} to hold {role}"), Duration::from_secs(10), || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT bound FROM principal_roles WHERE tenant_id = $1 AND principal = $2 AND role_key = $3",
            )
            .bind(tenant)
            .bind(principal)
            .bind(role)
            .fetch_optional(&admin)
            .await
            .unwrap()
            .unwrap_or(false)
        })
        .await;
    }

    pub async fn cleanup(self) {
        self.0.cleanup().await;
    }
}

pub fn entity(ty: &str, id: &str, parents: &[(&str, &str)]) -> Value {
    json!({ "type": ty, "id": id, "parents": parents.iter().map(|(t, i)| json!({ "type": t, "id": i })).collect::<Vec<_>>() })
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_buffer() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(Buffer::default)
}

/// Everything this test process logs (at `debug` and above) goes to a buffer [`logs`] reads.
fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let buffer = logs_buffer().clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,sqlx=debug,lapin=info,h2=info,hyper=info"))
            .with_writer(move || buffer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
}

/// What this test process has logged so far.
pub fn logs() -> String {
    String::from_utf8_lossy(&logs_buffer().0.lock().unwrap()).into_owned()
}
