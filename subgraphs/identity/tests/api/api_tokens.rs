//! API tokens: what they may carry, revocation through GraphQL, last-used times.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{api_token, bootstrap, code, spawn_app};

#[tokio::test]
async fn a_token_carries_at_most_what_its_principal_holds() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "ops", &["tenancy:read", "identity:read"]).await;
    let (token, token_id) = api_token(&app, &op, "acme", &svc, &["tenancy:read"]).await;
    assert!(kernel::api_token::well_formed(&token));
    let v = app.gql(&op, "mutation($p: ID!) { createApiToken(tenantId: \"acme\", input: { principalId: $p, name: \"x\", scopes: [\"quota:consume\"] }) { token } }", json!({ "p": svc })).await;
    assert_eq!(code(&v), "FORBIDDEN", "a token cannot carry more than its principal holds");
    let listed = app.ok(&op, "{ apiTokens(tenantId: \"acme\") { id principalId scopes revokedAt } }", json!({})).await;
    assert_eq!(
        listed["apiTokens"],
        json!([{ "id": token_id, "principalId": svc, "scopes": ["tenancy:read"], "revokedAt": null }])
    );
    // Another tenant's principal cannot be given a token here.
    let v = app.gql(&op, "mutation($p: ID!) { createApiToken(tenantId: \"bravo\", input: { principalId: $p, name: \"x\", scopes: [] }) { token } }", json!({ "p": svc })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn revoking_through_graphql_refuses_the_token_at_once_and_only_in_its_tenant() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "ops", &["identity:read"]).await;
    let (token, token_id) = api_token(&app, &op, "acme", &svc, &["identity:read"]).await;
    let me = app.ok(&token, "{ me { id kind } }", json!({})).await;
    assert_eq!(me["me"], json!({ "id": svc, "kind": "SERVICE" }));

    let revoke = "mutation($t: ID, $id: ID!) { revokeApiToken(tenantId: $t, id: $id) }";
    let v = app.gql(&op, revoke, json!({ "t": "bravo", "id": token_id })).await;
    assert_eq!(code(&v), "NOT_FOUND", "another tenant's name does not reach the token");
    app.ok(&token, "{ me { id } }", json!({})).await;
    let v = app.gql(&op, revoke, json!({ "t": "acme", "id": "not-an-id" })).await;
    assert_eq!((code(&v), v["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("id")));

    let v = app.ok(&op, revoke, json!({ "t": "acme", "id": token_id })).await;
    assert_eq!(v["revokeApiToken"], true);
    assert_eq!(code(&app.gql(&token, "{ me { id } }", json!({})).await), "UNAUTHENTICATED");
    let listed = app.ok(&op, "{ apiTokens(tenantId: \"acme\") { id revokedAt } }", json!({})).await;
    assert!(!listed["apiTokens"][0]["revokedAt"].is_null());
    app.cleanup().await;
}

#[tokio::test]
async fn last_used_times_reach_the_database() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "ops", &["identity:read"]).await;
    let (token, _) = api_token(&app, &op, "acme", &svc, &["identity:read"]).await;
    let listed = app.ok(&op, "{ apiTokens(tenantId: \"acme\") { lastUsedAt } }", json!({})).await;
    assert!(listed["apiTokens"][0]["lastUsedAt"].is_null());
    app.ok(&token, "{ me { id } }", json!({})).await;
    // Flushed every 30 s in the background; here at once (the background flush may have beaten us to it).
    let state = &app.state;
    identity::tokens::flush_last_used(&state.kernel.db, &state.kernel.cache).await.unwrap();
    test_support::eventually("lastUsedAt to be recorded", Duration::from_secs(5), || async {
        let listed = app.ok(&op, "{ apiTokens(tenantId: \"acme\") { lastUsedAt } }", json!({})).await;
        !listed["apiTokens"][0]["lastUsedAt"].is_null()
    })
    .await;
    app.cleanup().await;
}
