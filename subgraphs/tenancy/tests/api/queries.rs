//! The number of SQL statements a request issues does not grow with the number of objects it returns.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_without_polling, TestApp};

const DEEP_LIST: &str = "{ tenants(first: 50) { nodes { id edition { name quotaTemplate { key } }
    subscriptions { status edition { id version } } quotas { key used remaining } } pageInfo { hasNextPage } } }";

/// Statements issued while answering `query`, DataLoader batches included.
async fn statements(app: &TestApp, token: &str, query: &str) -> (usize, serde_json::Value) {
    // Once unmeasured first, so the pool holds the connections the request needs: opening one runs setup
    // statements that have nothing to do with the request.
    app.ok(token, query, json!({})).await;
    test_support::count_statements(app.ok(token, query, json!({}))).await
}

#[tokio::test]
async fn statement_count_is_constant_in_the_number_of_tenants_returned() {
    let app = spawn_app_without_polling().await;
    app.published_edition("pro", 10).await;
    app.published_edition("team", 5).await;
    let op = app.operator_token();
    for i in 0..2 {
        app.active_tenant(&format!("few-{i}"), if i % 2 == 0 { "pro" } else { "team" }).await;
    }
    let (few, data) = statements(&app, &op, DEEP_LIST).await;
    assert_eq!(data["tenants"]["nodes"].as_array().unwrap().len(), 2);

    for i in 0..10 {
        app.active_tenant(&format!("many-{i}"), if i % 2 == 0 { "pro" } else { "team" }).await;
    }
    let (many, data) = statements(&app, &op, DEEP_LIST).await;
    let nodes = data["tenants"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 12);
    assert!(nodes.iter().all(|n| n["edition"]["name"] == "Edition" && n["quotas"][0]["key"] == "api-calls"));
    assert!(few > 0, "the counter saw no statements at all");
    assert_eq!(few, many, "statements grew with the result: {few} for 2 tenants, {many} for 12");
    app.cleanup().await;
}

#[tokio::test]
async fn pages_follow_cursors_to_the_end() {
    let app = spawn_app().await;
    app.published_edition("pro", 10).await;
    for i in 0..5 {
        app.active_tenant(&format!("page-{i}"), "pro").await;
    }
    let op = app.operator_token();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let v = app
            .ok(&op, "query($a: String) { tenants(first: 2, after: $a) { nodes { id } pageInfo { hasNextPage endCursor } } }", json!({ "a": after }))
            .await;
        let page = &v["tenants"];
        seen.extend(page["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
    app.cleanup().await;
}
