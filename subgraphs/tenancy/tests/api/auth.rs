//! Authentication and authorisation: every bad token is UNAUTHENTICATED, a missing scope FORBIDDEN.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kernel::auth::LocalSigner;
use serde_json::json;

use crate::helpers::{code, spawn_app, AUDIENCE, ISSUER};

const QUERY: &str = "{ currentTenant { id } }";

#[tokio::test]
async fn bad_tokens_are_refused_as_unauthenticated() {
    let app = spawn_app().await;
    app.published_edition("pro", 10).await;
    app.active_tenant("acme", "pro").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |over: serde_json::Value| {
        let mut c = json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "u", "tid": "acme", "scope": "tenancy:read",
                            "iat": now, "nbf": now, "exp": now + 600 });
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // The same claims with a valid signature work, so each refusal below is about the one thing changed.
    let good = app.signer.sign(&claims(json!({})));
    assert!(app.gql(&good, QUERY, json!({})).await.get("errors").is_none());

    let forger = LocalSigner::generate("test-key"); // same key id, different key
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"test-key"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let cases = [
        ("expired", app.signer.sign(&claims(json!({ "exp": now - 120 })))),
        ("not yet valid", app.signer.sign(&claims(json!({ "nbf": now + 600 })))),
        ("wrong audience", app.signer.sign(&claims(json!({ "aud": "someone-else" })))),
        ("wrong issuer", app.signer.sign(&claims(json!({ "iss": "https://evil.test/" })))),
        ("forged signature", forger.sign(&claims(json!({})))),
        ("unknown key", LocalSigner::generate("other-key").sign(&claims(json!({})))),
        ("alg none", unsigned),
        ("no exp", app.signer.sign(&json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "u", "tid": "acme" }))),
        ("garbage", "not-a-jwt".to_owned()),
        ("malformed tenant", app.signer.sign(&claims(json!({ "tid": "Not A Slug" })))),
    ];
    for (why, token) in cases {
        let v = app.gql(&token, QUERY, json!({})).await;
        assert_eq!(code(&v), "UNAUTHENTICATED", "{why}: {v}");
        assert!(v["data"].is_null(), "{why}: {v}");
    }
    let v = app.gql_with(None, &[], QUERY, json!({})).await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    let v = app.gql_with(None, &[("authorization", "Basic dXNlcjpwYXNz")], QUERY, json!({})).await;
    assert_eq!(code(&v), "UNAUTHENTICATED");
    app.cleanup().await;
}

#[tokio::test]
async fn missing_scopes_and_tenants_are_forbidden() {
    let app = spawn_app().await;
    app.published_edition("pro", 10).await;
    app.active_tenant("acme", "pro").await;
    // A tenant member cannot act as an operator.
    let member = app.member_token("acme");
    let v = app.gql(&member, "mutation { suspendTenant(id: \"acme\", reason: \"x\") { status } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN");
    // A token without the read scope reads nothing.
    let no_scope = app.tenant_token("acme", &[]);
    assert_eq!(code(&app.gql(&no_scope, QUERY, json!({})).await), "FORBIDDEN");
    // Write scope is needed to write.
    let reader = app.tenant_token("acme", &["tenancy:read"]);
    let v = app.gql(&reader, "mutation { updateTenant(displayName: \"x\") { id } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN");
    // An operator token has no tenant of its own.
    let v = app.gql(&app.operator_token(), QUERY, json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN");
    // A token for a tenant that does not exist sees nothing.
    let ghost = app.signer.mint(ISSUER, AUDIENCE, "u", Some("ghost"), &["tenancy:read"], Duration::from_secs(60));
    assert_eq!(code(&app.gql(&ghost, QUERY, json!({})).await), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn internal_failures_reveal_nothing_and_health_reports_them() {
    let app = spawn_app().await;
    let (status, _) = app.get("/health/live").await;
    assert_eq!(status, 200);
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({ "status": "up", "postgres": "up", "redis": "up", "rabbitmq": "up" }));

    app.pool().close().await;
    let v = app.gql(&app.operator_token(), "{ tenants { nodes { id } } }", json!({})).await;
    assert_eq!(code(&v), "INTERNAL");
    assert_eq!(v["errors"][0]["message"], "internal error");
    let text = v.to_string().to_lowercase();
    assert!(!text.contains("pool") && !text.contains("sql"), "{v}");
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 503);
    assert!(body.contains("\"postgres\":\"down\""));
    let (_, metrics) = app.get("/metrics").await;
    assert!(metrics.contains("cp_graphql_errors_total{code=\"INTERNAL\"}"), "{metrics}");
    app.cleanup().await;
}

#[tokio::test]
async fn depth_and_page_limits_are_coded_errors() {
    let app = spawn_app().await;
    let op = app.operator_token();
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    let v = app.gql(&op, &too_deep, json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert_eq!(code(&app.gql(&op, "{ tenants(first: 1000) { nodes { id } } }", json!({})).await), "BAD_USER_INPUT");
    assert_eq!(
        code(&app.gql(&op, "{ tenants(after: \"bogus\") { nodes { id } } }", json!({})).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(code(&app.gql(&op, "{ nonsense }", json!({})).await), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn requests_without_the_router_secret_are_refused() {
    let app = spawn_app().await;
    let op = app.operator_token();
    for secret in ["wrong", ""] {
        let v = app
            .gql_with(
                Some(&op),
                &[(kernel::server::ROUTER_SECRET_HEADER, secret)],
                "{ tenants { nodes { id } } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&v), "FORBIDDEN", "{v}");
        assert_eq!(v["errors"][0]["message"], "requests must come through the router");
    }
    // Health and metrics stay open to probes and scrapers.
    assert_eq!(app.get("/health/live").await.0, 200);
    app.cleanup().await;
}
