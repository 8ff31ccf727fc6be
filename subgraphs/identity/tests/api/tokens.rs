use serde_json::{json, Value};

use crate::helpers::{code, spawn_app, TestApp};

async fn bootstrap(app: &TestApp) -> String {
    identity::bootstrap(&app.state).await.expect("bootstrap")
}

async fn client(app: &TestApp, op: &str, tenant: &str, principal: &str, scopes: &[&str]) -> (String, String) {
    let v = app
        .ok(op, "mutation($t: ID, $p: ID!, $s: [String!]!) { createOAuthClient(tenantId: $t, principalId: $p, scopes: $s) { clientSecret client { clientId } } }", json!({ "t": tenant, "p": principal, "s": scopes }))
        .await;
    let c = &v["createOAuthClient"];
    (c["client"]["clientId"].as_str().unwrap().to_owned(), c["clientSecret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn bootstrap_runs_once_and_its_token_is_a_platform_operator() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    assert!(kernel::api_token::well_formed(&op));
    assert!(identity::bootstrap(&app.state).await.is_err(), "a second bootstrap must refuse");
    let me = app.ok(&op, "{ me { displayName tenant { id } } }", json!({})).await;
    assert_eq!(me["me"], json!({ "displayName": "Platform operator", "tenant": null }));
    // Stored only as a hash.
    let admin = app.admin_pool().await;
    let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE token_hash = $1 OR token_hash = $2")
        .bind(kernel::api_token::hash(&op))
        .bind(&op)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(leaked, 1, "exactly the hash is stored");
    app.cleanup().await;
}

#[tokio::test]
async fn client_credentials_grant_issues_scoped_tokens() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "reader", &["tenancy:read", "identity:read"]).await;
    let (id, secret) = client(&app, &op, "acme", &svc, &["tenancy:read", "tenancy:write"]).await;
    assert!(id.starts_with("cpc_acme_"));

    // Granted: what both the client and the principal's roles allow.
    let (status, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "tenancy:read");
    let token = body["access_token"].as_str().unwrap();
    let caller = app.state.kernel.auth.authenticate(token).await.unwrap();
    assert_eq!(caller.tenant.as_ref().map(|t| t.as_str()), Some("acme"));
    assert_eq!(caller.subject, svc);
    assert!(caller.scopes.contains("tenancy:read") && !caller.scopes.contains("tenancy:write"));

    let (status, body) =
        app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials&scope=tenancy:write").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = app.form("/oauth/token", Some((&id, "cps_wrong")), &[], "grant_type=client_credentials").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=password").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (status, _) = app.form("/oauth/token", None, &[], "grant_type=client_credentials").await;
    assert_eq!(status, 401);

    // Rotation: the old secret stops working at once.
    let v = app
        .ok(
            &op,
            "mutation($c: String!) { rotateOAuthClientSecret(tenantId: \"acme\", clientId: $c) { clientSecret } }",
            json!({ "c": id }),
        )
        .await;
    let fresh = v["rotateOAuthClientSecret"]["clientSecret"].as_str().unwrap();
    assert_eq!(app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await.0, 401);
    assert_eq!(app.form("/oauth/token", Some((&id, fresh)), &[], "grant_type=client_credentials").await.0, 200);
    app.cleanup().await;
}

