//! Events: the canonical envelope on the exchange, delivery after a broker outage, idempotent consumers,
//! retries and the dead-letter queue.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kernel::broker::{Broker, EXCHANGE};
use kernel::consumer::{ConsumerSpec, Failure, Handler};
use kernel::envelope::{Envelope, EventMeta};
use kernel::TenantId;
use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeleteOptions};
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Channel};
use serde_json::json;

use crate::helpers::{fast_retry, spawn_app, spawn_app_with_amqp, spawn_app_without_polling, Proxy, Tap, AMQP};

fn header<'a>(d: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref().and_then(|h| h.inner().get(name))
}

const PROVISION: &str = "mutation($id: ID!) { provisionTenant(input: { id: $id, displayName: \"E\", region: \"eu-west\", editionId: \"pro\" }) { id } }";

#[tokio::test]
async fn a_mutations_event_arrives_with_exactly_the_envelope_fields() {
    let app = spawn_app().await;
    let mut consumer = Tap::new("tenancy.#").await;
    app.published_edition("pro", 10).await;
    let tenant = format!("ev-{}", app.id);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let v = app
        .gql_with(
            Some(&app.operator_token()),
            &[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01")), ("x-correlation-id", "corr-123")],
            PROVISION,
            json!({ "id": tenant }),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");

    let d = consumer.next("tenancy.TenantProvisioned", &tenant, Duration::from_secs(10)).await.expect("event");
    let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["causationId", "correlationId", "eventId", "eventType", "occurredAt", "payload", "tenantId", "traceId"]
    );
    assert_eq!(body["eventType"], "TenantProvisioned");
    assert_eq!(body["tenantId"], tenant.as_str());
    assert_eq!(body["traceId"], trace);
    assert_eq!(body["correlationId"], "corr-123");
    assert!(body["causationId"].is_null());
    let event_id = body["eventId"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(event_id.strip_prefix("evt-").expect("evt- prefix")).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    let at = body["occurredAt"].as_str().unwrap();
    assert!(at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert_eq!(body["payload"]["tenantId"], tenant.as_str());
    assert_eq!(body["payload"]["editionId"], "pro");
    assert_eq!(header(&d, "cs-schema-version"), Some(&AMQPValue::LongUInt(1)));
    assert_eq!(header(&d, "cs-tenant-id"), Some(&AMQPValue::LongString(tenant.as_str().into())));
    // Who acted travels beside the envelope, not in it: the caller's token subject.
    assert_eq!(header(&d, "cs-actor"), Some(&AMQPValue::LongString("op-1".into())));
    assert_eq!(d.properties.message_id().as_ref().map(|s| s.as_str()), Some(event_id));
    assert_eq!(d.properties.delivery_mode(), &Some(2));
    app.cleanup().await;
}

#[tokio::test]
async fn events_committed_while_the_broker_is_down_are_delivered_when_it_returns() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    proxy.set_up(false);
    let app = spawn_app_with_amqp(&proxy.amqp_url()).await;
    let mut consumer = Tap::new("tenancy.TenantProvisioned").await;
    app.published_edition("pro", 10).await;
    let tenant = format!("down-{}", app.id);

    // The mutation commits although the broker is unreachable.
    app.ok(&app.operator_token(), PROVISION, json!({ "id": tenant })).await;
    // Readiness stays up (the subgraph serves without the broker) and says it is degraded.
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"rabbitmq\":\"down\"") && body.contains("\"status\":\"degraded\""), "{body}");
    assert!(consumer.next("tenancy.TenantProvisioned", &tenant, Duration::from_secs(2)).await.is_none());
    let admin = app.admin_pool().await;
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL")
        .bind(&tenant)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(pending, 1);

    proxy.set_up(true);
    let d = consumer.next("tenancy.TenantProvisioned", &tenant, Duration::from_secs(20)).await;
    assert!(d.is_some(), "event not delivered after the broker came back");
    // The relay marks the row published once the broker has confirmed it, just after the delivery above.
    test_support::eventually("the outbox row to be marked published", Duration::from_secs(5), || async {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND published_at IS NULL")
                .bind(&tenant)
                .fetch_one(&admin)
                .await
                .unwrap();
        pending == 0
    })
    .await;
    app.cleanup().await;
}

