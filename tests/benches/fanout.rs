//! Event → live subscriber latency with many subscribers of one tenant, through Hive Router and, as the
//! baseline, straight from the subgraph, for two feeds:
//!
//! * `tenant`: a rename committed in tenancy, relayed (the relay wakes on the commit), heard by tenancy's
//!   per-replica listener and fanned out to every `tenantEvents` subscription;
//! * `workflow`: a workflow instance started (its `WorkflowInstanceStarted` appended to its history and to
//!   the outbox in one transaction), relayed to RabbitMQ, heard by workflow's per-replica listener and fanned
//!   out to every `workflowEvents` subscription.
//!
//!     cargo bench -p e2e --bench fanout
//!
//! BENCH_SUBSCRIBERS (default 1000) subscribers, each with a token of its own (so Hive Router keeps one
//! upstream connection per subscriber, as it does for separate users); BENCH_ROUNDS (default 5) events,
//! each timed from just before the mutation is sent to each delivery; BENCH_FEEDS (default
//! `tenant,workflow`); BENCH_TARGETS (default `direct,hive`; `hive-no-edge` measures Hive Router without the
//! edge in front). Target: p99 < 100 ms at 1,000 subscribers. Client, router and subgraph share the cores.

use std::time::{Duration, Instant};

use e2e as harness;
use serde_json::json;
use test_support::{Next, WsClient};

/// What the subscribers watch and what the bench changes to make them hear it.
#[derive(Clone, Copy)]
enum Feed {
    Tenant,
    Workflow,
}

impl Feed {
    fn subgraph(self) -> &'static str {
        match self {
            Feed::Tenant => "tenancy",
            Feed::Workflow => "workflow",
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Feed::Tenant => &["tenancy:read"],
            Feed::Workflow => &["workflow:read"],
        }
    }

    fn subscription(self) -> &'static str {
        match self {
            Feed::Tenant => "subscription { tenantEvents(eventTypes: [\"TenantUpdated\"]) { payload } }",
            Feed::Workflow => "subscription { workflowEvents(eventTypes: [\"WorkflowInstanceStarted\"]) { payload } }",
        }
    }

    /// The round a delivery carries.
    fn round(self, m: &serde_json::Value) -> Option<usize> {
        let data = &m["payload"]["data"];
        match self {
            Feed::Tenant => data["tenantEvents"]["payload"]["displayName"]
                .as_str()
                .and_then(|n| n.strip_prefix("round-"))
                .and_then(|r| r.parse().ok()),
            Feed::Workflow => data["workflowEvents"]["payload"]["input"]["round"].as_u64().map(|r| r as usize),
        }
    }

    /// The mutation that makes round `round`'s event.
    fn mutation(self, round: usize) -> serde_json::Value {
        match self {
            Feed::Tenant => json!({ "query": "mutation($n: String!) { updateTenant(displayName: $n) { id } }",
                "variables": { "n": format!("round-{round}") } }),
            Feed::Workflow => json!({
                "query": "mutation($i: JSON!) { startWorkflow(input: { definitionKey: \"fanout\", input: $i }) { id } }",
                "variables": { "i": { "round": round } } }),
        }
    }
}

/// The first warm-up round's number (timed rounds count from 1).
const WARM_UP: usize = 1_000_000;

struct Run {
    latencies_ms: Vec<f64>,
    expected: usize,
}

