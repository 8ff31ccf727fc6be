//! Isolation: one tenant's policies, decisions, approvals, connections and model policies are invisible
//! and unchangeable to another, through the API and in SQL as the app role.

use chrono::Utc;
use serde_json::json;

use crate::helpers::{code, entity, spawn_app};

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, b) = (app.member("acme"), app.member("globex"));
    let policy = app.policy(&a, "readers", "ALLOW", "permit(principal, action == Action::\"read\", resource);").await;
    let r = json!({ "principal": entity("Principal", "x", &[]), "action": "read", "resource": entity("Project", "p", &[]) });
    let decision = app
        .ok(&a, "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) { id effect } }", json!({ "r": r }))
        .await;
    assert_eq!(decision["evaluatePolicy"]["effect"], "ALLOW");
    let decision = decision["evaluatePolicy"]["id"].as_str().unwrap().to_owned();
    let approval = app
        .ok(&a, "mutation($e: DateTime!) { requestApproval(input: { subjectKind: \"release.Gate\", subjectId: \"g\", summary: \"s\", approverRoles: [\"sre\"], expiresAt: $e }) { id } }", json!({ "e": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339() }))
        .await["requestApproval"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let connection = app
        .ok(&a, "mutation { createIntegrationConnection(input: { name: \"slack\", kind: CHAT, provider: \"slack\" }) { id } }", json!({}))
        .await["createIntegrationConnection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (q, id) in [
        ("query($id: ID!) { policy(id: $id) { id } }", &policy),
        ("query($id: ID!) { decision(id: $id) { id } }", &decision),
        ("query($id: ID!) { approval(id: $id) { id } }", &approval),
        ("query($id: ID!) { integrationConnection(id: $id) { id } }", &connection),
        ("mutation($id: ID!) { deprecatePolicy(id: $id) { id } }", &policy),
        ("mutation($id: ID!) { cancelApproval(id: $id) { id } }", &approval),
        ("mutation($id: ID!) { testIntegrationConnection(id: $id) { ok } }", &connection),
    ] {
        let v = app.gql(&b, q, json!({ "id": id })).await;
        assert_eq!(code(&v), "NOT_FOUND", "{q}: {v}");
    }
    for q in [
        "{ policies { edges { node { id } } } }",
        "{ decisions { edges { node { id } } } }",
        "{ approvals { edges { node { id } } } }",
        "{ integrationConnections { edges { node { id } } } }",
    ] {
        let v = app.ok(&b, q, json!({})).await;
        let list = v.as_object().unwrap().values().next().unwrap();
        assert_eq!(list["edges"], json!([]), "{q}");
    }

    // globex's own set does not hold acme's policy.
    let d = app
        .ok(&b, "query($r: PolicyRequestInput!) { evaluatePolicy(request: $r) { effect } }", json!({ "r": r }))
        .await;
    assert_eq!(d["evaluatePolicy"]["effect"], "DENY");

    // In SQL as the app role, for globex (whose one decision is its own): nothing of acme's to read or change.
    for table in [
        "policies",
        "decisions",
        "approvals",
        "integration_connections",
        "model_policies",
        "principal_roles",
        "legal_holds",
    ] {
        let mut tx = app.pool().begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', 'globex', true)").execute(&mut *tx).await.unwrap();
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE tenant_id <> 'globex'"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'globex', true)").execute(&mut *tx).await.unwrap();
    let changed =
        sqlx::query("UPDATE approvals SET status = 'Cancelled', decided_at = now()").execute(&mut *tx).await.unwrap();
    assert_eq!(changed.rows_affected(), 0);
    let e = sqlx::query(
        "INSERT INTO policies (tenant_id, policy_id, name, version, effect, cedar, created_by)
         VALUES ('acme', gen_random_uuid(), 'x', 1, 'Allow', 'permit(principal, action, resource);', 'm')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(e.to_string().contains("row-level security"), "{e}");
    app.cleanup().await;
}
