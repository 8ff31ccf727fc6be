//! A tenant read by id at 50 concurrent clients: straight to the subgraph, and through each router, in one
//! run, so the routers' overhead is measured against the same subgraph under the same conditions.
//!
//!     cargo bench -p e2e --bench tenant_read
//!
//! BENCH_SECONDS (default 10) per target; BENCH_TARGETS (default `direct,hive,apollo`) picks targets, so
//! `BENCH_TARGETS=direct` needs no router installed; BENCH_CLIENTS (default 50) sets the concurrency (1
//! measures a router's added latency without queueing). Client, routers and subgraph share the cores.

use e2e as harness;

use std::time::{Duration, Instant};

use serde_json::json;

struct Stats {
    rps: f64,
    p50: f64,
    p99: f64,
    n: usize,
}

async fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    secret: Option<&str>,
    seconds: u64,
    clients: usize,
) -> Stats {
    let body = json!({ "query": "query Tenant($id: ID!) { tenant(id: $id) { id displayName status region } }", "variables": { "id": "bench" } });
    let send = |http: reqwest::Client, url: String, token: String, secret: Option<String>, body: serde_json::Value| async move {
        let mut req = http.post(&url).bearer_auth(&token).json(&body);
        if let Some(s) = &secret {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, s);
        }
        let v: serde_json::Value = req.send().await.expect("request").json().await.expect("json");
        assert!(v.get("errors").is_none(), "{v}");
    };
    for _ in 0..200 {
        send(http.clone(), url.into(), token.into(), secret.map(str::to_owned), body.clone()).await;
        // warm-up
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, token, secret, body) =
                (http.clone(), url.to_owned(), token.to_owned(), secret.map(str::to_owned), body.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    send(http.clone(), url.clone(), token.clone(), secret.clone(), body.clone()).await;
                    lat.push(t.elapsed().as_micros() as u32);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for c in clients {
        lat.extend(c.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Stats { rps: lat.len() as f64 / elapsed, p50: pct(0.50), p99: pct(0.99), n: lat.len() }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let targets = std::env::var("BENCH_TARGETS").unwrap_or_else(|_| "direct,hive,apollo".into());
    let clients: usize = std::env::var("BENCH_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let stack = harness::Stack::start().await;
    let op = stack.operator_token();
    let direct = |q: &str| {
        stack
            .http
            .post(&stack.subgraph_url)
            .bearer_auth(&op)
            .header(kernel::server::ROUTER_SECRET_HEADER, &stack.secret)
            .json(&json!({ "query": q }))
    };
    for q in [
        r#"mutation { createEdition(input: { id: "pro", name: "Pro" }) { id } }"#,
        r#"mutation { publishEdition(id: "pro", version: 1) { id } }"#,
        r#"mutation { provisionTenant(input: { id: "bench", displayName: "Bench", region: "eu-west", editionId: "pro" }) { id } }"#,
    ] {
        let v: serde_json::Value = direct(q).send().await.unwrap().json().await.unwrap();
        assert!(v.get("errors").is_none(), "{v}");
    }
    let token = stack.signer.mint(
        harness::ISSUER,
        harness::AUDIENCE,
        "bench",
        Some("bench"),
        &["tenancy:read"],
        Duration::from_secs(3600),
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();

    println!("{clients} concurrent clients, {seconds} s per target\n");
    println!("| target | requests/s | p50 ms | p99 ms | requests |");
    println!("|---|---|---|---|---|");
    let mut baseline: Option<Stats> = None;
    for target in targets.split(',') {
        let router = match target {
            "direct" => None,
            "hive" => Some(stack.hive().await),
            "apollo" => Some(stack.apollo().await),
            other => panic!("unknown target {other}"),
        };
        let s = match &router {
            None => load(&http, &stack.subgraph_url, &token, Some(&stack.secret), seconds, clients).await,
            Some(r) => load(&http, &r.url, &token, None, seconds, clients).await,
        };
        let vs = match &baseline {
            Some(b) => format!(" (×{:.2} rps, +{:.2} ms p50 vs direct)", s.rps / b.rps, s.p50 - b.p50),
            None => String::new(),
        };
        println!("| {target} | {:.0} | {:.2} | {:.2} | {}{vs} |", s.rps, s.p50, s.p99, s.n);
        if target == "direct" {
            baseline = Some(s);
        }
        if let Some(r) = router {
            r.stop().await;
        }
    }
    stack.stop().await;
}
