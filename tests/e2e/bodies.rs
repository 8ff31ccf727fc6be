//! Artifact bodies through the public endpoint, as the README shows them: the version recorded through
//! the router, its body uploaded and downloaded over HTTP through the edge's pass route to lineage, with
//! the same bearer token. The body is larger than one request's memory budget (lineage holds at most
//! `(IN_FLIGHT + 1) × PART` of an upload; the edge a few chunks), and this process's peak memory — the
//! edge, lineage and the client all run in it — grows by far less than the body.

use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use e2e::Stack;

/// The body: 160 MiB, made as it is sent (the client never holds it either).
const SIZE: usize = 160 << 20;
const CHUNK: usize = 1 << 20;

fn chunk(i: usize) -> Vec<u8> {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..CHUNK).map(|j| (seed.rotate_left((j % 64) as u32) as u8) ^ (j as u8)).collect()
}

fn body() -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(0..SIZE / CHUNK).map(|i| Ok(chunk(i)))
}

fn sha256_of_body() -> String {
    let mut h = Sha256::new();
    for i in 0..SIZE / CHUNK {
        h.update(chunk(i));
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// This process's peak resident memory since the last [`reset_peak`], in bytes (Linux's VmHWM).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

fn current_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Starts measuring the peak again from the current resident memory.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak (Linux 4.0+)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_larger_than_a_requests_memory_budget_goes_up_and_down_through_the_public_endpoint() {
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("bodies-{}", stack.id);
    let token = stack.token(&tenant, "writer", &["lineage:read", "lineage:write"]);
    let hash = sha256_of_body();
    stack
        .ok(&hive.url, &token, "mutation { registerArtifact(input: { id: \"dataset\", artifactType: \"dataset\", name: \"Training set\" }) { id } }", json!({}))
        .await;
    let v = stack
        .ok(
            &hive.url,
            &token,
            "mutation($h: String!) { recordArtifactVersion(input: { artifactId: \"dataset\", version: \"1.0.0\", contentHash: $h }) { body { path } } }",
            json!({ "h": hash }),
        )
        .await;
    let path = v["recordArtifactVersion"]["body"]["path"].as_str().unwrap().to_owned();
    let url = hive.url.replace("/graphql", &path);
    let http = reqwest::Client::new();

    // Up, streamed: the peak grows by far less than the body.
    reset_peak();
    let before = current_rss();
    let resp = http.put(&url).bearer_auth(&token).body(reqwest::Body::wrap_stream(body())).send().await.unwrap();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["size"].as_u64(), answer["storedNow"].as_bool()), (Some(SIZE as u64), Some(true)));
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < (SIZE / 3) as u64, "uploading {SIZE} bytes grew the peak by {grew} bytes");

    // Down, streamed and hashed as it comes.
    reset_peak();
    let before = current_rss();
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], format!("\"{hash}\"").as_str());
    let mut h = Sha256::new();
    let mut size = 0;
    let mut stream = resp.bytes_stream();
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.unwrap();
        size += bytes.len();
        h.update(&bytes);
    }
    assert_eq!((size, format!("sha256:{}", hex::encode(h.finalize()))), (SIZE, hash.clone()));
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < (SIZE / 3) as u64, "downloading {SIZE} bytes grew the peak by {grew} bytes");

    // The edge's own checks: no token is refused by lineage; a client's router secret is not passed on.
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http.get(&url).header(kernel::server::ROUTER_SECRET_HEADER, "forged").send().await.unwrap();
    assert_eq!(resp.status(), 401, "the edge puts its own secret in");
    let resp = http.get(hive.url.replace("/graphql", "/api/v2/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404, "only routed paths are passed");

    // The record, through the router.
    let v = stack
        .ok(&hive.url, &token, "{ artifact(id: \"dataset\") { latest { version } versions(first: 1) { edges { node { body { state size } } } } } }", json!({}))
        .await;
    assert_eq!(
        v["artifact"]["versions"]["edges"][0]["node"]["body"],
        json!({ "state": "STORED", "size": SIZE.to_string() })
    );
    hive.stop().await;
    stack.stop().await;
}
