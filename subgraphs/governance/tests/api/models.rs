//! Model policies through the API: drafted, published (immutable), evaluated for a task.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{code, spawn_app};

const DRAFT: &str = "mutation($i: DraftModelPolicyInput!) { draftModelPolicy(input: $i) { id version status } }";
const PUBLISH: &str = "mutation($id: ID!) { publishModelPolicy(id: $id) { status } }";
const EVAL: &str =
    "query($t: ModelTaskInput!) { evaluateModelPolicy(task: $t) { allowed reason policies maxTokensPerTask } }";

#[tokio::test]
async fn model_policies_decide_by_the_most_specific_scope() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let shop = Uuid::now_v7();
    let task = json!({ "provider": "openai", "model": "gpt-4o", "tokens": 1000 });
    let v = app.ok(&t, EVAL, json!({ "t": task })).await;
    assert_eq!(v["evaluateModelPolicy"]["allowed"], false, "default deny");

    let base = app
        .ok(&t, DRAFT, json!({ "i": { "name": "base", "allowed": [{ "provider": "openai", "models": ["*"] }], "maxTokensPerTask": 8000 } }))
        .await["draftModelPolicy"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = app.ok(&t, EVAL, json!({ "t": task })).await;
    assert_eq!(v["evaluateModelPolicy"]["allowed"], false, "a draft does not count");
    app.ok(&t, PUBLISH, json!({ "id": base })).await;
    let shop_policy = app
        .ok(&t, DRAFT, json!({ "i": { "name": "shop", "projectId": shop, "allowed": [{ "provider": "azure-openai", "models": ["gpt-4o"] }], "maxTokensPerTask": 2000 } }))
        .await["draftModelPolicy"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(&t, PUBLISH, json!({ "id": shop_policy })).await;

    let v = app.ok(&t, EVAL, json!({ "t": task })).await;
    assert_eq!(
        v["evaluateModelPolicy"],
        json!({ "allowed": true, "reason": "allowed", "policies": ["base@1"], "maxTokensPerTask": 8000 })
    );
    let v = app.ok(&t, EVAL, json!({ "t": { "projectId": shop, "provider": "openai", "model": "gpt-4o" } })).await;
    assert_eq!(v["evaluateModelPolicy"]["allowed"], false, "the project's policy narrows");
    let v = app
        .ok(
            &t,
            EVAL,
            json!({ "t": { "projectId": shop, "provider": "azure-openai", "model": "gpt-4o", "tokens": 3000 } }),
        )
        .await;
    assert_eq!(v["evaluateModelPolicy"]["allowed"], false, "over the project's token limit");
    assert_eq!(v["evaluateModelPolicy"]["maxTokensPerTask"], 2000);

    let v = app.gql(&t, PUBLISH, json!({ "id": base })).await;
    assert_eq!(code(&v), "CONFLICT", "published versions are immutable");
    let v = app.gql(&t, DRAFT, json!({ "i": { "name": "bad", "allowed": [] } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let v = app.gql(&t, DRAFT, json!({ "i": { "name": "bad", "allowed": [{ "provider": "openai", "models": ["*"] }], "maxTokensPerTask": 0 } })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let v = app
        .ok(
            &t,
            DRAFT,
            json!({ "i": { "name": "base", "allowed": [{ "provider": "openai", "models": ["gpt-4o-mini"] }] } }),
        )
        .await;
    assert_eq!(v["draftModelPolicy"]["version"], 2, "a change is a new version");
    app.cleanup().await;
}

#[tokio::test]
async fn operators_publish_every_tenants_policies_again_for_a_domain_that_came_later() {
    let app = spawn_app().await;
    let (a, b) = (app.member("acme"), app.member("globex"));
    let mut published = Vec::new();
    for (token, name) in [(&a, "base"), (&a, "lean"), (&b, "base")] {
        let input = json!({ "i": { "name": name, "allowed": [{ "provider": "openai", "models": ["*"] }] } });
        let id = app.ok(token, DRAFT, input).await["draftModelPolicy"]["id"].as_str().unwrap().to_owned();
        app.ok(token, PUBLISH, json!({ "id": id })).await;
        published.push(id);
    }
    // A draft stays unpublished, and is not sent.
    app.ok(&a, DRAFT, json!({ "i": { "name": "draft", "allowed": [{ "provider": "openai", "models": ["*"] }] } }))
        .await;
    const REPUBLISH: &str = "mutation { republishModelPolicies }";
    assert_eq!(code(&app.gql(&a, REPUBLISH, json!({})).await), "FORBIDDEN", "operators only");
    let v = app.ok(&app.operator_token(), REPUBLISH, json!({})).await;
    assert_eq!(v["republishModelPolicies"], 3);
    // Each published version left twice — at its publication and now — under its own tenant, whole.
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT tenant_id, envelope->'payload' FROM outbox WHERE event_type = 'ModelPolicyPublished' ORDER BY seq",
    )
    .fetch_all(&app.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for id in &published {
        let sent: Vec<&(String, serde_json::Value)> = rows.iter().filter(|(_, p)| p["modelPolicyId"] == *id).collect();
        assert_eq!(sent.len(), 2, "{id}");
        assert_eq!(sent[0], sent[1], "the same event, under the same tenant");
        assert_eq!(sent[1].1["allowed"], json!([{ "provider": "openai", "models": ["*"] }]));
    }
    app.cleanup().await;
}
