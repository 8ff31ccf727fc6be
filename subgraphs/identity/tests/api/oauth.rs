//! The token service: the client-credentials grant, introspection, revocation, key rotation and the JWKS.

use serde_json::{json, Value};

use crate::helpers::{api_token, bootstrap, client, code, spawn_app};

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
async fn a_revoked_client_gets_no_tokens_and_clients_stay_in_their_tenant() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "reader", &["identity:read"]).await;
    let (id, secret) = client(&app, &op, "acme", &svc, &["identity:read"]).await;
    let listed =
        app.ok(&op, "{ oauthClients(tenantId: \"acme\") { clientId principalId scopes revokedAt } }", json!({})).await;
    assert_eq!(
        listed["oauthClients"],
        json!([{ "clientId": id, "principalId": svc, "scopes": ["identity:read"], "revokedAt": null }])
    );

    // Another tenant's name does not reach the client: not found, and nothing changes.
    for mutation in [
        "mutation($c: String!) { rotateOAuthClientSecret(tenantId: \"bravo\", clientId: $c) { clientSecret } }",
        "mutation($c: String!) { revokeOAuthClient(tenantId: \"bravo\", clientId: $c) { revokedAt } }",
    ] {
        assert_eq!(code(&app.gql(&op, mutation, json!({ "c": id })).await), "NOT_FOUND");
    }
    assert_eq!(
        app.ok(&op, "{ oauthClients(tenantId: \"bravo\") { clientId } }", json!({})).await["oauthClients"],
        json!([])
    );
    assert_eq!(app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await.0, 200);

    let v = app
        .ok(
            &op,
            "mutation($c: String!) { revokeOAuthClient(tenantId: \"acme\", clientId: $c) { revokedAt } }",
            json!({ "c": id }),
        )
        .await;
    assert!(!v["revokeOAuthClient"]["revokedAt"].is_null());
    let (status, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    // A revoked client's secret cannot be rotated back to life.
    let v = app
        .gql(
            &op,
            "mutation($c: String!) { rotateOAuthClientSecret(tenantId: \"acme\", clientId: $c) { clientSecret } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn introspection_and_revocation_of_api_tokens() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "ops", &["tenancy:read", "identity:read"]).await;
    let (token, token_id) = api_token(&app, &op, "acme", &svc, &["tenancy:read"]).await;

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
async fn the_token_service_bounds_its_request_bodies() {
    let app = spawn_app(1).await;
    let huge = format!("grant_type=client_credentials&scope={}", "x".repeat(300 * 1024));
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let (status, _) = app.form(path, Some(("cpc_acme_x", "cps_x")), &[], &huge).await;
        assert_eq!(status, 413, "{path}");
    }
    // A normal-sized request still gets its ordinary answer.
    let (status, _) =
        app.form("/oauth/token", Some(("cpc_acme_x", "cps_x")), &[], "grant_type=client_credentials").await;
    assert_eq!(status, 401);
    app.cleanup().await;
}
