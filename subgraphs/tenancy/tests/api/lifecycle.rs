//! Tenant lifecycle and editions: legal moves succeed with their events; bad input and illegal moves get
//! coded errors and change nothing.

use serde_json::json;

use crate::helpers::{code, spawn_app};

const PROVISION: &str = "mutation($id: ID!, $name: String!, $e: String!) { provisionTenant(input: { id: $id,
    displayName: $name, region: \"eu-west\", editionId: $e, isolationModel: DEDICATED }) { id status isolationModel
    edition { id version } quotas { key limit period used } } }";

#[tokio::test]
async fn provisioning_and_the_lifecycle() {
    let app = spawn_app().await;
    app.published_edition("pro", 100).await;
    let op = app.operator_token();
    let v = app.ok(&op, PROVISION, json!({ "id": "acme", "name": "Acme", "e": "pro" })).await;
    assert_eq!(
        v["provisionTenant"],
        json!({ "id": "acme", "status": "PROVISIONING", "isolationModel": "DEDICATED", "edition": { "id": "pro", "version": 1 },
                "quotas": [{ "key": "api-calls", "limit": 100, "period": "MONTH", "used": 0 }] })
    );
    let step = |m: &'static str| {
        let q = format!("mutation {{ {m} {{ status statusReason }} }}");
        let app = &app;
        let op = op.clone();
        async move { app.gql(&op, &q, json!({})).await }
    };
    assert_eq!(step("activateTenant(id: \"acme\")").await["data"]["activateTenant"]["status"], "ACTIVE");
    assert_eq!(
        step("suspendTenant(id: \"acme\", reason: \"unpaid\")").await["data"]["suspendTenant"],
        json!({ "status": "SUSPENDED", "statusReason": "unpaid" })
    );
    assert_eq!(step("activateTenant(id: \"acme\")").await["data"]["activateTenant"]["status"], "ACTIVE");
    // Legal hold blocks retirement.
    app.ok(&op, "mutation { setLegalHold(id: \"acme\", legalHold: true) { legalHold } }", json!({})).await;
    assert_eq!(code(&step("retireTenant(id: \"acme\")").await), "CONFLICT");
    app.ok(&op, "mutation { setLegalHold(id: \"acme\", legalHold: false) { legalHold } }", json!({})).await;
    assert_eq!(
        step("retireTenant(id: \"acme\", reason: \"closed\")").await["data"]["retireTenant"]["status"],
        "RETIRED"
    );
    // Retired is terminal.
    let v = step("activateTenant(id: \"acme\")").await;
    assert_eq!(code(&v), "CONFLICT");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("Retired"));

    let admin = app.admin_pool().await;
    let types: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox WHERE tenant_id = 'acme' ORDER BY seq")
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(
        types,
        [
            "TenantProvisioned",
            "TenantActivated",
            "TenantSuspended",
            "TenantReactivated",
            "TenantLegalHoldChanged",
            "TenantLegalHoldChanged",
            "TenantRetired"
        ]
    );
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE tenant_id = 'acme' AND status = 'Active'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(active, 0, "retiring ends the subscription");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_gets_coded_errors_and_writes_nothing() {
    let app = spawn_app().await;
    app.published_edition("pro", 100).await;
    let op = app.operator_token();
    let cases = [
        (json!({ "id": "Bad_Slug", "name": "x", "e": "pro" }), "BAD_USER_INPUT", "id"),
        (json!({ "id": "platform", "name": "x", "e": "pro" }), "BAD_USER_INPUT", "id"),
        (json!({ "id": "okay", "name": "x".repeat(201), "e": "pro" }), "BAD_USER_INPUT", "displayName"),
        (json!({ "id": "okay", "name": "  ", "e": "pro" }), "BAD_USER_INPUT", "displayName"),
        (json!({ "id": "okay", "name": "x", "e": "no-such-edition" }), "NOT_FOUND", ""),
    ];
    for (vars, expected, field) in cases {
        let v = app.gql(&op, PROVISION, vars.clone()).await;
        assert_eq!(code(&v), expected, "{vars}: {v}");
        if !field.is_empty() {
            assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
        }
    }
    let admin = app.admin_pool().await;
    let (tenants, outbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM outbox WHERE tenant_id <> 'platform')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((tenants, outbox), (0, 0), "a refused mutation leaves nothing behind");

    // A duplicate id is a conflict, and the first tenant is untouched.
    app.ok(&op, PROVISION, json!({ "id": "acme", "name": "First", "e": "pro" })).await;
    let v = app.gql(&op, PROVISION, json!({ "id": "acme", "name": "Second", "e": "pro" })).await;
    assert_eq!(code(&v), "CONFLICT");
    let name: String = sqlx::query_scalar("SELECT display_name FROM tenants WHERE tenant_id = 'acme'")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(name, "First");
    let provisioned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = 'acme'").fetch_one(&admin).await.unwrap();
    assert_eq!(provisioned, 1);
    assert_eq!(
        code(&app.gql(&op, "mutation { suspendTenant(id: \"ghost\", reason: \"x\") { id } }", json!({})).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(&app.gql(&op, "mutation { suspendTenant(id: \"acme\", reason: \"x\") { id } }", json!({})).await),
        "CONFLICT"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn published_editions_are_immutable_and_in_use_editions_stay() {
    let app = spawn_app().await;
    let op = app.operator_token();
    app.published_edition("pro", 100).await;
    // Changing a published version is refused; a new version is the way to change it.
    let v = app
        .gql(
            &op,
            "mutation { updateEdition(id: \"pro\", version: 1, input: { name: \"Changed\" }) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT");
    let v = app
        .ok(&op, "mutation { createEdition(input: { id: \"pro\", name: \"Pro 2\", quotaTemplate: [{ key: \"api-calls\", limit: 500, period: DAY }] }) { version status } }", json!({}))
        .await;
    assert_eq!(v["createEdition"], json!({ "version": 2, "status": "DRAFT" }));
    let v = app
        .gql(&op, "mutation { createEdition(input: { id: \"pro\", name: \"Pro 3\" }) { version } }", json!({}))
        .await;
    assert_eq!(code(&v), "CONFLICT", "one draft at a time");
    let v = app.gql(&op, "mutation { createEdition(input: { id: \"x\", name: \"X\", quotaTemplate: [{ key: \"a\", limit: -5, period: DAY }] }) { version } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    app.ok(
        &op,
        "mutation { updateEdition(id: \"pro\", version: 2, input: { name: \"Pro Two\" }) { name } }",
        json!({}),
    )
    .await;
    app.ok(&op, "mutation { publishEdition(id: \"pro\", version: 2) { status } }", json!({})).await;
    assert_eq!(
        code(&app.gql(&op, "mutation { publishEdition(id: \"pro\", version: 2) { status } }", json!({})).await),
        "CONFLICT"
    );

    // The database refuses too, whatever the application does.
    let owner = sqlx::PgPool::connect(&app.db.owner_url).await.unwrap();
    let mut tx = owner.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.platform', 'on', true)").execute(&mut *tx).await.unwrap();
    let err = sqlx::query("UPDATE editions SET name = 'sneaky' WHERE edition_id = 'pro' AND version = 1")
        .execute(&mut *tx)
        .await
        .expect_err("the trigger must refuse changes to published editions");
    assert!(err.to_string().contains("immutable"), "{err}");
    tx.rollback().await.unwrap();

    // A tenant on version 2 keeps it from being retired; version 1 is free to go.
    app.active_tenant("acme", "pro").await;
    let v =
        app.ok(&op, "{ tenant(id: \"acme\") { edition { version name } quotas { limit period } } }", json!({})).await;
    assert_eq!(
        v["tenant"],
        json!({ "edition": { "version": 2, "name": "Pro Two" }, "quotas": [{ "limit": 500, "period": "DAY" }] })
    );
    assert_eq!(
        code(&app.gql(&op, "mutation { retireEdition(id: \"pro\", version: 2) { status } }", json!({})).await),
        "CONFLICT"
    );
    app.ok(&op, "mutation { retireEdition(id: \"pro\", version: 1) { status } }", json!({})).await;

    // Moving the tenant to another edition frees version 2.
    app.published_edition("team", 5).await;
    let v = app.ok(&op, "mutation { changeTenantEdition(id: \"acme\", editionId: \"team\") { edition { id } subscriptions { status editionId } } }", json!({})).await;
    assert_eq!(v["changeTenantEdition"]["edition"]["id"], "team");
    assert_eq!(
        v["changeTenantEdition"]["subscriptions"],
        json!([{ "status": "ACTIVE", "editionId": "team" }, { "status": "ENDED", "editionId": "pro" }])
    );
    app.ok(&op, "mutation { retireEdition(id: \"pro\", version: 2) { status } }", json!({})).await;

    // Tenants see published editions but not drafts.
    app.ok(&op, "mutation { createEdition(input: { id: \"secret\", name: \"Draft\" }) { version } }", json!({})).await;
    let member = app.member_token("acme");
    assert_eq!(
        code(&app.gql(&member, "{ edition(id: \"secret\", version: 1) { name } }", json!({})).await),
        "NOT_FOUND"
    );
    let listed = app.ok(&member, "{ editions { nodes { id version status } } }", json!({})).await;
    assert!(listed["editions"]["nodes"].as_array().unwrap().iter().all(|e| e["status"] != "DRAFT"), "{listed}");
    owner.close().await;
    app.cleanup().await;
}