/// `secret`: the router secret, when the mutations go straight to the subgraph.
async fn run(
    stack: &harness::Stack,
    feed: Feed,
    (ws_url, http_url, secret): (&str, &str, Option<&str>),
    tenant: &str,
    subscribers: usize,
    rounds: usize,
) -> Run {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, Instant)>();
    let scopes = feed.scopes();
    let mut ready = Vec::new();
    for i in 0..subscribers {
        let token = stack.signer.mint(
            harness::ISSUER,
            harness::AUDIENCE,
            &format!("viewer-{i}"),
            Some(tenant),
            scopes,
            Duration::from_secs(3600),
        );
        let mut ws = WsClient::init(ws_url, &stack.secret, &token).await;
        ws.subscribe("1", feed.subscription()).await;
        let tx = tx.clone();
        ready.push(tokio::spawn(async move {
            loop {
                match ws.next(Duration::from_secs(120)).await {
                    Next::Message(m) if m["type"] == "next" => {
                        if let Some(round) = feed.round(&m) {
                            let _ = tx.send((i, round, Instant::now()));
                        }
                    }
                    Next::Message(_) => {}
                    _ => break,
                }
            }
        }));
    }
    drop(tx);
    let member = stack.member_token(tenant);
    let rename = |round: usize| {
        let body = feed.mutation(round);
        let mut req = stack.http.post(http_url).bearer_auth(&member).json(&body);
        if let Some(s) = secret {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, s);
        }
        req.send()
    };
    // Warm-up rounds (numbered from WARM_UP) until every subscriber has heard one: a subscription the
    // server had not registered yet when an event went out hears the next. Nothing is timed before.
    let mut live = std::collections::HashSet::new();
    for warm in WARM_UP.. {
        assert!(warm < WARM_UP + 10, "only {} of {subscribers} subscriptions are live", live.len());
        let v: serde_json::Value = rename(warm).await.unwrap().json().await.unwrap();
        assert!(v.get("errors").is_none(), "the warm-up event was refused: {v}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while live.len() < subscribers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((i, r, _))) if r >= WARM_UP => {
                    live.insert(i);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        if live.len() == subscribers {
            break;
        }
    }
    let mut latencies_ms = Vec::with_capacity(subscribers * rounds);
    for round in 1..=rounds {
        let sent = Instant::now();
        let v: serde_json::Value = rename(round).await.unwrap().json().await.unwrap();
        assert!(v.get("errors").is_none(), "round {round} was refused: {v}");
        let mut got = 0;
        while got < subscribers {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((_, r, at))) if r == round => {
                    latencies_ms.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                    got += 1;
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    for t in ready {
        t.abort();
    }
    Run { latencies_ms, expected: subscribers * rounds }
}

#[tokio::main]
async fn main() {
    let subscribers: usize = std::env::var("BENCH_SUBSCRIBERS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let targets = std::env::var("BENCH_TARGETS").unwrap_or_else(|_| "direct,hive".into());
    let feeds = std::env::var("BENCH_FEEDS").unwrap_or_else(|_| "tenant,workflow".into());
    let stack = harness::Stack::start().await;
    let op = stack.operator_token();
    let url = |subgraph: &str| stack.subgraph_urls.iter().find(|(d, _)| *d == subgraph).unwrap().1.clone();
    let setup = [
        r#"mutation { createEdition(input: { id: "fan", name: "Fan" }) { id } }"#,
        r#"mutation { publishEdition(id: "fan", version: 1) { id } }"#,
        r#"mutation { provisionTenant(input: { id: "fanout", displayName: "Fan", region: "eu-west", editionId: "fan" }) { id } }"#,
        r#"mutation { activateTenant(id: "fanout") { id } }"#,
    ];
    let secret = [(kernel::server::ROUTER_SECRET_HEADER, stack.secret.as_str())];
    for q in setup {
        let v = stack.post(&url("tenancy"), &op, &secret, q, json!({})).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    // The workflow the `workflow` feed starts: one long wait, so each start appends its events and rests.
    let define = r#"mutation { publishWorkflowDefinition(input: { key: "fanout", name: "Fan-out", start: "rest",
        steps: [{ id: "rest", type: WAIT, waitSeconds: 3600 }] }) { version } }"#;
    let v = stack.post(&url("workflow"), &stack.member_token("fanout"), &secret, define, json!({})).await;
    assert!(v.get("errors").is_none(), "{v}");
    println!("{subscribers} subscribers of one tenant, {rounds} events each\n");
    println!("| feed | target | deliveries | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for feed in feeds.split(',') {
        let feed = match feed {
            "tenant" => Feed::Tenant,
            "workflow" => Feed::Workflow,
            other => panic!("unknown feed {other}"),
        };
        for target in targets.split(',') {
            let direct_http = url(feed.subgraph());
            let (router, ws, http) = match target {
                "direct" => (None, direct_http.replace("http://", "ws://"), direct_http.clone()),
                "hive" => {
                    let r = stack.hive().await;
                    let (ws, http) = (r.ws_url.clone(), r.url.clone());
                    (Some(r), ws, http)
                }
                // Hive Router without the edge in front: what the edge adds.
                "hive-no-edge" => {
                    let r = stack.hive().await;
                    let (ws, http) = (r.router_url.replace("http://", "ws://"), r.router_url.clone());
                    (Some(r), ws, http)
                }
                other => panic!("unknown target {other}"),
            };
            // Straight to the subgraph, mutations carry the router secret the router would add.
            let secret = router.is_none().then_some(stack.secret.as_str());
            let mut r = run(&stack, feed, (&ws, &http, secret), "fanout", subscribers, rounds).await;
            r.latencies_ms.sort_by(|a, b| a.total_cmp(b));
            let pct =
                |p: f64| r.latencies_ms[((r.latencies_ms.len() as f64 * p) as usize).min(r.latencies_ms.len() - 1)];
            println!(
                "| {} | {target} | {}/{} | {:.1} | {:.1} | {:.1} |",
                feed.subgraph(),
                r.latencies_ms.len(),
                r.expected,
                pct(0.5),
                pct(0.99),
                r.latencies_ms.last().copied().unwrap_or(0.0)
            );
            if let Some(r) = router {
                r.stop().await;
            }
        }
    }
    stack.stop().await;
}
