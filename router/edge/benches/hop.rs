//! What one hop through the edge costs, against a bare proxy and no hop at all, with an upstream that
//! costs next to nothing — so the edge's own CPU per request is not lost in a router's and a subgraph's.
//!
//!     cargo bench -p edge --bench hop
//!
//! In one process, on one runtime: an upstream that reads the request and answers a fixed GraphQL answer
//! (the size of `tenant_read`'s), and in front of it
//!
//! - `direct`: no hop — the clients call the upstream;
//! - `bare-reqwest`, `bare-hyper`: the least a proxy does, the baselines for a hop (read the body, post it
//!   with reqwest or with hyper's client, stream the answer back; no checks), on the benchmark's runtime;
//! - `edge-shared-runtime`: the edge (strict reading, document check, re-encoding) on the benchmark's
//!   multi-threaded runtime, as the end-to-end tests run it;
//! - `edge`: the edge as its binary runs it ([`edge::start`]: a single-threaded runtime per thread), with
//!   one thread.
//!
//! For each: requests per second and the CPU time the process spent per request; a hop's cost is its CPU
//! per request less `direct`'s. BENCH_SECONDS (default 5) per target, BENCH_ROUNDS (default 3) rounds with
//! the targets alternating (one run against the next differs on a shared machine), BENCH_CLIENTS
//! (default 50).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

const ANSWER: &str =
    r#"{"data":{"tenant":{"id":"bench-17","displayName":"Bench 17","status":"ACTIVE","region":"eu-west"}}}"#;

/// CPU time (user and system) this process has used so far, in microseconds (`/proc/self/stat`, in
/// clock ticks of 10 ms).
fn process_cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10_000.0
}

async fn listen(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(kernel::server::serve(listener, app, stop));
    addr
}

/// The least a proxy does: the body read whole, posted upstream, the answer streamed back.
async fn bare_proxy(
    State((http, upstream)): State<(reqwest::Client, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut req = http.post(&upstream).body(body);
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let answer = req.header(header::CONTENT_TYPE, "application/json").send().await.unwrap();
    let status = answer.status();
    (status, axum::body::Body::from_stream(answer.bytes_stream()))
}

type HyperClient =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, axum::body::Body>;

/// The same, with hyper's client in place of reqwest's: the body goes on as it came, the answer comes
/// back as it streams.
async fn bare_hyper(
    State((http, upstream)): State<(HyperClient, axum::http::Uri)>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (mut parts, body) = request.into_parts();
    parts.uri = upstream;
    let answer = http.request(axum::http::Request::from_parts(parts, body)).await.unwrap();
    answer.map(axum::body::Body::new)
}

struct Stats {
    rps: f64,
    cpu_us: f64,
}

async fn load(http: &reqwest::Client, url: &str, seconds: u64, clients: usize) -> Stats {
    let counter = Arc::new(AtomicUsize::new(0));
    let send = |http: reqwest::Client, url: String, n: usize| async move {
        let body = serde_json::json!({
            "query": "query Tenant($id: ID!) { tenant(id: $id) { id displayName status region } }",
            "variables": { "id": format!("bench-{}", n % 200) },
        });
        let v: serde_json::Value =
            http.post(&url).bearer_auth("a-token").json(&body).send().await.unwrap().json().await.unwrap();
        assert!(v.get("data").is_some(), "{v}");
    };
    for n in 0..200 {
        send(http.clone(), url.to_owned(), n).await;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (started, cpu_started) = (Instant::now(), process_cpu_us());
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, counter) = (http.clone(), url.to_owned(), counter.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    send(http.clone(), url.clone(), counter.fetch_add(1, Ordering::Relaxed)).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut requests = 0;
    for t in tasks {
        requests += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    Stats { rps: requests as f64 / elapsed, cpu_us: (process_cpu_us() - cpu_started) / requests.max(1) as f64 }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let clients: usize = std::env::var("BENCH_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);

    let upstream = listen(
        Router::new()
            .route("/graphql", post(|_body: Bytes| async { ([(header::CONTENT_TYPE, "application/json")], ANSWER) })),
    )
    .await;
    let upstream_url = format!("http://{upstream}/graphql");
    let proxy_http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let bare =
        listen(Router::new().route("/graphql", post(bare_proxy)).with_state((proxy_http, upstream_url.clone()))).await;
    let hyper_http: HyperClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let bare_hyper_addr = listen(
        Router::new().route("/graphql", post(bare_hyper)).with_state((hyper_http, upstream_url.parse().unwrap())),
    )
    .await;
    // The edge as the binary runs it (`edge::start`): here one thread with a runtime of its own.
    let own_stop = tokio_util::sync::CancellationToken::new();
    let own_cfg = edge::Config::new("127.0.0.1:0".parse().unwrap(), format!("http://{upstream}"));
    let own_addr = edge::start(own_cfg, 1, own_stop.clone()).unwrap().addr;
    let edge_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let edge_addr = edge_listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(edge::serve(edge::Config::new(edge_addr, format!("http://{upstream}")), edge_listener, stop.clone()));

    let targets = [
        ("direct", upstream_url),
        ("bare-reqwest", format!("http://{bare}/graphql")),
        ("bare-hyper", format!("http://{bare_hyper_addr}/graphql")),
        ("edge-shared-runtime", format!("http://{edge_addr}/graphql")),
        ("edge", format!("http://{own_addr}/graphql")),
    ];
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let mut runs: Vec<Vec<Stats>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, (name, url)) in targets.iter().enumerate() {
            let s = load(&http, url, seconds, clients).await;
            eprintln!("round {round} {name}: {:.0} rps, {:.0} µs CPU/request", s.rps, s.cpu_us);
            runs[i].push(s);
        }
    }
    let mean = |v: &[Stats], f: fn(&Stats) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let direct_cpu = mean(&runs[0], |s| s.cpu_us);
    println!("\n{clients} clients, {rounds} rounds of {seconds} s per target, means:\n");
    println!("| target | requests/s | CPU µs/request | the hop's CPU µs/request |");
    println!("|---|---|---|---|");
    for ((name, _), v) in targets.iter().zip(&runs) {
        let cpu = mean(v, |s| s.cpu_us);
        let hop = if *name == "direct" { "—".to_owned() } else { format!("{:.0}", cpu - direct_cpu) };
        println!("| {name} | {:.0} | {cpu:.0} | {hop} |", mean(v, |s| s.rps));
    }
    stop.cancel();
    own_stop.cancel();
}
