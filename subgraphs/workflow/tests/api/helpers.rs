//! What every workflow test uses: the app, tenants and tokens, and catalogue's skill events.

use kernel::broker::{Broker, EXCHANGE};
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;

pub type App = test_support::TestApp<workflow::State>;

const AMQP: &str = test_support::AMQP_URL;

pub async fn app() -> App {
    App::start(&kernel::service::NoConfig {}).await
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
    let ch = Broker::new(AMQP.to_owned().into()).channel().await.unwrap();
    let key = format!("{}.{}", app.command_prefix(), E::routing_key());
    let body = serde_json::to_vec(&env).unwrap();
    let props = BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
    env
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
