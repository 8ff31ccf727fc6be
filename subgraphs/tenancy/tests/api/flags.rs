//! Feature flags: targeting by tenant, edition and rollout; changes reach every cached copy through events.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{code, spawn_app};

const SET: &str = "mutation($i: FeatureFlagInput!) { setFeatureFlag(input: $i) { key version } }";
const EVAL: &str = "query($k: String!) { featureFlag(key: $k) { enabled reason } }";

#[tokio::test]
async fn flags_evaluate_by_tenant_edition_and_rollout_and_changes_invalidate_caches() {
    let app = spawn_app().await;
    app.published_edition("pro", 10).await;
    app.published_edition("team", 10).await;
    let key = format!("flag-{}", app.id);
    app.active_tenant("acme", "pro").await;
    app.active_tenant("globex", "team").await;
    let op = app.operator_token();
    let acme = app.member_token("acme");
    let globex = app.member_token("globex");

    app.ok(&op, SET, json!({ "i": { "key": key, "enabled": true, "rolloutPercent": 100, "editions": ["pro"] } })).await;
    let v = app.ok(&acme, EVAL, json!({ "k": key })).await;
    assert_eq!(v["featureFlag"], json!({ "enabled": true, "reason": "IN_ROLLOUT" }));
    let v = app.ok(&globex, EVAL, json!({ "k": key })).await;
    assert_eq!(v["featureFlag"], json!({ "enabled": false, "reason": "EDITION_NOT_TARGETED" }));
    let v = app.ok(&acme, EVAL, json!({ "k": "no-such-flag" })).await;
    assert_eq!(v["featureFlag"], json!({ "enabled": false, "reason": "UNKNOWN_FLAG" }));

    // Turning the flag off reaches the cached copies through the change event, well before they expire.
    let v = app
        .ok(&op, SET, json!({ "i": { "key": key, "enabled": false, "rolloutPercent": 100, "editions": ["pro"] } }))
        .await;
    assert_eq!(v["setFeatureFlag"]["version"], 2);
    test_support::eventually(
        "the change to reach the cached copies (local copies live 30 s)",
        Duration::from_secs(5),
        || async { app.ok(&acme, EVAL, json!({ "k": key })).await["featureFlag"]["reason"] == "DISABLED" },
    )
    .await;

    // Allow lists beat edition targeting; deny lists beat allow lists.
    app.ok(&op, SET, json!({ "i": { "key": key, "enabled": true, "editions": ["pro"], "allowTenants": ["globex", "acme"], "denyTenants": ["acme"] } }))
        .await;
    test_support::eventually("allow and deny lists to apply", Duration::from_secs(5), || async {
        let a = app.ok(&acme, EVAL, json!({ "k": key })).await;
        let g = app.ok(&globex, EVAL, json!({ "k": key })).await;
        a["featureFlag"]["reason"] == "DENIED" && g["featureFlag"]["reason"] == "ALLOWED"
    })
    .await;
    let all = app.ok(&globex, "{ featureFlags { key enabled } }", json!({})).await;
    assert!(all["featureFlags"].as_array().unwrap().contains(&json!({ "key": key, "enabled": true })));

    let bad = app.gql(&op, SET, json!({ "i": { "key": key, "enabled": true, "rolloutPercent": 101 } })).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    let bad = app.gql(&op, SET, json!({ "i": { "key": key, "enabled": true, "allowTenants": ["Not Valid"] } })).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(code(&app.gql(&acme, SET, json!({ "i": { "key": key, "enabled": true } })).await), "FORBIDDEN");
    app.ok(&op, "mutation($k: String!) { deleteFeatureFlag(key: $k) }", json!({ "k": key })).await;
    assert_eq!(
        code(&app.gql(&op, "mutation($k: String!) { deleteFeatureFlag(key: $k) }", json!({ "k": key })).await),
        "NOT_FOUND"
    );
    app.cleanup().await;
}
