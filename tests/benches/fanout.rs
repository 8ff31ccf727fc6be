//! Mutation → live subscriber latency with many subscribers of one tenant: a rename committed, relayed
//! (the relay wakes on the commit), heard by the subgraph's per-replica listener and fanned out to every
//! `tenantEvents` subscription, through Hive Router and, as the baseline, straight from the subgraph.
//!
//!     cargo bench -p e2e --bench fanout
//!
//! BENCH_SUBSCRIBERS (default 1000) subscribers, each with a token of its own (so Hive Router keeps one
//! upstream connection per subscriber, as it does for separate users); BENCH_ROUNDS (default 5) renames,
//! each timed from just before the mutation is sent to each delivery; BENCH_TARGETS (default
//! `direct,hive`; `hive-no-edge` measures Hive Router without the edge in front). Target: p99 < 100 ms at 1,000 subscribers. Client, router and subgraph share the cores.

use std::time::{Duration, Instant};

use e2e as harness;
use serde_json::json;
use test_support::{Next, WsClient};

const SUBSCRIPTION: &str = "subscription { tenantEvents(eventTypes: [\"TenantUpdated\"]) { payload } }";

struct Run {
    latencies_ms: Vec<f64>,
    expected: usize,
}

/// `secret`: the router secret, when the mutations go straight to the subgraph.
async fn run(
    stack: &harness::Stack,
    (ws_url, http_url, secret): (&str, &str, Option<&str>),
    tenant: &str,
    subscribers: usize,
    rounds: usize,
) -> Run {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let scopes = ["tenancy:read"];
    let mut ready = Vec::new();
    for i in 0..subscribers {
        let token = stack.signer.mint(
            harness::ISSUER,
            harness::AUDIENCE,
            &format!("viewer-{i}"),
            Some(tenant),
            &scopes,
            Duration::from_secs(3600),
        );
        let mut ws = WsClient::init(ws_url, &stack.secret, &token).await;
        ws.subscribe("1", SUBSCRIPTION).await;
        let tx = tx.clone();
        ready.push(tokio::spawn(async move {
            loop {
                match ws.next(Duration::from_secs(120)).await {
                    Next::Message(m) if m["type"] == "next" => {
                        let name =
                            m["payload"]["data"]["tenantEvents"]["payload"]["displayName"].as_str().unwrap_or("");
                        if let Some(round) = name.strip_prefix("round-").and_then(|r| r.parse().ok()) {
                            let _ = tx.send((round, Instant::now()));
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
        let body = json!({ "query": "mutation($n: String!) { updateTenant(displayName: $n) { id } }",
            "variables": { "n": format!("round-{round}") } });
        let mut req = stack.http.post(http_url).bearer_auth(&member).json(&body);
        if let Some(s) = secret {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, s);
        }
        req.send()
    };
    // Round 0 warms up and proves every subscription is live before anything is timed.
    rename(0).await.unwrap();
    let mut warm = 0;
    while warm < subscribers {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some((0, _))) => warm += 1,
            Ok(Some(_)) => {}
            _ => panic!("only {warm} of {subscribers} subscriptions are live"),
        }
    }
    let mut latencies_ms = Vec::with_capacity(subscribers * rounds);
    for round in 1..=rounds {
        let sent = Instant::now();
        rename(round).await.unwrap();
        let mut got = 0;
        while got < subscribers {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((r, at))) if r == round => {
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
    let stack = harness::Stack::start().await;
    let op = stack.operator_token();
    let direct_http = stack.subgraph_url.clone();
    let setup = [
        r#"mutation { createEdition(input: { id: "fan", name: "Fan" }) { id } }"#,
        r#"mutation { publishEdition(id: "fan", version: 1) { id } }"#,
        r#"mutation { provisionTenant(input: { id: "fanout", displayName: "Fan", region: "eu-west", editionId: "fan" }) { id } }"#,
        r#"mutation { activateTenant(id: "fanout") { id } }"#,
    ];
    let secret = [(kernel::server::ROUTER_SECRET_HEADER, stack.secret.as_str())];
    for q in setup {
        let v = stack.post(&direct_http, &op, &secret, q, json!({})).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    println!("{subscribers} subscribers of one tenant, {rounds} renames each\n");
    println!("| target | deliveries | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for target in targets.split(',') {
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
        let mut r = run(&stack, (&ws, &http, secret), "fanout", subscribers, rounds).await;
        r.latencies_ms.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| r.latencies_ms[((r.latencies_ms.len() as f64 * p) as usize).min(r.latencies_ms.len() - 1)];
        println!(
            "| {target} | {}/{} | {:.1} | {:.1} | {:.1} |",
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
    stack.stop().await;
}
