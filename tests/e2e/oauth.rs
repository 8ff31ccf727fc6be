//! A partner's whole path through the public endpoint alone: an OAuth client made through the router, its
//! client-credentials token from `/oauth/token` on the edge, the JWKS from `/.well-known/jwks.json` on the
//! edge, the token used for GraphQL through the router and revoked at `/oauth/revoke`; identity's
//! introspection beside them is not passed.

use serde_json::{json, Value};

use e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_work_through_the_public_endpoint_alone() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("partner-{}", stack.id);
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let (id, secret, p) = stack.oauth_client(&hive.url, &tenant, &["identity:read"]).await;
    let (id, secret) = (id.as_str(), secret.as_str());

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let grant: Value = resp.json().await.unwrap();
    assert_eq!((grant["token_type"].as_str(), grant["scope"].as_str()), (Some("Bearer"), Some("identity:read")));
    let token = grant["access_token"].as_str().unwrap();

    // Its token works through the router; the JWKS that verifies it is there too.
    let me = stack.ok(&hive.url, token, "{ principals(first: 5) { edges { node { id } } } }", json!({})).await;
    assert!(me["principals"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == p.as_str()), "{me}");
    let jwks: Value = http.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());

    // A wrong secret: the token endpoint's own answer, through the edge.
    let resp = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some("cps_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Introspection is for subgraphs, not passed.
    let resp = http.post(format!("{base}/oauth/introspect")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // Revoked at the public endpoint: refused at once.
    let resp = http
        .post(format!("{base}/oauth/revoke"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = stack.post(&hive.url, token, &[], "{ principals(first: 1) { edges { node { id } } } }", json!({})).await;
    assert_eq!(test_support::code(&v), "UNAUTHENTICATED", "{v}");
    hive.stop().await;
    stack.stop().await;
}