async fn publish(ch: &Channel, routing_key: &str, body: &[u8]) {
    ch.basic_publish(
        EXCHANGE,
        routing_key,
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

fn provision_command(tenant: &str) -> Envelope {
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let command = tenancy::events::ProvisionTenant {
        display_name: "By command".into(),
        region: "eu-west".into(),
        edition_id: "pro".into(),
        isolation_model: Default::default(),
    };
    Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, &command)
}

async fn delete_queues(ch: &Channel, spec: &ConsumerSpec) {
    for name in test_support::Queues::of(spec) {
        let _ = ch.queue_delete(&name, QueueDeleteOptions::default()).await;
    }
    let _ = ch.exchange_delete(&spec.republish_exchange(), lapin::options::ExchangeDeleteOptions::default()).await;
}

#[tokio::test]
async fn a_command_delivered_twice_is_applied_once() {
    let app = spawn_app().await;
    let prefix = app.command_prefix();
    app.published_edition("pro", 10).await;
    let ch = Broker::new(AMQP.into()).channel().await.unwrap();
    let key = format!("{prefix}.ProvisionTenant");
    // The app's consumer has declared and bound its queue before anything is published to it.
    test_support::consuming(&format!("{prefix}.commands")).await;

    let command = provision_command("twice");
    let body = serde_json::to_vec(&command).unwrap();
    publish(&ch, &key, &body).await;
    publish(&ch, &key, &body).await;
    // A later command for another tenant: once it is applied, both copies before it have been handled.
    publish(&ch, &key, &serde_json::to_vec(&provision_command("sentinel")).unwrap()).await;

    let admin = app.admin_pool().await;
    test_support::eventually("the commands to be consumed", Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = 'sentinel'")
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 1
    })
    .await;
    let tenants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = 'twice'").fetch_one(&admin).await.unwrap();
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
        .bind(&command.event_id)
        .fetch_one(&admin)
        .await
        .unwrap();
    let events: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT envelope FROM outbox WHERE tenant_id = 'twice' AND event_type = 'TenantProvisioned'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!((tenants, inbox, events.len()), (1, 1, 1));
    assert_eq!(events[0]["causationId"], command.event_id.as_str(), "the event names the command that caused it");
    app.cleanup().await;
}

struct AlwaysFails(Arc<AtomicU32>);

#[async_trait::async_trait]
impl Handler for AlwaysFails {
    fn name(&self) -> &'static str {
        "test.always-fails"
    }
    async fn handle(&self, _work: &mut kernel::Work, _envelope: &Envelope) -> Result<(), Failure> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Failure::Transient(anyhow::anyhow!("downstream unavailable")))
    }
}

async fn dead_letter(ch: &Channel, queue: &str, wait: Duration) -> lapin::message::BasicGetMessage {
    test_support::eventually_value(&format!("a message on {queue}"), wait, || async {
        ch.basic_get(queue, BasicGetOptions { no_ack: true }).await.unwrap()
    })
    .await
}

