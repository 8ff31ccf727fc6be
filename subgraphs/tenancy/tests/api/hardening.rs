//! The kernel's guards, through a real subgraph: body and content limits before the body is read, hostile
//! GraphQL refused before any resolver runs, every error coded, Redis never trusted for identity, operator
//! rights only on tenant-less tokens, readiness that only PostgreSQL decides.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{code, spawn_app, spawn_app_tuned};

fn post(secret: Option<&str>, content_type: &str, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post("/graphql").header("content-type", content_type);
    if let Some(s) = secret {
        req = req.header(kernel::server::ROUTER_SECRET_HEADER, s);
    }
    req.header("content-length", body.len()).body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn the_router_secret_and_body_limits_are_checked_before_the_body_is_read() {
    let app = spawn_app().await;
    let secret = app.config.router_secret.expose_secret().to_owned();
    let big = vec![b' '; 300 * 1024];
    // Without the secret: 403, whatever the size.
    let (status, v) = app.call(post(None, "application/json", big.clone())).await;
    assert_eq!((status, code(&v)), (403, "FORBIDDEN"));
    // An `Upgrade` header on anything but a WebSocket GET is no way around the check.
    for upgrade in ["h2c", "websocket"] {
        let req = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("upgrade", upgrade)
            .header("connection", "upgrade")
            .body(Body::from(r#"{"query":"{ __typename }"}"#))
            .unwrap();
        let (status, v) = app.call(req).await;
        assert_eq!((status, code(&v)), (403, "FORBIDDEN"), "POST with Upgrade: {upgrade}");
    }
    // With it, but larger than MAX_BODY_BYTES (256 KiB by default): 413.
    let (status, v) = app.call(post(Some(&secret), "application/json", big)).await;
    assert_eq!((status, code(&v)), (413, "BAD_USER_INPUT"), "{v}");
    // A body without a declared length is cut off at the limit while it is read.
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 10 * 1024])));
    let req = Request::post("/graphql")
        .header("content-type", "application/json")
        .header(kernel::server::ROUTER_SECRET_HEADER, &secret)
        .body(Body::from_stream(chunks))
        .unwrap();
    let (status, _) = app.call(req).await;
    assert_eq!(status, 413);
    // Multipart (file uploads) and other content types are refused.
    let (status, _) = app.call(post(Some(&secret), "multipart/form-data; boundary=x", b"--x--".to_vec())).await;
    assert_eq!(status, 415);
    let (status, _) = app.call(post(Some(&secret), "text/plain", b"{}".to_vec())).await;
    assert_eq!(status, 415);
    // Malformed JSON and invalid UTF-8 are a coded 400.
    let (status, v) = app.call(post(Some(&secret), "application/json", b"{\"query\": ".to_vec())).await;
    assert_eq!((status, code(&v)), (400, "BAD_USER_INPUT"));
    let (status, _) = app.call(post(Some(&secret), "application/json", vec![0xff, 0xfe, b'{'])).await;
    assert_eq!(status, 400);
    // So is a batch (a JSON array of requests): one request per POST.
    let batch = br#"[{"query":"{ __typename }"}]"#.to_vec();
    let (status, v) = app.call(post(Some(&secret), "application/json", batch)).await;
    assert_eq!((status, code(&v)), (400, "BAD_USER_INPUT"), "{v}");
    // A well-formed request passes, variables and all.
    let ok = br#"{"query":"query($x: Boolean!) { __typename @include(if: $x) }","variables":{"x":true}}"#.to_vec();
    let (status, v) = app.call(post(Some(&secret), "application/json", ok)).await;
    assert_eq!(status, 200, "{v}");
    // A GET is no way to run a mutation (GET /graphql is for WebSocket upgrades only).
    let req = Request::get("/graphql?query=mutation%7BupdateTenant(displayName%3A%22x%22)%7Bid%7D%7D")
        .header(kernel::server::ROUTER_SECRET_HEADER, &secret)
        .body(Body::empty())
        .unwrap();
    assert!(app.call(req).await.0 >= 400);
    app.cleanup().await;
}

