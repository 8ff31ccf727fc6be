//! `identity bootstrap`: the first platform operator, once.

use serde_json::json;

use crate::helpers::{bootstrap, spawn_app};

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
async fn the_first_operator_is_an_active_user_holding_platform_admin() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let me = app.ok(&op, "{ me { kind status roles { key permissions } } }", json!({})).await;
    assert_eq!(
        me["me"],
        json!({ "kind": "USER", "status": "ACTIVE", "roles": [{ "key": "platform-admin",
            "permissions": ["platform:admin", "identity:read", "identity:write"] }] })
    );
    app.cleanup().await;
}
