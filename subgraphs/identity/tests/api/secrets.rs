//! No secret (client secret, API token, access token) ever appears in events, errors or logs.

use serde_json::Value;

use crate::helpers::{bootstrap, client, spawn_app};

#[tokio::test]
async fn secrets_never_appear_in_events_errors_or_logs() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "r", &["identity:read"]).await;
    let (id, secret) = client(&app, &op, "acme", &svc, &["identity:read"]).await;
    let (_, ok) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    let access = ok["access_token"].as_str().unwrap().to_owned();
    let v = app.ok(&op, "mutation($p: ID!) { createApiToken(tenantId: \"acme\", input: { principalId: $p, name: \"n\", scopes: [] }) { token } }", serde_json::json!({ "p": svc })).await;
    let api = v["createApiToken"]["token"].as_str().unwrap().to_owned();
    let (_, err) =
        app.form("/oauth/token", Some((&id, &format!("{secret}x"))), &[], "grant_type=client_credentials").await;
    let bad = app.gql(&format!("{api}x"), "{ me { id } }", serde_json::json!({})).await;
    app.form(
        "/oauth/revoke",
        None,
        &[(kernel::auth::INTERNAL_SECRET_HEADER, &app.internal_secret())],
        &format!("token={api}"),
    )
    .await;

    let admin = app.admin_pool().await;
    let events: Vec<Value> = sqlx::query_scalar("SELECT envelope FROM outbox").fetch_all(&admin).await.unwrap();
    assert!(events.len() >= 6);
    let haystacks = [
        serde_json::to_string(&events).unwrap(),
        err.to_string(),
        bad.to_string(),
        String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned(),
    ];
    for (what, hay) in ["events", "token error", "GraphQL error", "logs"].iter().zip(&haystacks) {
        for secret in [&secret, &op, &api, &access] {
            assert!(!hay.contains(secret.as_str()), "a secret appeared in the {what}");
        }
    }
    app.cleanup().await;
}
