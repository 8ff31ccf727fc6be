//! The number of SQL statements a request issues does not grow with the number of principals it returns.

use serde_json::json;

use crate::helpers::{bootstrap, spawn_app_without_polling, TestApp};

const PRINCIPALS: &str = "{ principals(first: 50) { nodes { id kind status displayName roles { key permissions } } } }";

/// Statements issued while answering `query`, DataLoader batches included.
async fn statements(app: &TestApp, token: &str, query: &str) -> (usize, serde_json::Value) {
    // Once unmeasured first, so the pool holds the connections the request needs: opening one runs setup
    // statements that have nothing to do with the request.
    app.ok(token, query, json!({})).await;
    test_support::count_statements(app.ok(token, query, json!({}))).await
}

/// Adds `n` service principals to `tenant`, each bound to `reader` and every other one to `writer` too.
async fn principals(app: &TestApp, op: &str, tenant: &str, n: usize) {
    for i in 0..n {
        let id = app.service(op, tenant, "reader", &["identity:read"]).await;
        if i % 2 == 0 {
            app.ok(
                op,
                "mutation($t: ID, $id: ID!) { bindRole(tenantId: $t, principalId: $id, roleKey: \"writer\") }",
                json!({ "t": tenant, "id": id }),
            )
            .await;
        }
    }
}

#[tokio::test]
async fn statement_count_is_constant_in_the_number_of_principals_returned() {
    let app = spawn_app_without_polling().await;
    let op = bootstrap(&app).await;
    app.ok(&op, "mutation { defineRole(tenantId: \"acme\", input: { key: \"writer\", permissions: [\"identity:write\"] }) { key } }", json!({}))
        .await;
    let member = app.member_token("acme", &["identity:read"]);
    let operator = PRINCIPALS.replace("principals(first: 50)", "principals(tenantId: \"acme\", first: 50)");

    principals(&app, &op, "acme", 2).await;
    let (few, data) = statements(&app, &member, PRINCIPALS).await;
    assert_eq!(data["principals"]["nodes"].as_array().unwrap().len(), 2);
    let (few_op, _) = statements(&app, &op, &operator).await;

    principals(&app, &op, "acme", 10).await;
    let (many, data) = statements(&app, &member, PRINCIPALS).await;
    let nodes = data["principals"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 12);
    assert!(nodes.iter().all(|n| n["kind"] == "SERVICE" && n["status"] == "ACTIVE"));
    assert!(nodes.iter().all(|n| n["roles"].as_array().unwrap().iter().any(|r| r["key"] == "reader")));
    assert_eq!(nodes.iter().filter(|n| n["roles"].as_array().unwrap().len() == 2).count(), 6);
    let (many_op, data) = statements(&app, &op, &operator).await;
    assert_eq!(data["principals"]["nodes"].as_array().unwrap().len(), 12);

    assert!(few > 0, "the counter saw no statements at all");
    assert_eq!(few, many, "statements grew with the result: {few} for 2 principals, {many} for 12");
    assert_eq!(few_op, many_op, "an operator's statements grew with the result: {few_op} for 2, {many_op} for 12");
    app.cleanup().await;
}