#[tokio::test]
async fn a_handler_that_keeps_failing_lands_in_the_dead_letter_queue_with_its_envelope() {
    let app = spawn_app().await;
    let prefix = format!("t-{}", app.id);
    let spec = ConsumerSpec {
        queue: format!("{prefix}.fails"),
        bindings: vec![format!("{prefix}.Fail")],
        retry: fast_retry(),
        prefetch: 4,
    };
    let calls = Arc::new(AtomicU32::new(0));
    tokio::spawn(kernel::consumer::run(
        app.state.kernel.broker.clone(),
        app.state.kernel.db.clone(),
        spec.clone(),
        Arc::new(AlwaysFails(calls.clone())),
        app.shutdown.clone(),
    ));
    let ch = Broker::new(AMQP.into()).channel().await.unwrap();
    // Declaring is idempotent: doing it here too means the queue is bound before we publish.
    spec.declare(&ch).await.unwrap();

    let body = serde_json::to_vec(&provision_command("doomed")).unwrap();
    publish(&ch, &format!("{prefix}.Fail"), &body).await;
    let m = dead_letter(&ch, &spec.dead_letter_queue(), Duration::from_secs(15)).await;
    assert_eq!(m.delivery.data, body, "the dead letter carries the full envelope");
    let headers = m.delivery.properties.headers().clone().unwrap();
    assert_eq!(headers.inner().get("cs-retry-count"), Some(&AMQPValue::LongUInt(3)));
    match headers.inner().get("cs-dead-letter-reason") {
        Some(AMQPValue::LongString(s)) => {
            assert!(s.to_string().contains("gave up after 3 retries"), "{s}")
        }
        other => panic!("no reason: {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4, "one try and three retries");

    // A message that can never succeed is dead-lettered at once, without retries.
    publish(&ch, &format!("{prefix}.Fail"), b"not an envelope").await;
    let m = dead_letter(&ch, &spec.dead_letter_queue(), Duration::from_secs(5)).await;
    assert_eq!(m.delivery.data, b"not an envelope");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    delete_queues(&ch, &spec).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_commit_wakes_the_relay_without_waiting_for_its_poll() {
    // The relay polls once an hour here: only the commit's NOTIFY can get the event out in time.
    let app = spawn_app_without_polling().await;
    let mut consumer = Tap::new("tenancy.TenantProvisioned").await;
    app.published_edition("pro", 10).await;
    let tenant = format!("wake-{}", app.id);
    let started = std::time::Instant::now();
    app.ok(&app.operator_token(), PROVISION, json!({ "id": tenant })).await;
    let d = consumer.next("tenancy.TenantProvisioned", &tenant, Duration::from_secs(5)).await;
    assert!(d.is_some(), "the relay did not wake on the commit");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    app.cleanup().await;
}

#[tokio::test]
async fn an_undecodable_row_is_parked_and_unroutable_events_are_kept() {
    let app = spawn_app_without_polling().await;
    let admin = app.admin_pool().await;
    let tenant = format!("park-{}", app.id);
    let mut consumer = Tap::new(&format!("{tenant}.#")).await;
    let good = provision_command(&tenant);
    let nobody = format!("nobody-{}.Nothing", app.id);
    // First a row no relay could decode, then one that is fine, then one nobody is bound for: one insert.
    sqlx::query(
        "INSERT INTO outbox (tenant_id, event_id, event_type, routing_key, schema_version, envelope) VALUES \
         ($1, 'evt-bad', 'Broken', $2, 1, '{\"not\": \"an envelope\"}'), \
         ($1, $3, 'ProvisionTenant', $2, 1, $4), \
         ($1, 'evt-nobody', 'ProvisionTenant', $5, 1, $6)",
    )
    .bind(&tenant)
    .bind(format!("{tenant}.ProvisionTenant"))
    .bind(&good.event_id)
    .bind(serde_json::to_value(&good).unwrap())
    .bind(&nobody)
    .bind(serde_json::to_value(Envelope { event_id: "evt-nobody".into(), ..good.clone() }).unwrap())
    .execute(&admin)
    .await
    .unwrap();
    let d = consumer.next(&format!("{tenant}.ProvisionTenant"), &tenant, Duration::from_secs(5)).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&d.expect("the good row").data).unwrap()["eventId"],
        good.event_id.as_str()
    );
    // The relay commits the batch just after the broker confirmed it.
    type Row = (Option<chrono::DateTime<chrono::Utc>>, Option<String>, Option<chrono::DateTime<chrono::Utc>>);
    let (reason, published) =
        test_support::eventually_value("the bad row to be parked", Duration::from_secs(5), || async {
            let row: Row =
                sqlx::query_as("SELECT parked_at, park_reason, published_at FROM outbox WHERE event_id = 'evt-bad'")
                    .fetch_one(&admin)
                    .await
                    .unwrap();
            row.0.map(|_| (row.1, row.2))
        })
        .await;
    assert!(published.is_none(), "the bad row is parked, not published");
    assert!(reason.unwrap().contains("not a canonical envelope"));
    let ch = Broker::new(AMQP.into()).channel().await.unwrap();
    let m = dead_letter(&ch, &format!("t-{}.unrouted", app.id), Duration::from_secs(5)).await;
    let v: serde_json::Value = serde_json::from_slice(&m.delivery.data).unwrap();
    assert_eq!(v["eventId"], "evt-nobody");
    let headers = m.delivery.properties.headers().clone().unwrap();
    assert_eq!(headers.inner().get("cs-original-routing-key"), Some(&AMQPValue::LongString(nobody.as_str().into())));
    app.cleanup().await;
}

#[tokio::test]
async fn a_stalled_broker_never_holds_outbox_rows_locked() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let app = crate::helpers::spawn_app_tuned(|c| {
        c.amqp_url = proxy.amqp_url().into();
        c.outbox_publish_timeout_ms = 500;
    })
    .await;
    let mut consumer = Tap::new("tenancy.TenantProvisioned").await;
    app.published_edition("pro", 10).await;
    // The broker goes silent: connections stay open, nothing is answered.
    proxy.stall();
    let tenant = format!("stall-{}", app.id);
    app.ok(&app.operator_token(), PROVISION, json!({ "id": tenant })).await;
    let admin = app.admin_pool().await;
    // The relay keeps trying, but each attempt gives the row back within its timeout: another transaction
    // gets the lock.
    test_support::eventually("the pending row to be free of the relay's lock", Duration::from_secs(5), || async {
        let mut tx = admin.begin().await.unwrap();
        let locked =
            sqlx::query("SELECT 1 FROM outbox WHERE tenant_id = $1 AND published_at IS NULL FOR UPDATE NOWAIT")
                .bind(&tenant)
                .fetch_optional(&mut *tx)
                .await;
        tx.rollback().await.unwrap();
        matches!(locked, Ok(Some(_)))
    })
    .await;
    proxy.set_up(true);
    let d = consumer.next("tenancy.TenantProvisioned", &tenant, Duration::from_secs(20)).await;
    assert!(d.is_some(), "the event was not delivered once the broker answered again");
    app.cleanup().await;
}

