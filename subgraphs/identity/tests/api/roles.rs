//! Roles: defined and bound per tenant, shown on their principals.

use serde_json::json;

use crate::helpers::{bootstrap, client, code, spawn_app};

#[tokio::test]
async fn a_role_bound_in_one_tenant_grants_nothing_in_another() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let alpha_admin = app.service(&op, "alpha", "admin", &["identity:read", "identity:write"]).await;
    let (id, secret) = client(&app, &op, "alpha", &alpha_admin, &["identity:read", "identity:write"]).await;
    let (_, body) = app.form("/oauth/token", Some((&id, &secret)), &[], "grant_type=client_credentials").await;
    let token = body["access_token"].as_str().unwrap();

    // Its own tenant: fine. Another tenant, by argument: as if it did not exist.
    app.ok(token, "{ roles { key } }", json!({})).await;
    let v = app.gql(token, "{ roles(tenantId: \"bravo\") { key } }", json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app
        .gql(
            token,
            "mutation { createPrincipal(tenantId: \"bravo\", input: { kind: SERVICE, displayName: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    // Alpha's role cannot be bound in bravo, nor alpha's principal given a bravo client.
    let v = app
        .gql(
            &op,
            "mutation($p: ID!) { bindRole(tenantId: \"bravo\", principalId: $p, roleKey: \"admin\") }",
            json!({ "p": alpha_admin }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app.gql(&op, "mutation($p: ID!) { createOAuthClient(tenantId: \"bravo\", principalId: $p, scopes: []) { clientSecret } }", json!({ "p": alpha_admin })).await;
    assert_eq!(code(&v), "NOT_FOUND");
    // And platform:admin is never grantable inside a tenant.
    let v = app.gql(&op, "mutation { defineRole(tenantId: \"alpha\", input: { key: \"x\", permissions: [\"platform:admin\"] }) { key } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    // Missing scope: FORBIDDEN.
    let reader = app.service(&op, "alpha", "reader", &["identity:read"]).await;
    let (rid, rsecret) = client(&app, &op, "alpha", &reader, &["identity:read"]).await;
    let (_, body) = app.form("/oauth/token", Some((&rid, &rsecret)), &[], "grant_type=client_credentials").await;
    let v = app
        .gql(
            body["access_token"].as_str().unwrap(),
            "mutation { defineRole(input: { key: \"y\", permissions: [] }) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    app.cleanup().await;
}

#[tokio::test]
async fn a_principal_shows_the_roles_bound_to_it() {
    let app = spawn_app(1).await;
    let op = bootstrap(&app).await;
    let svc = app.service(&op, "acme", "reader", &["identity:read"]).await;
    app.ok(&op, "mutation { defineRole(tenantId: \"acme\", input: { key: \"admin\", description: \"Admins\", permissions: [\"identity:write\"] }) { key } }", json!({}))
        .await;
    let bind = "mutation($id: ID!, $k: String!) { bindRole(tenantId: \"acme\", principalId: $id, roleKey: $k) }";
    let unbind = "mutation($id: ID!, $k: String!) { unbindRole(tenantId: \"acme\", principalId: $id, roleKey: $k) }";
    app.ok(&op, bind, json!({ "id": svc, "k": "admin" })).await;
    let roles = "query($id: ID!) { principal(tenantId: \"acme\", id: $id) { roles { key description permissions } } }";
    let v = app.ok(&op, roles, json!({ "id": svc })).await;
    assert_eq!(
        v["principal"]["roles"],
        json!([
            { "key": "admin", "description": "Admins", "permissions": ["identity:write"] },
            { "key": "reader", "description": "", "permissions": ["identity:read"] },
        ])
    );
    // The tenant's own members see the same.
    let member = app.member_token("acme", &["identity:read"]);
    let v = app.ok(&member, roles.replace("tenantId: \"acme\", ", "").as_str(), json!({ "id": svc })).await;
    assert_eq!(v["principal"]["roles"].as_array().unwrap().len(), 2);

    app.ok(&op, unbind, json!({ "id": svc, "k": "admin" })).await;
    let v = app.ok(&op, roles, json!({ "id": svc })).await;
    assert_eq!(
        v["principal"]["roles"],
        json!([{ "key": "reader", "description": "", "permissions": ["identity:read"] }])
    );
    assert_eq!(code(&app.gql(&op, unbind, json!({ "id": svc, "k": "admin" })).await), "NOT_FOUND");
    // Unbinding in another tenant's name reaches nothing.
    let v = app
        .gql(
            &op,
            "mutation($id: ID!) { unbindRole(tenantId: \"bravo\", principalId: $id, roleKey: \"reader\") }",
            json!({ "id": svc }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    assert_eq!(app.ok(&op, roles, json!({ "id": svc })).await["principal"]["roles"][0]["key"], "reader");
    app.cleanup().await;
}
