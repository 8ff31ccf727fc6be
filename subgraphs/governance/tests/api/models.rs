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