#[tokio::test]
async fn a_body_limit_above_two_mib_is_the_one_that_applies() {
    // axum's extractors cap bodies at 2 MiB by default; MAX_BODY_BYTES must be the only limit.
    let app = spawn_app_tuned(|c| c.max_body_bytes = 3 * 1024 * 1024).await;
    let secret = app.config.router_secret.expose_secret().to_owned();
    let request = |pad: usize| {
        let body = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(pad) } }).to_string();
        post(Some(&secret), "application/json", body.into_bytes())
    };
    let (status, v) = app.call(request(2_500_000)).await;
    assert_eq!(status, 200, "a 2.5 MB request under a 3 MiB limit: {v}");
    let (status, v) = app.call(request(3_200_000)).await;
    assert_eq!((status, code(&v)), (413, "BAD_USER_INPUT"), "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn hostile_queries_are_refused_quickly_and_the_subgraph_keeps_answering() {
    let app = spawn_app().await;
    let op = app.operator_token();
    // Fragments that each spread the next one twice: 2^40 fields once expanded, from about 1 KB of text.
    let mut billion = String::from("query { ...F0 }\n");
    for i in 0..40 {
        billion.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i + 1, i + 1));
    }
    billion.push_str("fragment F40 on Query { __typename }\n");
    let aliases = format!("{{ {} }}", (0..5000).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
    let nested = format!("{}{}", "{ tenants { edges { node { ".repeat(100), "}".repeat(400));
    let introspection_cycle = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "fields { type { ofType { fields { type { ofType { ".repeat(20),
        "} } } } } }".repeat(20)
    );
    let directives = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(500));
    let cases: Vec<(&str, String)> = vec![
        ("fragment billion laughs", billion),
        ("alias bomb x5000", aliases),
        ("nesting x100", nested),
        ("introspection cycle", introspection_cycle),
        ("directive flood", directives),
        ("fragment cycle", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".into()),
        (
            "doubling fragment cycle",
            "{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }".into(),
        ),
        ("100k tokens", format!("{{ {} }}", "__typename ".repeat(25_000))),
    ];
    for (name, query) in cases {
        let started = Instant::now();
        let v = app.gql(&op, &query, json!({})).await;
        let took = started.elapsed();
        assert!(v.get("errors").is_some(), "{name}: answered in full");
        assert_eq!(code(&v), "BAD_USER_INPUT", "{name}: {v}");
        assert!(v["errors"].as_array().unwrap().len() <= kernel::server::MAX_ERRORS + 1, "{name}: unbounded errors");
        assert!(took < Duration::from_secs(1), "{name} took {took:?}");
    }
    // Still answering.
    let v = app.ok(&op, "{ __typename }", json!({})).await;
    assert_eq!(v["__typename"], "Query");
    app.cleanup().await;
}

#[tokio::test]
async fn a_platform_scope_on_a_tenants_token_grants_nothing_beyond_that_tenant() {
    let app = spawn_app().await;
    app.published_edition("pro", 10).await;
    app.active_tenant(&format!("own-{}", app.id), "pro").await;
    let sneaky = app.tenant_token(&format!("own-{}", app.id), &["platform:admin", "tenancy:read"]);
    let v = app.gql(&sneaky, "{ tenants { edges { node { id } } } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let v = app
        .gql(
            &sneaky,
            "mutation { provisionTenant(input: { id: \"evil\", displayName: \"E\", region: \"eu\", editionId: \"pro\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn readiness_fails_only_without_postgresql() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"up\""), "{body}");
    app.pool().close().await;
    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"postgres\":\"down\""), "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn redis_keys_carry_the_tenant_as_a_hash_tag() {
    let app = spawn_app().await;
    let key = app.state.kernel.cache.key(&kernel::TenantId::parse("acme").unwrap(), "kind", "id");
    assert_eq!(key, format!("{}:{{acme}}:kind:id", app.redis.0));
    assert_eq!(app.state.kernel.cache.tenant_of(&key).unwrap().as_str(), "acme");
    app.cleanup().await;
}

#[tokio::test]
async fn introspection_can_be_turned_off_for_production() {
    let on = spawn_app().await;
    let q = "{ __schema { queryType { name } } }";
    assert_eq!(on.ok(&on.operator_token(), q, json!({})).await["__schema"]["queryType"]["name"], "Query");
    on.cleanup().await;
    let off = crate::helpers::spawn_app_tuned(|c| c.introspection = false).await;
    let v = off.gql(&off.operator_token(), q, json!({})).await;
    assert!(v["data"]["__schema"].is_null(), "introspection answered: {v}");
    // The router still reads the SDL through federation's `_service`, and plain queries work.
    assert!(off.ok(&off.operator_token(), "{ _service { sdl } }", json!({})).await["_service"]["sdl"].is_string());
    off.cleanup().await;
}

#[tokio::test]
async fn list_complexity_multiplies_by_the_page_size() {
    let app = spawn_app().await;
    let op = app.operator_token();
    // 60 fields per tenant: fine for a page of 10, too much for a page of 100 (6,000 > 5,000).
    let fields = (0..60).map(|i| format!("f{i}: displayName")).collect::<Vec<_>>().join(" ");
    let q = |first: i32| format!("{{ tenants(first: {first}) {{ edges {{ node {{ {fields} }} }} }} }}");
    let v = app.gql(&op, &q(100), json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("complex"), "{v}");
    app.ok(&op, &q(10), json!({})).await;
    app.cleanup().await;
}