kernel::events! {
    domain = "test";
    /// What the batching handler emits per message it applies.
    Echoed { n: u32 }
}

/// Takes messages in batches, emitting an event per message (so what committed is in the outbox); a batch
/// holding a `poison` tenant's message fails as a whole, after emitting for the others.
struct Batching {
    /// Sizes of the batches handed over, failed ones included.
    batches: std::sync::Mutex<Vec<usize>>,
    /// Inbox tenants a batch could see beyond its own.
    leaks: std::sync::Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl Handler for Batching {
    fn name(&self) -> &'static str {
        "test.batching"
    }
    fn batch_size(&self) -> usize {
        16
    }
    async fn handle(&self, work: &mut kernel::Work, envelope: &Envelope) -> Result<(), Failure> {
        if envelope.tenant_id.as_str().starts_with("poison") {
            return Err(Failure::Permanent(anyhow::anyhow!("poisoned")));
        }
        work.emit(&envelope.tenant_id, &Echoed { n: 1 }).await?;
        Ok(())
    }
    async fn handle_batch(&self, work: &mut kernel::Work, envelopes: &[Envelope]) -> Result<(), Failure> {
        self.batches.lock().unwrap().push(envelopes.len());
        // Row-level security is the batch tenant's: its inbox rows are visible, no other tenant's.
        let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM inbox WHERE handler = $1")
            .bind(self.name())
            .fetch_all(&mut ***work)
            .await
            .map_err(|e| Failure::Transient(e.into()))?;
        if tenants != vec![envelopes[0].tenant_id.to_string()] {
            self.leaks.lock().unwrap().push(tenants);
        }
        for envelope in envelopes {
            work.set_meta(envelope.caused_meta());
            work.emit(&envelope.tenant_id, &Echoed { n: envelopes.len() as u32 }).await?;
        }
        if envelopes.iter().any(|e| e.tenant_id.as_str().starts_with("poison")) {
            return Err(Failure::Permanent(anyhow::anyhow!("poisoned")));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_batching_handler_applies_waiting_messages_of_several_tenants_once_and_a_failed_batch_one_by_one() {
    let app = spawn_app().await;
    let prefix = format!("t-{}", app.id);
    let spec = ConsumerSpec {
        queue: format!("{prefix}.batching"),
        bindings: vec![format!("{prefix}.Batch")],
        retry: fast_retry(),
        prefetch: 64,
    };
    let ch = Broker::new(AMQP.into()).channel().await.unwrap();
    spec.declare(&ch).await.unwrap();
    // Everything is waiting before the consumer starts: two tenants' messages, one delivered twice, and a
    // poisoned one in the middle.
    let (a, b, poison) = (format!("a-{}", app.id), format!("b-{}", app.id), format!("poison-{}", app.id));
    let mut good = Vec::new();
    for i in 0..40 {
        if i == 25 {
            let p = provision_command(&poison);
            publish(&ch, &format!("{prefix}.Batch"), &serde_json::to_vec(&p).unwrap()).await;
        }
        let e = provision_command(if i % 3 == 0 { &b } else { &a });
        publish(&ch, &format!("{prefix}.Batch"), &serde_json::to_vec(&e).unwrap()).await;
        good.push(e);
    }
    publish(&ch, &format!("{prefix}.Batch"), &serde_json::to_vec(&good[3]).unwrap()).await;

    let handler = Arc::new(Batching { batches: Default::default(), leaks: Default::default() });
    tokio::spawn(kernel::consumer::run(
        app.state.kernel.broker.clone(),
        app.state.kernel.db.clone(),
        spec.clone(),
        handler.clone(),
        app.shutdown.clone(),
    ));
    let m = dead_letter(&ch, &spec.dead_letter_queue(), Duration::from_secs(15)).await;
    let dead: Envelope = serde_json::from_slice(&m.delivery.data).unwrap();
    assert_eq!(dead.tenant_id.as_str(), poison, "only the poisoned message is dead-lettered");
    let admin = app.admin_pool().await;
    test_support::eventually("every good message applied", Duration::from_secs(15), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE handler = 'test.batching'")
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 40
    })
    .await;
    // What committed: one event per good message, caused by it; none for the poisoned one.
    let causes: Vec<String> = sqlx::query_scalar(
        "SELECT envelope->>'causationId' FROM outbox WHERE event_type = 'Echoed' AND tenant_id = ANY($1) ORDER BY 1",
    )
    .bind(vec![a.clone(), b.clone(), poison.clone()])
    .fetch_all(&admin)
    .await
    .unwrap();
    let mut expected: Vec<String> = good.iter().map(|e| e.event_id.clone()).collect();
    expected.sort();
    assert_eq!(causes, expected, "each good message applied exactly once, the duplicate not again");
    let batches = handler.batches.lock().unwrap().clone();
    assert!(batches.iter().any(|&n| n > 1), "waiting messages are taken together: {batches:?}");
    assert!(batches.iter().all(|&n| n <= 16), "never more than the batch size: {batches:?}");
    assert_eq!(*handler.leaks.lock().unwrap(), Vec::<Vec<String>>::new(), "each tenant's part sees its rows only");

    delete_queues(&ch, &spec).await;
    app.cleanup().await;
}
