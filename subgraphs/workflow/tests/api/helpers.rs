//! What every workflow test uses: the app, tenants and tokens, and catalogue's skill events.

use kernel::broker::{Broker, EXCHANGE};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::{Authorized, TenantId, Work};
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use workflow::history::{self, DefinitionRef, Recorded, Stream};
use workflow::ids::InstanceId;

pub type App = test_support::TestApp<workflow::State>;

const AMQP: &str = test_support::AMQP_URL;

/// An app whose workers run only when a test steps them (`app.step`, or a timer pass on the test's own
/// clock): none races what a test checks, and no timer fires before the test says the time has come.
pub async fn app() -> App {
    App::builder().manual_workers().start(&kernel::service::NoConfig {}).await
}

/// A tenant slug unique to this app.
pub fn tenant(app: &App, name: &str) -> String {
    format!("{name}-{}", app.id)
}

/// A token of `tenant` that reads and writes workflows.
pub fn member(app: &App, tenant: &str) -> String {
    app.tenant_token(tenant, &["workflow:read", "workflow:write"])
}

/// Publishes `payload` as `domain`'s event about `tenant` under the routing key this app's consumers bind
/// for it (`<namespace>.<domain>.<Type>`).
pub async fn publish<E: Event>(app: &App, tenant: &str, payload: &E) -> Envelope {
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let tenant = if tenant == "platform" { TenantId::platform() } else { TenantId::parse(tenant).unwrap() };
    let env = Envelope::new(&tenant, &meta, payload);
    publish_envelope(app, &E::routing_key(), &env).await;
    env
}

/// Publishes `env` under `<namespace>.<rest>` (`rest`: the routing key as its sender's domain publishes it).
pub async fn publish_envelope(app: &App, rest: &str, env: &Envelope) {
    let ch = Broker::new(AMQP.to_owned().into()).channel().await.unwrap();
    let key = format!("{}.{rest}", app.command_prefix());
    let body = serde_json::to_vec(env).unwrap();
    let props = BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
}

/// Catalogue announcing a published skill version of `tenant`'s (`platform` for the platform's); returns
/// once workflow knows it.
pub async fn skill_published(app: &App, tenant: &str, key: &str, version: &str) {
    let e = kernel::contracts::catalogue::SkillDefinitionPublished {
        skill_key: key.into(),
        version: version.into(),
        platform: tenant == "platform",
    };
    test_support::consuming(&format!("{}.skills", app.command_prefix())).await;
    publish(app, tenant, &e).await;
    let admin = app.admin_pool().await;
    test_support::eventually(&format!("skill {key} {version} known"), std::time::Duration::from_secs(10), || {
        let admin = admin.clone();
        let (tenant, key, version) = (tenant.to_owned(), key.to_owned(), version.to_owned());
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM workflow_skills WHERE tenant_id = $1 AND skill_key = $2 AND version = $3)",
            )
            .bind(tenant)
            .bind(key)
            .bind(version)
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    })
    .await;
}

/// A unit of work on `t`'s rows, as the tests' own system work.
pub async fn work(app: &App, t: &TenantId) -> Work {
    let meta =
        EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: Some("test".into()) };
    Work::tenant(&app.state.kernel.db, &Authorized::system(t.clone(), "test"), meta).await.unwrap()
}

/// The definition the tests' streams run (the platform registry's).
pub fn definition() -> DefinitionRef {
    DefinitionRef { tenant: TenantId::platform(), key: "content-review".into(), version: 1 }
}

/// A new, empty stream of `t`'s.
pub async fn new_stream(app: &App, t: &TenantId) -> InstanceId {
    let id = InstanceId::new_v7();
    let mut w = work(app, t).await;
    Stream::create(&mut w, t, id, &definition()).await.unwrap();
    w.commit().await.unwrap();
    id
}

/// The stream's events, in order (at most 100).
pub async fn recorded(app: &App, t: &TenantId, id: InstanceId) -> Vec<Recorded> {
    let mut w = work(app, t).await;
    history::store::read(&mut w, t, id, 0, 100).await.unwrap()
}

/// Governance publishing `tenant`'s model policy `name` (tenant-wide, `allowed`: `(provider, models)`, at
/// most `max_tokens` per task); returns once workflow knows it.
pub async fn model_policy(app: &App, tenant: &str, name: &str, allowed: &[(&str, &[&str])], max_tokens: Option<i32>) {
    use kernel::contracts::governance::models::{ModelAllowance, Policy};
    use kernel::contracts::governance::{ModelPolicyId, ModelPolicyPublished};
    let id = ModelPolicyId::new_v7();
    let policy = Policy {
        model_policy_id: id,
        name: name.into(),
        version: 1,
        project_id: None,
        skill_key: None,
        allowed: allowed
            .iter()
            .map(|(p, ms)| ModelAllowance { provider: (*p).into(), models: ms.iter().map(|m| (*m).into()).collect() })
            .collect(),
        max_tokens_per_task: max_tokens,
        max_cost_per_day_cents: None,
    };
    let e = ModelPolicyPublished { policy };
    test_support::consuming(&format!("{}.model-policies", app.command_prefix())).await;
    publish(app, tenant, &e).await;
    let admin = app.admin_pool().await;
    test_support::eventually(&format!("model policy {name} known"), std::time::Duration::from_secs(10), || {
        let admin = admin.clone();
        let tenant = tenant.to_owned();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM model_policies WHERE tenant_id = $1 AND model_policy_id = $2)",
            )
            .bind(tenant)
            .bind(id.as_uuid())
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    })
    .await;
}

/// The model policy the tests' agents work under: any OpenAI model, up to 100,000 tokens a task.
pub async fn models_allowed(app: &App, tenant: &str) {
    model_policy(app, tenant, "agents", &[("openai", &["*"])], Some(100_000)).await;
}
