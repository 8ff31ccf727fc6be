//! Live subscriptions over WebSocket: the connection's limits, and sessions that end when their
//! credentials do.

use std::time::Duration;

use kernel::broker::Broker;
use kernel::envelope::{Envelope, EventMeta};
use lapin::options::BasicPublishOptions;
use secrecy::ExposeSecret;
use serde_json::json;
use test_support::{Next, WsClient};

use crate::helpers::{spawn_app_tuned, TestApp, AMQP};

const EVENTS: &str = "subscription { tenantEvents { eventType } }";

async fn ws_url(app: &TestApp) -> String {
    format!("{}/graphql", app.serve().await.replace("http://", "ws://"))
}

fn secret(app: &TestApp) -> String {
    app.config.router_secret.expose_secret().to_owned()
}

#[tokio::test]
async fn a_connection_that_never_initialises_is_closed() {
    let app = spawn_app_tuned(|c| c.ws_init_timeout_secs = 1).await;
    let mut ws = WsClient::open(&ws_url(&app).await).await;
    let started = std::time::Instant::now();
    assert_eq!(ws.closed_within(Duration::from_secs(5)).await, Some(4408));
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
    app.cleanup().await;
}

#[tokio::test]
async fn a_connection_holds_a_bounded_number_of_subscriptions() {
    let app = spawn_app_tuned(|c| c.ws_max_subscriptions = 2).await;
    app.published_edition("pro", 10).await;
    let tenant = format!("ws-{}", app.id);
    app.active_tenant(&tenant, "pro").await;
    let mut ws = WsClient::init(&ws_url(&app).await, &secret(&app), &app.member_token(&tenant)).await;
    for id in ["1", "2", "3"] {
        ws.subscribe(id, EVENTS).await;
    }
    match ws.next_control(Duration::from_secs(5)).await {
        Next::Message(m) => {
            assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("3"), Some("error")), "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "QUOTA_EXCEEDED");
        }
        other => panic!("the third subscription was not refused: {other:?}"),
    }
    // Ending one makes room for another.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    match ws.next_control(Duration::from_secs(5)).await {
        Next::Message(m) => assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("1"), Some("complete")), "{m}"),
        other => panic!("{other:?}"),
    }
    ws.subscribe("4", EVENTS).await;
    assert_eq!(ws.next_control(Duration::from_millis(500)).await, Next::Silence, "the fourth was admitted");
    app.cleanup().await;
}

#[tokio::test]
async fn a_live_subscription_ends_when_its_tenant_is_suspended() {
    let app = spawn_app_tuned(|_| {}).await;
    app.published_edition("pro", 10).await;
    let tenant = format!("sus-{}", app.id);
    app.active_tenant(&tenant, "pro").await;
    let mut ws = WsClient::init(&ws_url(&app).await, &secret(&app), &app.member_token(&tenant)).await;
    ws.subscribe("1", EVENTS).await;
    assert!(!matches!(ws.next(Duration::from_millis(300)).await, Next::Closed(..)), "the subscription is live");
    let started = std::time::Instant::now();
    app.ok(
        &app.operator_token(),
        "mutation($t: ID!) { suspendTenant(id: $t, reason: \"unpaid\") { status } }",
        json!({ "t": tenant }),
    )
    .await;
    assert_eq!(ws.closed_within(Duration::from_secs(3)).await, Some(4403));
    assert!(started.elapsed() < Duration::from_secs(1), "closed {:?} after the suspension", started.elapsed());
    // Coming back with the same token gets no new stream.
    let mut again = WsClient::init(&ws_url(&app).await, &secret(&app), &app.member_token(&tenant)).await;
    again.subscribe("1", EVENTS).await;
    match again.next(Duration::from_secs(5)).await {
        Next::Message(m) => {
            assert_eq!(m["type"], "next", "{m}");
            assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
        }
        other => panic!("a suspended tenant subscribed again: {other:?}"),
    }
    match again.next(Duration::from_secs(5)).await {
        Next::Message(m) => assert_eq!(m["type"], "complete", "the refused subscription ends: {m}"),
        other => panic!("{other:?}"),
    }
    app.cleanup().await;
}

/// Publishes an identity event the way identity's relay would.
async fn publish_identity_event<E: kernel::envelope::Event>(tenant: &str, event: &E) {
    let env = Envelope::new(&kernel::TenantId::try_from(tenant.to_owned()).unwrap(), &EventMeta::default(), event);
    let ch = Broker::new(AMQP.to_owned().into()).channel().await.unwrap();
    let props = kernel::broker::properties(&env, 1);
    let body = serde_json::to_vec(&env).unwrap();
    ch.basic_publish(kernel::broker::EXCHANGE, &E::routing_key(), BasicPublishOptions::default(), &body, props)
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_live_subscription_ends_when_its_token_is_revoked_or_its_principal_disabled() {
    use kernel::contracts::identity::{AccessTokenRevoked, PrincipalDisabled};
    let app = spawn_app_tuned(|_| {}).await;
    app.published_edition("pro", 10).await;
    let tenant = format!("rev-{}", app.id);
    app.active_tenant(&tenant, "pro").await;
    let url = ws_url(&app).await;

    // Revoked: the session of exactly that token ends; another of the same tenant stays.
    let exp = chrono::Utc::now().timestamp() + 600;
    let jti = format!("jti-{}", app.id);
    let claims = json!({ "iss": test_support::ISSUER, "aud": test_support::AUDIENCE, "sub": "someone", "tid": tenant,
        "scope": "tenancy:read", "exp": exp, "jti": jti });
    let mut doomed = WsClient::init(&url, &secret(&app), &app.signer.sign(&claims)).await;
    let mut other = WsClient::init(&url, &secret(&app), &app.member_token(&tenant)).await;
    doomed.subscribe("1", EVENTS).await;
    other.subscribe("1", EVENTS).await;
    publish_identity_event(&tenant, &AccessTokenRevoked { jti: jti.clone(), expires_at: exp }).await;
    assert_eq!(doomed.closed_within(Duration::from_secs(2)).await, Some(4403));
    assert!(!matches!(other.next(Duration::from_millis(300)).await, Next::Closed(..)), "another token's session stays");

    // Disabled: every session of that principal ends.
    let principal = test_support::tenant_subject(&tenant).parse().unwrap();
    publish_identity_event(&tenant, &PrincipalDisabled { principal_id: principal }).await;
    assert_eq!(other.closed_within(Duration::from_secs(2)).await, Some(4403));
    app.cleanup().await;
}

#[tokio::test]
async fn the_server_pings_idle_connections() {
    let app = spawn_app_tuned(|c| c.ws_ping_secs = 1).await;
    app.published_edition("pro", 10).await;
    let tenant = format!("ping-{}", app.id);
    app.active_tenant(&tenant, "pro").await;
    let mut ws = WsClient::init(&ws_url(&app).await, &secret(&app), &app.member_token(&tenant)).await;
    assert!(ws.pinged_within(Duration::from_secs(3)).await, "no keep-alive ping");
    app.cleanup().await;
}
