//! Principals: kinds and states as enums, ids checked and kept to their tenant, the federation entity.

use serde_json::{json, Value};

use crate::helpers::{bootstrap, code, spawn_app};

fn field(v: &Value) -> Option<&str> {
    v["errors"][0]["extensions"]["field"].as_str()
}

#[tokio::test]
async fn kinds_and_states_are_enums_stored_as_text() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let create = "mutation($t: ID, $i: CreatePrincipalInput!) { createPrincipal(tenantId: $t, input: $i) { id kind status email } }";
    let v = app
        .ok(
            &op,
            create,
            json!({ "t": "acme", "i": { "kind": "USER", "displayName": "Ada", "email": "ada@acme.test" } }),
        )
        .await;
    let user = v["createPrincipal"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["createPrincipal"]["kind"], "USER");
    assert_eq!(v["createPrincipal"]["status"], "ACTIVE");
    let v = app.ok(&op, create, json!({ "t": "acme", "i": { "kind": "SERVICE", "displayName": "CI" } })).await;
    assert_eq!(
        (v["createPrincipal"]["kind"].as_str(), v["createPrincipal"]["email"].as_str()),
        (Some("SERVICE"), None)
    );
    let v = app
        .gql(
            &op,
            create,
            json!({ "t": "acme", "i": { "kind": "SERVICE", "displayName": "CI", "email": "ci@acme.test" } }),
        )
        .await;
    assert_eq!((code(&v), field(&v)), ("BAD_USER_INPUT", Some("email")));

    let disable = "mutation($t: ID, $id: ID!) { disablePrincipal(tenantId: $t, id: $id) { id status } }";
    assert_eq!(code(&app.gql(&op, disable, json!({ "t": "bravo", "id": user })).await), "NOT_FOUND");
    let v = app.ok(&op, disable, json!({ "t": "acme", "id": user })).await;
    assert_eq!(v["disablePrincipal"], json!({ "id": user, "status": "DISABLED" }));

    // Stored as before, and events keep their wire format.
    let admin = app.admin_pool().await;
    let (kind, status): (String, String) =
        sqlx::query_as("SELECT kind, status FROM principals WHERE tenant_id = 'acme' AND principal_id = $1::uuid")
            .bind(&user)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!((kind.as_str(), status.as_str()), ("User", "Disabled"));
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT envelope->'payload'->>'kind' FROM outbox WHERE tenant_id = 'acme' AND event_type = 'PrincipalCreated' ORDER BY seq",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(kinds, ["User", "Service"]);
    app.cleanup().await;
}

#[tokio::test]
async fn principal_ids_are_checked_and_kept_to_their_tenant() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "reader", &["identity:read"]).await;
    let principal = "query($t: ID, $id: ID!) { principal(tenantId: $t, id: $id) { id displayName tenant { id } } }";
    let v = app.ok(&op, principal, json!({ "t": "acme", "id": svc })).await;
    assert_eq!(v["principal"], json!({ "id": svc, "displayName": "svc", "tenant": { "id": "acme" } }));

    let v = app.gql(&op, principal, json!({ "t": "acme", "id": "nope" })).await;
    assert_eq!((code(&v), field(&v)), ("BAD_USER_INPUT", Some("id")));
    let v = app
        .gql(&op, "mutation { bindRole(tenantId: \"acme\", principalId: \"nope\", roleKey: \"reader\") }", json!({}))
        .await;
    assert_eq!((code(&v), field(&v)), ("BAD_USER_INPUT", Some("principalId")));
    let v = app.gql(&op, "mutation { createApiToken(tenantId: \"acme\", input: { principalId: \"nope\", name: \"n\", scopes: [] }) { token } }", json!({})).await;
    assert_eq!((code(&v), field(&v)), ("BAD_USER_INPUT", Some("principalId")));

    // Another tenant's principal is not found, whoever asks.
    assert_eq!(code(&app.gql(&op, principal, json!({ "t": "bravo", "id": svc })).await), "NOT_FOUND");
    let bravo = app.member_token("bravo", &["identity:read"]);
    assert_eq!(code(&app.gql(&bravo, principal, json!({ "id": svc })).await), "NOT_FOUND");
    assert_eq!(code(&app.gql(&bravo, principal, json!({ "t": "acme", "id": svc })).await), "NOT_FOUND");
    // Reading needs identity:read.
    let nothing = app.member_token("acme", &["tenancy:read"]);
    assert_eq!(code(&app.gql(&nothing, principal, json!({ "id": svc })).await), "FORBIDDEN");
    app.cleanup().await;
}

#[tokio::test]
async fn the_principal_entity_resolves_within_the_callers_tenant() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let a = app.service(&op, "acme", "reader", &["identity:read"]).await;
    let b = app.service(&op, "acme", "reader", &["identity:read"]).await;
    let other = app.service(&op, "bravo", "reader", &["identity:read"]).await;
    let entities =
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Principal { id kind roles { key } } } }";
    let reps = |ids: &[&str]| json!({ "r": ids.iter().map(|id| json!({ "__typename": "Principal", "id": id })).collect::<Vec<_>>() });
    let member = app.member_token("acme", &["identity:read"]);
    let v = app.ok(&member, entities, reps(&[&a, &b])).await;
    assert_eq!(
        v["_entities"],
        json!([
            { "id": a, "kind": "SERVICE", "roles": [{ "key": "reader" }] },
            { "id": b, "kind": "SERVICE", "roles": [{ "key": "reader" }] },
        ])
    );
    let v = app.gql(&member, entities, reps(&[&other])).await;
    assert_eq!(code(&v), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn principals_page_through_their_tenant_only() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(app.service(&op, "acme", "reader", &["identity:read"]).await);
    }
    app.service(&op, "bravo", "reader", &["identity:read"]).await;
    let member = app.member_token("acme", &["identity:read"]);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let v = app
            .ok(&member, "query($a: String) { principals(first: 2, after: $a) { nodes { id } pageInfo { hasNextPage endCursor } } }", json!({ "a": after }))
            .await;
        let page = &v["principals"];
        seen.extend(page["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    made.sort();
    assert_eq!(seen, made, "acme's principals in id order, and only acme's");
    let v = app.gql(&member, "{ principals(after: \"nope\") { nodes { id } } }", json!({})).await;
    assert_eq!((code(&v), field(&v)), ("BAD_USER_INPUT", Some("after")));
    app.cleanup().await;
}