#[tokio::test]
async fn a_role_bound_in_one_tenant_grants_nothing_in_another() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let alpha_admin = app.service(&op, "alpha", "admin", &["identity:read", "identity:write"]).await;
    let (id, secret) = client(&app, &op, "alpha", &alpha_admin, &["identity:read", "identity:write"]).await;
    let (_, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    let token = body["access_token"].as_str().unwrap();

    // Its own tenant: fine. Another tenant, by argument: as if it did not exist.
    app.ok(token, "{ roles { key } }", json!({})).await;
    let v = app.gql(token, "{ roles(tenantId: \"bravo\") { key } }", json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app
        .gql(
            token,
            "mutation { createPrincipal(tenantId: \"bravo\", input: { kind: SERVICE, displayName: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    // Alpha's role cannot be bound in bravo, nor alpha's principal given a bravo client.
    let v = app
        .gql(
            &op,
            "mutation($p: ID!) { bindRole(tenantId: \"bravo\", principalId: $p, roleKey: \"admin\") }",
            json!({ "p": alpha_admin }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app.gql(&op, "mutation($p: ID!) { createOAuthClient(tenantId: \"bravo\", principalId: $p, scopes: []) { clientSecret } }", json!({ "p": alpha_admin })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    // And platform:admin is never grantable inside a tenant.
    let v = app.gql(&op, "mutation { defineRole(tenantId: \"alpha\", input: { key: \"x\", permissions: [\"platform:admin\"] }) { key } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    // Missing scope: FORBIDDEN.
    let reader = app.service(&op, "alpha", "reader", &["identity:read"]).await;
    let (rid, rsecret) = client(&app, &op, "alpha", &reader, &["identity:read"]).await;
    let (_, body) = app.form("/oauth/token", Some((&rid, &rsecret)), &[], "grant_type=client_credentials").await;
    let v = app
        .gql(
            body["access_token"].as_str().unwrap(),
            "mutation { defineRole(input: { key: \"y\", permissions: [] }) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    app.cleanup().await;
}

#[tokio::test]
async fn api_tokens_introspection_and_revocation() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "ops", &["tenancy:read", "identity:read"]).await;
    let v = app
        .ok(&op, "mutation($p: ID!) { createApiToken(tenantId: \"acme\", input: { principalId: $p, name: \"ci\", scopes: [\"tenancy:read\"] }) { token apiToken { id scopes } } }", json!({ "p": svc }))
        .await;
    let token = v["createApiToken"]["token"].as_str().unwrap().to_owned();
    let token_id = v["createApiToken"]["apiToken"]["id"].as_str().unwrap().to_owned();
    assert!(kernel::api_token::well_formed(&token));
    let v = app.gql(&op, "mutation($p: ID!) { createApiToken(tenantId: \"acme\", input: { principalId: $p, name: \"x\", scopes: [\"quota:consume\"] }) { token } }", json!({ "p": svc })).await;
    assert_eq!(code(&v), "FORBIDDEN", "a token cannot carry more than its principal holds");

    let body = format!("token={token}");
    let (status, v) = app
        .form("/oauth/introspect", None, &[(kernel::auth::INTERNAL_SECRET_HEADER, &app.internal_secret())], &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["active"].as_bool(), v["tid"].as_str(), v["scope"].as_str(), v["sub"].as_str()),
        (Some(true), Some("acme"), Some("tenancy:read"), Some(svc.as_str()))
    );
    assert_eq!(
        app.form("/oauth/introspect", None, &[], &body).await.0,
        401,
        "introspection needs a client or the internal secret"
    );
    // A client of another tenant learns nothing about this token.
    let other = app.service(&op, "bravo", "r", &["identity:read"]).await;
    let (cid, csecret) = client(&app, &op, "bravo", &other, &["identity:read"]).await;
    let (_, v) = app.form("/oauth/introspect", Some((&cid, &csecret)), &[], &body).await;
    assert_eq!(v, json!({ "active": false }));

    // Revocation (RFC 7009): the token stops working here at once.
    let (status, _) =
        app.form("/oauth/revoke", None, &[(kernel::auth::INTERNAL_SECRET_HEADER, &app.internal_secret())], &body).await;
    assert_eq!(status, 200);
    let (_, v) = app
        .form("/oauth/introspect", None, &[(kernel::auth::INTERNAL_SECRET_HEADER, &app.internal_secret())], &body)
        .await;
    assert_eq!(v["active"], false);
    assert_eq!(code(&app.gql(&token, "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let listed = app.ok(&op, "{ apiTokens(tenantId: \"acme\") { id revokedAt } }", json!({})).await;
    assert_eq!(listed["apiTokens"][0]["id"], token_id.as_str());
    assert!(!listed["apiTokens"][0]["revokedAt"].is_null());
    // Unknown tokens still get 200 from the revocation endpoint.
    assert_eq!(
        app.form(
            "/oauth/revoke",
            None,
            &[(kernel::auth::INTERNAL_SECRET_HEADER, &app.internal_secret())],
            "token=nonsense"
        )
        .await
        .0,
        200
    );
    app.cleanup().await;
}

#[tokio::test]
async fn rotated_keys_keep_verifying_and_the_jwks_lists_them() {
    let app = spawn_app(2).await;
    let (_, jwks) =
        app.call(axum::http::Request::get("/.well-known/jwks.json").body(axum::body::Body::empty()).unwrap()).await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, [app.keys[0].kid(), app.keys[1].kid()]);
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "r", &["identity:read"]).await;
    let (id, secret) = client(&app, &op, "acme", &svc, &["identity:read"]).await;
    let (_, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    let token = body["access_token"].as_str().unwrap();
    let header: Value = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["kid"], app.keys[0].kid(), "the first key signs");
    // A token signed by the key being rotated out still verifies.
    let old = app.keys[1].mint(
        crate::helpers::ISSUER,
        "control-plane",
        &svc,
        Some("acme"),
        &["identity:read"],
        std::time::Duration::from_secs(60),
    );
    app.ok(&old, "{ me { id } }", json!({})).await;
    app.cleanup().await;
}

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
    let v = app.ok(&op, "mutation($p: ID!) { createApiToken(tenantId: \"acme\", input: { principalId: $p, name: \"n\", scopes: [] }) { token } }", json!({ "p": svc })).await;
    let api = v["createApiToken"]["token"].as_str().unwrap().to_owned();
    let (_, err) =
        app.form("/oauth/token", Some((&id, &format!("{secret}x"))), &[], "grant_type=client_credentials").await;
    let bad = app.gql(&format!("{api}x"), "{ me { id } }", json!({})).await;
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
