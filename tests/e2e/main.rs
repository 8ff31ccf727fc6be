//! End-to-end: the portal's and partners' path through each real router to the subgraph, RabbitMQ and back.
//! Needs the routers (router/install.sh) and the same services as the subgraph tests.

mod bodies;
mod dashboard;
mod indexes;
mod oauth;
mod openlineage;
mod sdk;
mod sdk_domains;
mod subscribers;
mod workflow;

use std::time::Duration;

use e2e::{Router, Stack};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// A quota's use for its current period beside the usage governance metered for it (README, "Usage and
/// quotas"): tenancy answers `currentTenant`, governance `usage`, in one request through the router.
const RECONCILE: &str = "query($from: DateTime!, $to: DateTime!) {
    currentTenant { quotas { key used periodStart resetsAt } }
    usage(meter: \"api-calls\", from: $from, to: $to, groupBy: \"source\") { quantity groups { value quantity } } }";

/// Provision → query → mutate → event, all through `router`.
async fn round_trip(stack: &Stack, router: &Router) {
    let mut events = test_support::Tap::new("tenancy.#").await;
    let op = stack.operator_token();
    let edition = format!("ed-{}-{}", router.name, stack.id);
    let tenant = format!("rt-{}-{}", router.name, stack.id);
    stack
        .ok(&router.url, &op, "mutation($e: String!) { createEdition(input: { id: $e, name: \"E\", quotaTemplate: [{ key: \"api-calls\", limit: 10, period: DAY }] }) { id } }", json!({ "e": edition }))
        .await;
    stack
        .ok(
            &router.url,
            &op,
            "mutation($e: String!) { publishEdition(id: $e, version: 1) { status } }",
            json!({ "e": edition }),
        )
        .await;
    let v = stack
        .ok(&router.url, &op, "mutation($t: ID!, $e: String!) { provisionTenant(input: { id: $t, displayName: \"RT\", region: \"eu-west\", editionId: $e }) { id status } }", json!({ "t": tenant, "e": edition }))
        .await;
    assert_eq!(v["provisionTenant"], json!({ "id": tenant, "status": "PROVISIONING" }));
    stack.ok(&router.url, &op, "mutation($t: ID!) { activateTenant(id: $t) { status } }", json!({ "t": tenant })).await;

    let member = stack.member_token(&tenant);
    let v = stack
        .ok(&router.url, &member, "{ currentTenant { id edition { id } quotas { key limit used } } }", json!({}))
        .await;
    assert_eq!(
        v["currentTenant"],
        json!({ "id": tenant, "edition": { "id": edition }, "quotas": [{ "key": "api-calls", "limit": 10, "used": 0 }] })
    );

    // Quota consumed in tenancy is usage metered in governance: one query reconciles the two (README,
    // "Usage and quotas").
    let v = stack
        .ok(&router.url, &member, "mutation { consumeQuota(key: \"api-calls\", amount: 3) { used } }", json!({}))
        .await;
    assert_eq!(v["consumeQuota"]["used"], 3);
    let reconciled = |v: &Value| {
        let quota = &v["currentTenant"]["quotas"][0];
        (quota["used"].as_i64(), v["usage"]["quantity"].as_i64())
    };
    test_support::eventually("the quota's usage to be metered", Duration::from_secs(15), || async {
        let q = stack
            .ok(&router.url, &member, "{ currentTenant { quotas { used periodStart resetsAt } } }", json!({}))
            .await;
        let quota = &q["currentTenant"]["quotas"][0];
        let v = stack
            .ok(&router.url, &member, RECONCILE, json!({ "from": quota["periodStart"], "to": quota["resetsAt"] }))
            .await;
        reconciled(&v) == (Some(3), Some(3))
    })
    .await;

    // A producer's bulk usage as JSON Lines (a string variable the routers pass through untouched), and its
    // retry counted once.
    let at = chrono::Utc::now().to_rfc3339();
    let lines: String = (0..3)
        .map(|i| json!({ "meter": "e2e-events", "quantity": 2, "occurredAt": at, "idempotencyKey": format!("e{i}") }))
        .map(|r| r.to_string() + "\n")
        .collect();
    let bulk = "mutation($l: String!) { recordUsageLines(lines: $l) { accepted duplicates } }";
    let producer = stack.producer_token(&tenant);
    let v = stack.ok(&router.url, &producer, bulk, json!({ "l": lines })).await;
    assert_eq!(v["recordUsageLines"], json!({ "accepted": 3, "duplicates": 0 }));
    let v = stack.ok(&router.url, &producer, bulk, json!({ "l": lines })).await;
    assert_eq!(v["recordUsageLines"], json!({ "accepted": 0, "duplicates": 3 }));

    // The router forwards the caller's trace and correlation ids; the event carries them.
    let headers = [
        ("traceparent", format!("00-{TRACE}-b7ad6b7169203331-01")),
        ("x-correlation-id", format!("corr-{}", router.name)),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let v = stack
        .post(
            &router.url,
            &op,
            &headers,
            "mutation($t: ID!) { suspendTenant(id: $t, reason: \"e2e\") { status } }",
            json!({ "t": tenant }),
        )
        .await;
    assert_eq!(v["data"]["suspendTenant"]["status"], "SUSPENDED", "{v}");
    let event = events.event("TenantSuspended", &tenant, Duration::from_secs(15)).await;
    assert_eq!(event["traceId"], TRACE);
    assert_eq!(event["correlationId"], format!("corr-{}", router.name));
    assert_eq!(event["payload"]["reason"], "e2e");

    // Error codes survive the router.
    let v = stack.post(&router.url, &member, &[], "{ tenant(id: \"someone-else\") { id } }", json!({})).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "NOT_FOUND", "{v}");
    let v = stack.post(&router.url, "forged", &[], "{ currentTenant { id } }", json!({})).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_hive_router() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    round_trip(&stack, &hive).await;
    hive.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_through_apollo_router() {
    let stack = Stack::start().await;
    let apollo = stack.apollo().await;
    round_trip(&stack, &apollo).await;

    // @defer: the deferred part arrives as a later chunk of a multipart response.
    let tenant = format!("rt-apollo-{}", stack.id);
    let body = stack
        .http
        .post(&apollo.url)
        .bearer_auth(stack.member_token(&tenant))
        .header("accept", "multipart/mixed;deferSpec=20220824, application/json")
        .json(&json!({ "query": "{ currentTenant { id ... @defer { quotas { key } } } }" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"hasNext\":true") && body.contains("api-calls"), "{body}");
    apollo.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subgraphs_error_message_reaches_the_client_through_both_routers() {
    let stack = Stack::start().await;
    let op = stack.operator_token();
    let query = "mutation { provisionTenant(input: { id: \"Bad Slug!\", displayName: \"B\", region: \"eu-west\", editionId: \"x\" }) { id } }";
    for router in [stack.hive().await, stack.apollo().await] {
        let v = stack.post(&router.url, &op, &[], query, json!({})).await;
        let err = &v["errors"][0];
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{}: {v}", router.name);
        assert_eq!(err["extensions"]["field"], "id", "{}: {v}", router.name);
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains("must start with a lower-case letter"), "{}: {v}", router.name);
        router.stop().await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subgraph_port_is_no_way_around_the_router() {
    let stack = Stack::start().await;
    let resp = stack
        .http
        .post(&stack.subgraph_url)
        .bearer_auth(stack.operator_token())
        .json(&json!({ "query": "{ tenants { nodes { id } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_routers_deduplication_never_hands_one_tenant_anothers_answer() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let (a, b) = (format!("da-{}", stack.id), format!("db-{}", stack.id));
    tenants_on_new_edition(&stack, &hive, &[&a, &b], "Dedupe").await;
    let query = "{ currentTenant { id } }";
    let tokens = [(a.clone(), stack.member_token(&a)), (b.clone(), stack.member_token(&b))];
    // The same query text from both tenants at once, many times over: identical in-flight requests are what
    // Hive Router deduplicates, and it must never share an answer across callers.
    let calls = (0..400).map(|i| {
        let (tenant, token) = &tokens[i % 2];
        let (stack, url) = (&stack, &hive.url);
        async move { (tenant, stack.post(url, token, &[], query, json!({})).await) }
    });
    let answers = futures::future::join_all(calls).await;
    for (tenant, v) in &answers {
        assert_eq!(v["data"]["currentTenant"]["id"], tenant.as_str(), "a caller of {tenant} got {v}");
    }
    hive.stop().await;
    stack.stop().await;
}

/// A published edition and tenants provisioned on it, made through `router` by the platform operator.
async fn tenants_on_new_edition(stack: &Stack, router: &Router, tenants: &[&str], display_name: &str) {
    let op = stack.operator_token();
    let edition = format!("ed-{}", stack.id);
    stack
        .ok(
            &router.url,
            &op,
            "mutation($e: String!) { createEdition(input: { id: $e, name: \"E\" }) { id } }",
            json!({ "e": edition }),
        )
        .await;
    stack
        .ok(
            &router.url,
            &op,
            "mutation($e: String!) { publishEdition(id: $e, version: 1) { id } }",
            json!({ "e": edition }),
        )
        .await;
    for t in tenants {
        stack
            .ok(&router.url, &op, "mutation($t: ID!, $e: String!, $n: String!) { provisionTenant(input: { id: $t, displayName: $n, region: \"eu-west\", editionId: $e }) { id } }", json!({ "t": t, "e": edition, "n": display_name }))
            .await;
    }
}

/// A real graphql-ws client (the protocol's reference implementation, under Node) subscribed through
/// Hive Router receives its tenant's events, and never another tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_through_hive_router_streams_only_the_subscribers_tenant() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let (mine, theirs) = (format!("mine-{}", stack.id), format!("theirs-{}", stack.id));
    tenants_on_new_edition(&stack, &hive, &[&mine, &theirs], "T").await;

    e2e::ensure_node_tools().await;
    let mut client = tokio::process::Command::new("node")
        .arg(e2e::repo().join("router/ws-client.mjs"))
        .arg(&hive.ws_url)
        .arg(stack.member_token(&mine))
        .arg("subscription { tenantEvents { eventType tenantId traceId payload } }")
        .arg("{}")
        .arg("3")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines = tokio::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert_eq!(first, r#"{"connected":true}"#);

    // Keep changing both tenants until three of ours have arrived: the subscription goes live at the
    // subgraph a moment after the client is acknowledged, and the other tenant's changes interleave.
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while received.len() < 3 && tokio::time::Instant::now() < deadline {
        n += 1;
        for t in [&theirs, &mine] {
            stack
                .ok(
                    &hive.url,
                    &stack.member_token(t),
                    "mutation($n: String!) { updateTenant(displayName: $n) { id } }",
                    json!({ "n": format!("name {n}") }),
                )
                .await;
        }
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
            received.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    assert_eq!(received.len(), 3, "{received:?}");
    for r in &received {
        let e = &r["data"]["tenantEvents"];
        assert_eq!(e["tenantId"], mine.as_str(), "another tenant's event leaked: {r}");
        assert_eq!(e["eventType"], "TenantUpdated", "{r}");
    }
    let status = tokio::time::timeout(Duration::from_secs(10), client.wait()).await.unwrap().unwrap();
    assert!(status.success());
    hive.stop().await;
    stack.stop().await;
}

/// A tenant, a service principal in it with a role, and an API token for that principal, all made through
/// `router` by the platform operator. Returns the token.
async fn tenant_with_api_token(stack: &Stack, router: &Router, tenant: &str) -> String {
    tenants_on_new_edition(stack, router, &[tenant], "Acme Widgets").await;
    let boot = &stack.operator_api_token;
    let p = stack
        .ok(
            &router.url,
            boot,
            "mutation($t: ID) { createPrincipal(tenantId: $t, input: { kind: SERVICE, displayName: \"ci\" }) { id } }",
            json!({ "t": tenant }),
        )
        .await;
    let principal = p["createPrincipal"]["id"].as_str().unwrap().to_owned();
    stack
        .ok(&router.url, boot, "mutation($t: ID) { defineRole(tenantId: $t, input: { key: \"reader\", permissions: [\"tenancy:read\", \"identity:read\"] }) { key } }", json!({ "t": tenant }))
        .await;
    stack
        .ok(
            &router.url,
            boot,
            "mutation($t: ID, $p: ID!) { bindRole(tenantId: $t, principalId: $p, roleKey: \"reader\") }",
            json!({ "t": tenant, "p": principal }),
        )
        .await;
    let v = stack
        .ok(&router.url, boot, "mutation($t: ID, $p: ID!) { createApiToken(tenantId: $t, input: { principalId: $p, name: \"ci\", scopes: [\"tenancy:read\", \"identity:read\"] }) { token } }", json!({ "t": tenant, "p": principal }))
        .await;
    v["createApiToken"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_entity_resolves_across_two_subgraphs() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("x-{}", stack.id);
    let token = tenant_with_api_token(&stack, &hive, &tenant).await;
    // `me` comes from identity; its `tenant` is an entity identity only references and tenancy resolves.
    let v = stack.ok(&hive.url, &token, "{ me { kind tenant { id displayName status } } }", json!({})).await;
    assert_eq!(
        v["me"],
        json!({ "kind": "SERVICE", "tenant": { "id": tenant, "displayName": "Acme Widgets", "status": "PROVISIONING" } })
    );
    hive.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_token_stops_working_on_every_subgraph_within_a_second() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("rv-{}", stack.id);
    let token = tenant_with_api_token(&stack, &hive, &tenant).await;
    // Used (and so cached) on both subgraphs first.
    stack.ok(&hive.url, &token, "{ me { id } currentTenant { id } }", json!({})).await;

    let v = stack
        .ok(
            &hive.url,
            &stack.operator_api_token,
            "query($t: ID) { apiTokens(tenantId: $t) { id } }",
            json!({ "t": tenant }),
        )
        .await;
    let id = v["apiTokens"][0]["id"].as_str().unwrap().to_owned();
    let revoked_at = tokio::time::Instant::now();
    stack
        .ok(
            &hive.url,
            &stack.operator_api_token,
            "mutation($t: ID, $id: ID!) { revokeApiToken(tenantId: $t, id: $id) }",
            json!({ "t": tenant, "id": id }),
        )
        .await;

    let secret = stack.secret.clone();
    let refused = |url: String| {
        let (http, token, secret) = (stack.http.clone(), token.clone(), secret.clone());
        async move {
            loop {
                let v: Value = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header(kernel::server::ROUTER_SECRET_HEADER, &secret)
                    .json(&json!({ "query": "{ __typename }" }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
                    return tokio::time::Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (on_identity, on_tenancy) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(refused(stack.identity_url.clone()), refused(stack.subgraph_url.clone()))
    })
    .await
    .expect("the token still worked 5 s after revocation");
    for (name, at) in [("identity", on_identity), ("tenancy", on_tenancy)] {
        let took = at - revoked_at;
        assert!(took < Duration::from_secs(1), "{name} refused the token only after {took:?}");
    }
    hive.stop().await;
    stack.stop().await;
}

/// The classic hostile requests, and the fragment "billion laughs", against the public endpoint.
fn hostile_requests() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let json = |q: String| serde_json::to_vec(&json!({ "query": q })).unwrap();
    let laughs = |levels: usize, fanout: usize| {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..levels {
            let spreads = vec![format!("...F{}", i + 1); fanout].join(" ");
            q.push_str(&format!("fragment F{i} on Query {{ {spreads} }}\n"));
        }
        q.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
        q
    };
    let big_variable = "x".repeat(8 * 1024 * 1024);
    let mut deep_json = String::new();
    for _ in 0..10_000 {
        deep_json.push('[');
    }
    let deep_json_body = format!("{{\"query\": \"{{ __typename }}\", \"variables\": {{ \"v\": {deep_json} }} }}");
    vec![
        ("billion laughs, deep", "application/json", json(laughs(40, 2))),
        ("billion laughs, wide", "application/json", json(laughs(10, 8))),
        ("billion laughs, shallow", "application/json", json(laughs(6, 30))),
        (
            "alias bomb x5000",
            "application/json",
            json(format!("{{ {} }}", (0..5000).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "))),
        ),
        ("nesting x500", "application/json", json(format!("{}{}", "{ currentTenant ".repeat(500), "}".repeat(500)))),
        (
            "introspection cycle",
            "application/json",
            json(format!(
                "{{ __schema {{ types {{ {} name {} }} }} }}",
                "fields { type { ofType { fields { type { ofType { ".repeat(20),
                "} } } } } }".repeat(20)
            )),
        ),
        (
            "fragment cycle",
            "application/json",
            json("{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }".into()),
        ),
        ("directive flood", "application/json", json(format!("{{ __typename {} }}", "@skip(if: false) ".repeat(2000)))),
        ("100k tokens", "application/json", json(format!("{{ {} }}", "__typename ".repeat(100_000)))),
        (
            "1 MiB, one field 50,000 times",
            "application/json",
            json(format!("{{ {} }}", "currentTenant { id } ".repeat(50_000))),
        ),
        (
            "8 MiB variable",
            "application/json",
            serde_json::to_vec(
                &json!({ "query": "query($v: String) { __typename }", "variables": { "v": big_variable } }),
            )
            .unwrap(),
        ),
        ("deep JSON variables", "application/json", deep_json_body.into_bytes()),
        (
            "batch of 1000",
            "application/json",
            serde_json::to_vec(&vec![json!({ "query": "{ __typename }" }); 1000]).unwrap(),
        ),
        ("malformed JSON", "application/json", b"{\"query\": ".to_vec()),
        ("invalid UTF-8", "application/json", vec![b'{', 0xff, 0xfe, b'}']),
        ("wrong content type", "text/plain", b"{ __typename }".to_vec()),
    ]
}

/// Documents nested 5,000 deep (about 10 KB): parsers recurse per level, and the first of these, sent
/// without a token, overflowed the edge's stack and aborted it (finding Critical).
fn deep_documents() -> Vec<(&'static str, String)> {
    let n = 5_000;
    let nest = |open: &str, inner: &str, close: &str| format!("{}{inner}{}", open.repeat(n), close.repeat(n));
    vec![
        ("list literals", format!("{{ __type(name: {}) {{ name }} }}", nest("[", "\"Query\"", "]"))),
        ("object literals", format!("{{ __type(name: {}) {{ name }} }}", nest("{a: ", "1", "}"))),
        ("selection sets", nest("{ currentTenant ", "{ id }", "}")),
        ("a variable's type", format!("query($v: {}) {{ __typename }}", nest("[", "Int", "]"))),
    ]
}

/// Sends each deep document to `url` (with `headers`, and a bearer token if given): each is refused with a
/// 4xx and a code, and `url` answers a plain query afterwards.
async fn refuses_deep_documents(what: &str, url: &str, token: Option<&str>, headers: &[(&str, &str)]) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let send = |query: String| {
        let mut req = http.post(url).json(&json!({ "query": query }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    for (name, doc) in deep_documents() {
        let resp = send(doc).await.unwrap_or_else(|e| panic!("{what}: {name}: no answer: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{what}: {name}: answered {status}: {v}");
        assert!(v["errors"][0]["extensions"]["code"].is_string(), "{what}: {name}: no code: {v}");
    }
    let resp = send("{ __typename }".into()).await.unwrap_or_else(|e| panic!("{what}: down after the documents: {e}"));
    let status = resp.status().as_u16();
    assert!(status == 200 || token.is_none(), "{what}: not answering afterwards: {status}");
}

/// The finding's document and its kin, at the edge (no token), at every subgraph (router secret and a
/// token, so the parser is reached) and through each router.
async fn deep_documents_are_refused_everywhere(stack: &Stack, router: &Router) {
    refuses_deep_documents(&format!("{} edge", router.name), &router.url, None, &[]).await;
    let token = stack.operator_token();
    refuses_deep_documents(&format!("{} edge, with a token", router.name), &router.url, Some(&token), &[]).await;
    for (name, url) in &stack.subgraph_urls {
        let secret = [(kernel::server::ROUTER_SECRET_HEADER, stack.secret.as_str())];
        refuses_deep_documents(name, url, Some(&token), &secret).await;
    }
}

/// Each hostile request gets a 4xx or a coded GraphQL error well under a second, and the router still
/// answers a plain query afterwards.
async fn refuses_hostile_requests(stack: &Stack, router: &Router) {
    let token = stack.operator_token();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for (name, content_type, body) in hostile_requests() {
        let started = std::time::Instant::now();
        let resp =
            http.post(&router.url).bearer_auth(&token).header("content-type", content_type).body(body).send().await;
        let took = started.elapsed();
        let (status, text) = match resp {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => panic!("{}: {name}: no answer after {took:?}: {e}", router.name),
        };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let coded = v["errors"][0]["extensions"]["code"].is_string();
        assert!(
            (400..500).contains(&status) || coded,
            "{}: {name}: answered {status} without a coded error: {}",
            router.name,
            text.chars().take(300).collect::<String>()
        );
        assert!(v.get("data").is_none_or(|d| d.is_null()), "{}: {name}: answered with data", router.name);
        assert!(took < Duration::from_secs(1), "{}: {name} took {took:?}", router.name);
    }
    // A GET mutation is refused too.
    let get = http
        .get(format!("{}?query=mutation%7BupdateTenant(displayName%3A%22x%22)%7Bid%7D%7D", router.url))
        .bearer_auth(stack.member_token("nobody"))
        .send()
        .await
        .unwrap();
    let status = get.status().as_u16();
    let v: Value = get.json().await.unwrap_or(Value::Null);
    assert!(
        (400..500).contains(&status) || v["errors"][0]["extensions"]["code"].is_string(),
        "{}: GET mutation: {status} {v}",
        router.name
    );
    let v = stack.post(&router.url, &token, &[], "{ __typename }", json!({})).await;
    assert_eq!(v["data"]["__typename"], "Query", "{}: not answering afterwards: {v}", router.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hive_router_refuses_hostile_requests() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    refuses_hostile_requests(&stack, &hive).await;
    deep_documents_are_refused_everywhere(&stack, &hive).await;
    hive.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_router_refuses_hostile_requests() {
    let stack = Stack::start().await;
    let apollo = stack.apollo().await;
    refuses_hostile_requests(&stack, &apollo).await;
    deep_documents_are_refused_everywhere(&stack, &apollo).await;
    apollo.stop().await;
    stack.stop().await;
}

/// `tenant { projects { modules { dependencies } } }`: tenancy resolves the tenant, catalogue its projects
/// (a `Tenant` entity both contribute to), their modules and dependencies — through `router`, returning the
/// same data however it is planned. Returns the answer's `tenant`.
async fn catalogue_tree(stack: &Stack, router: &Router, token: &str, tenant: &str) -> Value {
    let q = "query($t: ID!) { tenant(id: $t) { id displayName projects(first: 10) { nodes { slug
               modules(first: 20) { nodes { name dependencies { versionConstraint satisfied module { name } } } } } } } }";
    stack.ok(&router.url, token, q, json!({ "t": tenant })).await["tenant"].clone()
}

async fn grow_catalogue(stack: &Stack, router: &Router, token: &str, projects: std::ops::Range<usize>, modules: usize) {
    for p in projects {
        let v = stack
            .ok(
                &router.url,
                token,
                "mutation($s: String!) { createProject(input: { slug: $s, name: \"P\" }) { id } }",
                json!({ "s": format!("proj-{p}") }),
            )
            .await;
        let project = v["createProject"]["id"].as_str().unwrap().to_owned();
        let mut prev: Option<String> = None;
        for m in 0..modules {
            let v = stack
                .ok(
                    &router.url,
                    token,
                    "mutation($p: ID!, $n: String!) { registerModule(input: { projectId: $p, name: $n, version: \"1.2.0\", kind: \"service\" }) { id } }",
                    json!({ "p": project, "n": format!("m-{m}") }),
                )
                .await;
            let id = v["registerModule"]["id"].as_str().unwrap().to_owned();
            if let Some(prev) = prev {
                stack
                    .ok(
                        &router.url,
                        token,
                        "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"^1.2\") { satisfied } }",
                        json!({ "f": id, "t": prev }),
                    )
                    .await;
            }
            prev = Some(id);
        }
    }
}

/// Through both routers, a tenant's catalogue tree resolves across tenancy and catalogue, and the
/// subgraphs' SQL statement count stays the same as the tree grows (no N+1 anywhere on the path). A
/// current-thread runtime: the in-process subgraphs run on the thread whose statements are counted.
#[tokio::test]
async fn a_tenants_catalogue_tree_resolves_across_subgraphs_in_constant_statements() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let apollo = stack.apollo().await;
    let (tenant, other) = (format!("cat-{}", stack.id), format!("oth-{}", stack.id));
    tenants_on_new_edition(&stack, &hive, &[&tenant, &other], "Catalogue Co").await;
    let token = stack.member_token(&tenant);
    grow_catalogue(&stack, &hive, &token, 0..1, 2).await;
    let mut few = Vec::new();
    for router in [&hive, &apollo] {
        let (n, tree) = test_support::count_statements(catalogue_tree(&stack, router, &token, &tenant)).await;
        assert_eq!(tree["displayName"], "Catalogue Co", "{}: {tree}", router.name);
        assert_eq!(tree["projects"]["nodes"][0]["modules"]["nodes"][1]["dependencies"][0]["module"]["name"], "m-0");
        few.push(n);
    }

    grow_catalogue(&stack, &apollo, &token, 1..4, 5).await;
    for (router, few) in [&hive, &apollo].into_iter().zip(few) {
        let (many, tree) = test_support::count_statements(catalogue_tree(&stack, router, &token, &tenant)).await;
        let projects = tree["projects"]["nodes"].as_array().unwrap();
        assert_eq!(projects.len(), 4, "{}", router.name);
        let modules: usize = projects.iter().map(|p| p["modules"]["nodes"].as_array().unwrap().len()).sum();
        let deps: usize = projects
            .iter()
            .flat_map(|p| p["modules"]["nodes"].as_array().unwrap())
            .map(|m| m["dependencies"].as_array().unwrap().len())
            .sum();
        assert_eq!((modules, deps), (2 + 3 * 5, 1 + 3 * 4), "{}", router.name);
        assert!(few > 0, "statements were counted");
        assert_eq!(few, many, "{}: {few} statements for 1 project, {many} for 4", router.name);
    }

    // Another tenant sees none of it through the router.
    let theirs = catalogue_tree(&stack, &hive, &stack.member_token(&other), &other).await;
    assert_eq!(theirs["projects"]["nodes"], json!([]));
    hive.stop().await;
    apollo.stop().await;
    stack.stop().await;
}

/// A prod environment change through the router, end to end across four subgraphs: catalogue records it
/// as pending and asks governance (`catalogue.RequestApproval`); identity binds the approver's role, which
/// governance learns from `RoleBound`; the approver approves through the router, and governance's
/// `ApprovalGranted` makes catalogue apply the change. The requester could not approve it itself.
/// A tenant with an approver holding catalogue's prod-gate role, a requester, a project and a pending prod
/// change: (requester's token, approver's token, project id, change id).
async fn pending_prod_change(stack: &Stack, router: &Router, tenant: &str) -> (String, String, String, String) {
    tenants_on_new_edition(stack, router, &[tenant], "Governed Co").await;
    let admin = stack.token(tenant, "admin", &["identity:read", "identity:write"]);
    let requester = stack.token(
        tenant,
        &test_support::principal("u-requester"),
        &["catalogue:read", "catalogue:write", "governance:read", "governance:write", "approvals:decide"],
    );

    // Identity: the approver, and the role catalogue's prod gate names (`release-approver` by default).
    stack
        .ok(&router.url, &admin, "mutation { defineRole(input: { key: \"release-approver\", permissions: [\"approvals:decide\", \"governance:read\"] }) { key } }", json!({}))
        .await;
    let v = stack
        .ok(&router.url, &admin, "mutation { createPrincipal(input: { displayName: \"Approver\", kind: USER, email: \"a@example.com\" }) { id } }", json!({}))
        .await;
    let approver_id = v["createPrincipal"]["id"].as_str().unwrap().to_owned();
    stack
        .ok(
            &router.url,
            &admin,
            "mutation($p: ID!) { bindRole(principalId: $p, roleKey: \"release-approver\") }",
            json!({ "p": approver_id }),
        )
        .await;
    let approver = stack.token(tenant, &approver_id, &["approvals:decide", "governance:read"]);

    // Catalogue: a prod change waits for approval.
    let v = stack
        .ok(
            &router.url,
            &requester,
            "mutation { createProject(input: { slug: \"shop\", name: \"Shop\" }) { id } }",
            json!({}),
        )
        .await;
    let project = v["createProject"]["id"].as_str().unwrap().to_owned();
    let v = stack
        .ok(
            &router.url,
            &requester,
            "mutation($p: ID!) { changeEnvironment(projectId: $p, name: prod, config: { replicas: 9 }, reason: \"scale\") { change { id status } } }",
            json!({ "p": project }),
        )
        .await;
    let change = v["changeEnvironment"]["change"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["changeEnvironment"]["change"]["status"], "PENDING");
    (requester, approver, project, change)
}

/// Governance's open request about `change`, as `token` reads it through `router`.
async fn request_for(stack: &Stack, router: &Router, token: &str, change: &str) -> Value {
    test_support::eventually_value("governance to open the request", Duration::from_secs(20), || async {
        let v = stack
            .ok(
                &router.url,
                token,
                "{ approvals(status: PENDING) { nodes { id subjectKind subjectId requestedBy } } }",
                json!({}),
            )
            .await;
        v["approvals"]["nodes"].as_array().unwrap().iter().find(|n| n["subjectId"] == change).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prod_change_is_applied_once_an_approver_approves_it_through_the_router() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("gov-{}", stack.id);
    let (requester, approver, project, change) = pending_prod_change(&stack, &hive, &tenant).await;

    // Governance opened the request (the inbox an approver reads, through the router).
    let approval = request_for(&stack, &hive, &approver, &change).await;
    assert_eq!(approval["subjectKind"], "catalogue.EnvironmentChange");
    assert_eq!(approval["requestedBy"], test_support::principal("u-requester"));
    let id = approval["id"].as_str().unwrap().to_owned();

    let v = stack
        .post(&hive.url, &requester, &[], "mutation($id: ID!) { approve(id: $id) { status } }", json!({ "id": id }))
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "the requester cannot approve its own change: {v}");

    // The approver's role reaches governance through identity's RoleBound; then the approval goes through.
    let approved =
        test_support::eventually_value("the approver's role to reach governance", Duration::from_secs(20), || async {
            let v = stack
                .post(
                    &hive.url,
                    &approver,
                    &[],
                    "mutation($id: ID!) { approve(id: $id, note: \"ok\") { status } }",
                    json!({ "id": id }),
                )
                .await;
            v["data"]["approve"]["status"].as_str().map(str::to_owned)
        })
        .await;
    assert_eq!(approved, "APPROVED");

    // Catalogue applies the change once governance's ApprovalGranted arrives.
    test_support::eventually("catalogue to apply the approved change", Duration::from_secs(20), || async {
        let v = stack
            .ok(
                &hive.url,
                &requester,
                "query($p: ID!) { environment(projectId: $p, name: prod) { version config } }",
                json!({ "p": project }),
            )
            .await;
        v["environment"] == json!({ "version": 2, "config": { "replicas": 9 } })
    })
    .await;
    hive.stop().await;
    stack.stop().await;
}

/// Finding (High): the prod gate could be bypassed. The requester withdrew governance's request for its own
/// prod change, then opened one of its own about the same change with a role an accomplice holds and a
/// quorum of 1; the accomplice approved, and catalogue applied the change. Now governance refuses an API
/// request about catalogue's subjects, the withdrawal discards the change (finding Medium: before, the
/// environment then stayed blocked for good), and the environment takes a new change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_cannot_approve_its_own_prod_change_through_a_request_of_its_own() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("gov-{}", stack.id);
    let (requester, _approver, project, change) = pending_prod_change(&stack, &hive, &tenant).await;
    let approval = request_for(&stack, &hive, &requester, &change).await;
    let v = stack
        .ok(
            &hive.url,
            &requester,
            "mutation($id: ID!) { cancelApproval(id: $id) { status } }",
            json!({ "id": approval["id"] }),
        )
        .await;
    assert_eq!(v["cancelApproval"]["status"], "CANCELLED");

    let own =
        "mutation($s: String!, $e: DateTime!) { requestApproval(input: { subjectKind: \"catalogue.EnvironmentChange\",
        subjectId: $s, summary: \"mine\", approverRoles: [\"accomplice\"], quorum: 1, expiresAt: $e }) { id } }";
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let v = stack.post(&hive.url, &requester, &[], own, json!({ "s": change, "e": soon })).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");

    let changes = "query($p: ID!) { environmentChanges(projectId: $p, name: prod) { id status } environment(projectId: $p, name: prod) { version config } }";
    test_support::eventually("catalogue to discard the withdrawn change", Duration::from_secs(20), || async {
        let v = stack.ok(&hive.url, &requester, changes, json!({ "p": project })).await;
        v["environmentChanges"][0] == json!({ "id": change, "status": "CANCELLED" })
    })
    .await;
    let v = stack.ok(&hive.url, &requester, changes, json!({ "p": project })).await;
    assert_eq!(v["environment"], json!({ "version": 1, "config": {} }), "nothing was applied");
    let v = stack
        .ok(
            &hive.url,
            &requester,
            "mutation($p: ID!) { changeEnvironment(projectId: $p, name: prod, config: { replicas: 2 }, reason: \"again\") { change { status } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(v["changeEnvironment"]["change"]["status"], "PENDING", "the environment takes a new change");
    hive.stop().await;
    stack.stop().await;
}
