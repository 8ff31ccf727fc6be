//! A tenant read by id at 50 concurrent clients: straight to the subgraph, and through each router, in one
//! run, so the routers' overhead is measured against the same subgraph under the same conditions.
//!
//!     cargo bench -p e2e --bench tenant_read
//!
//! Every request asks for the next of 200 tenants (a counter shared by all clients), so no two requests in
//! flight are the same and Hive Router's in-flight deduplication cannot collapse them; the `hive-dedupe`
//! target sends one id from every client, to show what deduplication does on its own.
//!
//! `hive` and `apollo` are the public endpoint (the edge in front of the router); `hive-no-edge` and
//! `apollo-no-edge` the router alone, to show what the edge adds.
//!
//! BENCH_SECONDS (default 10) per target; BENCH_TARGETS (default
//! `direct,hive-no-edge,hive,apollo-no-edge,apollo,hive-dedupe`) picks targets, so `BENCH_TARGETS=direct` needs no router installed; BENCH_CLIENTS (default 50) sets the
//! concurrency (1 measures a router's added latency without queueing). Client, routers and subgraph share
//! the cores.

use e2e as harness;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

struct Stats {
    rps: f64,
    p50: f64,
    p99: f64,
    n: usize,
    /// CPU time this process (clients, subgraphs and, where it is in front, the edge) spent per request,
    /// in microseconds: the edge's own cost is the difference between a target and its `-no-edge` twin.
    cpu_us: f64,
}

/// CPU time (user and system) this process has used so far, in microseconds (Linux: `/proc/self/stat`,
/// in clock ticks of 10 ms).
fn process_cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) * 10_000.0
}

/// How many tenants the requests cycle through: more than can be in flight at once.
const TENANTS: usize = 200;

/// The request body for the `n`th request: the next tenant, or always the first when `same`.
fn body(n: usize, same: bool) -> serde_json::Value {
    let id = format!("bench-{}", if same { 0 } else { n % TENANTS });
    json!({ "query": "query Tenant($id: ID!) { tenant(id: $id) { id displayName status region } }", "variables": { "id": id } })
}

#[allow(clippy::too_many_arguments)]
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    secret: Option<&str>,
    seconds: u64,
    clients: usize,
    same: bool,
) -> Stats {
    let counter = Arc::new(AtomicUsize::new(0));
    let send = |http: reqwest::Client, url: String, token: String, secret: Option<String>, body: serde_json::Value| async move {
        let mut req = http.post(&url).bearer_auth(&token).json(&body);
        if let Some(s) = &secret {
            req = req.header(kernel::server::ROUTER_SECRET_HEADER, s);
        }
        let v: serde_json::Value = req.send().await.expect("request").json().await.expect("json");
        assert!(v.get("errors").is_none(), "{v}");
    };
    for n in 0..200 {
        send(http.clone(), url.into(), token.into(), secret.map(str::to_owned), body(n, same)).await;
        // warm-up
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_started = process_cpu_us();
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, token, secret, counter) =
                (http.clone(), url.to_owned(), token.to_owned(), secret.map(str::to_owned), counter.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let b = body(counter.fetch_add(1, Ordering::Relaxed), same);
                    let t = Instant::now();
                    send(http.clone(), url.clone(), token.clone(), secret.clone(), b).await;
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
    let cpu_us = (process_cpu_us() - cpu_started) / lat.len().max(1) as f64;
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Stats { rps: lat.len() as f64 / elapsed, p50: pct(0.50), p99: pct(0.99), n: lat.len(), cpu_us }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let targets = std::env::var("BENCH_TARGETS")
        .unwrap_or_else(|_| "direct,hive-no-edge,hive,apollo-no-edge,apollo,hive-dedupe".into());
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
    let mut setup = vec![
        r#"mutation { createEdition(input: { id: "pro", name: "Pro" }) { id } }"#.to_owned(),
        r#"mutation { publishEdition(id: "pro", version: 1) { id } }"#.to_owned(),
    ];
    setup.extend((0..TENANTS).map(|i| {
        format!(
            r#"mutation {{ provisionTenant(input: {{ id: "bench-{i}", displayName: "Bench {i}", region: "eu-west", editionId: "pro" }}) {{ id }} }}"#
        )
    }));
    for q in &setup {
        let v: serde_json::Value = direct(q).send().await.unwrap().json().await.unwrap();
        assert!(v.get("errors").is_none(), "{v}");
    }
    // A platform operator reads any of the tenants (each through an RLS transaction and a DataLoader).
    let token = op.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();

    println!("{clients} concurrent clients, {seconds} s per target\n");
    println!("| target | requests/s | p50 ms | p99 ms | requests | this process's CPU µs/request |");
    println!("|---|---|---|---|---|---|");
    let mut baseline: Option<Stats> = None;
    for target in targets.split(',') {
        let router = match target {
            "direct" => None,
            "hive" | "hive-dedupe" | "hive-no-edge" => Some(stack.hive().await),
            "apollo" | "apollo-no-edge" => Some(stack.apollo().await),
            other => panic!("unknown target {other}"),
        };
        let same = target == "hive-dedupe";
        let s = match &router {
            None => load(&http, &stack.subgraph_url, &token, Some(&stack.secret), seconds, clients, same).await,
            // The router alone, without the edge in front: what the edge adds.
            Some(r) if target.ends_with("-no-edge") => {
                load(&http, &r.router_url, &token, None, seconds, clients, same).await
            }
            Some(r) => load(&http, &r.url, &token, None, seconds, clients, same).await,
        };
        let vs = match &baseline {
            Some(b) => format!(" (×{:.2} rps, +{:.2} ms p50 vs direct)", s.rps / b.rps, s.p50 - b.p50),
            None => String::new(),
        };
        println!("| {target} | {:.0} | {:.2} | {:.2} | {}{vs} | {:.0} |", s.rps, s.p50, s.p99, s.n, s.cpu_us);
        if target == "direct" {
            baseline = Some(s);
        }
        if let Some(r) = router {
            r.stop().await;
        }
    }
    stack.stop().await;
}
