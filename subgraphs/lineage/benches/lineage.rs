//! Lineage at size, each measurement beside a bare baseline in the same run:
//!
//!     cargo bench -p lineage --bench lineage        (PostgreSQL, Redis and RabbitMQ as for the tests)
//!
//! BENCH_SAMPLES (default 300) sets the traversal starts; BENCH_SEED (default 1) the generated graph;
//! BENCH_UPLOAD_MIB (default 256) the body; BENCH_EVENTS (default 5,000) the OpenLineage events.
//!
//! 1. **Depth-20 upstream traversal** on a generated lineage graph of 1,000,000 edges shaped like real
//!    lineage: 500 pipelines of 50 generations (chains up to 50 long) × 20 artifact versions, each version
//!    derived from 1–3 inputs of the generation before (97 %) or of another pipeline's earlier generation
//!    (3 %), bulk-loaded as the superuser with `COPY`-speed `INSERT … SELECT unnest(…)`, then `VACUUM
//!    ANALYZE`. From random versions: `lineage(nodeId, depth: 20, direction: UPSTREAM) { nodes { id depth } }`
//!    through the subgraph (a GraphQL request in process: token check, GraphQL, an RLS transaction) vs
//!    `graph::traverse` (the engine on a tenant transaction) vs a bare loop of the same per-layer SQL with a
//!    `HashSet` (no engine), interleaved. Reported by answer size: p99 for answers up to 1,000 nodes
//!    (target < 50 ms), nodes a second beyond.
//! 2. **Upload of a 256 MiB body** through lineage's HTTP route (served on a local port, streamed by
//!    reqwest; sha256 as it streams, multipart into the local folder store) vs a bare `object_store`
//!    multipart put of the same bytes into the same store (aim ≥ 0.8×), each with this process's peak heap
//!    above where it started (a counting global allocator: resident size does not fall when memory is
//!    freed, so it cannot tell two runs in one process apart). Both send one pre-made MiB again and again.
//! 3. **OpenLineage ingestion**: `POST /api/v1/lineage` RunEvents (one input, one output, a schema facet)
//!    from 64 concurrent clients vs the same events handed to the group-commit writer bare with the same
//!    concurrency (no HTTP, no token check): events a second (aim ≥ 5,000).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kernel::db::tenant_tx;
use kernel::TenantId;
use lineage::graph::Direction;
use object_store::ObjectStoreExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use test_support::bench::Stats;

type App = test_support::TestApp<lineage::State>;

/// The system allocator, counting: bytes allocated now and the most since the last [`Counting::reset`] — a
/// process's peak heap, unlike its resident size, which does not fall when memory is freed.
struct Counting;

static NOW: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let now = NOW.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        NOW.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

impl Counting {
    /// Starts measuring the peak from now; the bytes allocated now.
    fn reset() -> usize {
        let now = NOW.load(std::sync::atomic::Ordering::Relaxed);
        PEAK.store(now, std::sync::atomic::Ordering::Relaxed);
        now
    }
    /// The most allocated since [`Counting::reset`], above what was allocated then.
    fn peak_above(start: usize) -> usize {
        PEAK.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(start)
    }
}

const PIPELINES: usize = 500;
const GENERATIONS: usize = 50;
const WIDTH: usize = 20;

fn node(p: usize, g: usize, i: usize) -> String {
    format!("artifact:p{p}-g{g}-{i}@1.0.0")
}

/// Loads the graph; the number of edges.
async fn load(admin: &sqlx::PgPool, rng: &mut StdRng, tenant: &str) -> usize {
    let mut ids = Vec::with_capacity(PIPELINES * GENERATIONS * WIDTH);
    for p in 0..PIPELINES {
        for g in 0..GENERATIONS {
            for i in 0..WIDTH {
                ids.push(node(p, g, i));
            }
        }
    }
    for chunk in ids.chunks(50_000) {
        sqlx::query(
            "INSERT INTO lineage_nodes (tenant_id, node_id, kind, label)
             SELECT $1, id, 'artifact', split_part(substr(id, 10), '@', 1) FROM unnest($2::text[]) AS id",
        )
        .bind(tenant)
        .bind(chunk)
        .execute(admin)
        .await
        .unwrap();
    }
    let mut edges: Vec<(String, String)> = Vec::new();
    let mut distinct: HashSet<(String, String)> = HashSet::new();
    let target = 1_000_000;
    'fill: for p in 0..PIPELINES {
        for g in 1..GENERATIONS {
            for i in 0..WIDTH {
                let to = node(p, g, i);
                let mut seen = HashSet::new();
                for _ in 0..rng.gen_range(1..=3) {
                    let from = if rng.gen_bool(0.03) {
                        node(rng.gen_range(0..PIPELINES), rng.gen_range(0..g), rng.gen_range(0..WIDTH))
                    } else {
                        node(p, g - 1, rng.gen_range(0..WIDTH))
                    };
                    if seen.insert(from.clone()) && distinct.insert((from.clone(), to.clone())) {
                        edges.push((from, to.clone()));
                    }
                }
                if edges.len() >= target {
                    break 'fill;
                }
            }
        }
    }
    // Top up to exactly a million with extra inputs from the generation before.
    while edges.len() < target {
        let (p, g, i) = (rng.gen_range(0..PIPELINES), rng.gen_range(1..GENERATIONS), rng.gen_range(0..WIDTH));
        let edge = (node(p, g - 1, rng.gen_range(0..WIDTH)), node(p, g, i));
        if distinct.insert(edge.clone()) {
            edges.push(edge);
        }
    }
    for chunk in edges.chunks(50_000) {
        let (from, to): (Vec<&str>, Vec<&str>) = chunk.iter().map(|(f, t)| (f.as_str(), t.as_str())).unzip();
        sqlx::query(
            "INSERT INTO lineage_edges (tenant_id, from_node, to_node, kind)
             SELECT $1, f, t, 'DERIVED' FROM unnest($2::text[], $3::text[]) AS e(f, t) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&from)
        .bind(&to)
        .execute(admin)
        .await
        .unwrap();
    }
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM lineage_edges WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(admin)
        .await
        .unwrap() as usize
}

/// The same per-layer SQL as the engine's, in a plain loop: the floor.
async fn bare_upstream(pool: &sqlx::PgPool, tenant: &TenantId, start: &str, depth: u32) -> usize {
    let mut tx = tenant_tx(pool, tenant).await.unwrap();
    let mut seen: HashSet<String> = HashSet::from([start.to_owned()]);
    let mut frontier = vec![start.to_owned()];
    let mut reached = 0;
    for _ in 0..depth {
        if frontier.is_empty() {
            break;
        }
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT from_node FROM lineage_edges WHERE tenant_id = $1 AND to_node = ANY($2)")
                .bind(tenant.as_str())
                .bind(&frontier)
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        frontier = rows.into_iter().map(|r| r.0).filter(|n| seen.insert(n.clone())).collect();
        reached += frontier.len();
    }
    tx.commit().await.unwrap();
    reached
}

fn chunk(i: usize) -> Vec<u8> {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..1 << 20).map(|j: usize| (seed.rotate_left((j % 64) as u32) as u8) ^ (j as u8)).collect()
}

#[tokio::main]
async fn main() {
    let samples: usize = std::env::var("BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed: u64 = std::env::var("BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mib: usize = std::env::var("BENCH_UPLOAD_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let events: usize = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let builder = App::builder();
    let store_dir = builder.dir.join("artifact-bodies");
    let config = lineage::Config {
        artifact_store_dir: store_dir.display().to_string(),
        artifact_sweep_interval_secs: 0,
        artifact_retention_interval_secs: 0,
        artifact_max_body_bytes: 8 << 30,
        ..Default::default()
    };
    let app = builder.start::<lineage::State>(&config).await;
    let admin = app.admin_pool().await;
    let pool = app.pool().clone();
    let mut rng = StdRng::seed_from_u64(seed);

    // 1. Traversal.
    let t = Instant::now();
    let edges = load(&admin, &mut rng, "bench").await;
    sqlx::query("VACUUM ANALYZE").execute(&admin).await.unwrap();
    println!(
        "generated in {:.1} s: {} nodes, {edges} edges",
        t.elapsed().as_secs_f64(),
        PIPELINES * GENERATIONS * WIDTH
    );
    let tenant = TenantId::parse("bench").unwrap();
    let token = app.tenant_token("bench", &["lineage:read", "lineage:write"]);
    const Q: &str =
        "query($n: ID!) { lineage(nodeId: $n, depth: 20, direction: UPSTREAM) { truncated nodes { id depth } } }";
    let (mut small, mut large) = ((Stats::default(), Stats::default(), Stats::default()), Vec::new());
    let mut sizes = Vec::new();
    for k in 0..samples {
        let start = node(rng.gen_range(0..PIPELINES), rng.gen_range(0..GENERATIONS), rng.gen_range(0..WIDTH));
        let mut took = [Duration::ZERO; 3];
        let mut n = 0;
        for j in 0..3 {
            let s = Instant::now();
            match (j + k) % 3 {
                0 => {
                    let v = app.gql(&token, Q, json!({ "n": start })).await;
                    assert!(v.get("errors").is_none(), "{v}");
                    n = v["data"]["lineage"]["nodes"].as_array().unwrap().len();
                    took[0] = s.elapsed();
                }
                1 => {
                    let mut tx = tenant_tx(&pool, &tenant).await.unwrap();
                    let r = lineage::graph::traverse(&mut tx, &tenant, &start, Direction::Upstream, 20).await.unwrap();
                    tx.commit().await.unwrap();
                    assert!(!r.truncated);
                    took[1] = s.elapsed();
                }
                _ => {
                    bare_upstream(&pool, &tenant, &start, 20).await;
                    took[2] = s.elapsed();
                }
            }
        }
        sizes.push(n);
        if n <= 1_000 {
            small.0.push(took[0]);
            small.1.push(took[1]);
            small.2.push(took[2]);
        } else {
            large.push((n, took));
        }
    }
    sizes.sort_unstable();
    println!("\n## traversal: depth-20 upstream, {samples} starts");
    println!(
        "answer sizes: median {}, p90 {}, max {}; {} of {samples} at most 1,000 nodes",
        sizes[sizes.len() / 2],
        sizes[sizes.len() * 9 / 10],
        sizes.last().unwrap(),
        small.0 .0.len()
    );
    println!(
        "| answers ≤ 1,000 nodes | subgraph p50 / p99 / mean ms | engine (graph::traverse) | bare per-layer SQL |"
    );
    println!("|---|---|---|---|");
    println!("| {} starts | {} | {} | {} |", small.0 .0.len(), small.0.cell(), small.1.cell(), small.2.cell());
    if !large.is_empty() {
        let rate = |i: usize| {
            let mut r: Vec<f64> = large.iter().map(|(n, t)| *n as f64 / t[i].as_secs_f64()).collect();
            r.sort_by(f64::total_cmp);
            (r[r.len() / 2], r[(r.len() / 100).min(r.len() - 1)])
        };
        let (s, e, b) = (rate(0), rate(1), rate(2));
        println!(
            "larger answers ({} starts, nodes a second, median / slowest 1 %): subgraph {:.0} / {:.0}, engine {:.0} / {:.0}, bare {:.0} / {:.0}",
            large.len(), s.0, s.1, e.0, e.1, b.0, b.1
        );
    }

    // 2. Upload.
    let base = app.serve().await;
    let body_len = mib << 20;
    // One pre-made MiB sent `mib` times (a cheap clone each): neither side pays for making the bytes.
    let block = bytes::Bytes::from(chunk(7));
    let mut h = Sha256::new();
    for _ in 0..mib {
        h.update(&block);
    }
    let hash = format!("sha256:{}", hex::encode(h.finalize()));
    let http = reqwest::Client::new();
    let secret = app.config.router_secret.expose_secret().to_owned();
    // Rounds, each after `sync` (so neither pays for the other's dirty pages being written back), the
    // route and the bare put in turn; medians reported.
    let rounds = 3;
    let (mut routes, mut bares, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut route_peak, mut bare_peak) = (0usize, 0usize);
    for r in 0..rounds {
        let id = format!("big-{r}");
        let reg = "mutation($id: String!) { registerArtifact(input: { id: $id, artifactType: \"model\", name: $id }) { id } }";
        assert!(app.gql(&token, reg, json!({ "id": id })).await.get("errors").is_none());
        let rec = "mutation($id: ID!, $h: String!) { recordArtifactVersion(input: { artifactId: $id, version: \"1.0.0\", contentHash: $h }) { version } }";
        assert!(app.gql(&token, rec, json!({ "id": id, "h": hash })).await.get("errors").is_none());
        let _ = std::process::Command::new("sync").status();
        let before = Counting::reset();
        let s = Instant::now();
        let sent = block.clone();
        let stream = futures::stream::iter(0..mib).map(move |_| Ok::<_, std::io::Error>(sent.clone()));
        let resp = http
            .put(format!("{base}/api/v1/artifacts/{id}/versions/1.0.0/body"))
            .bearer_auth(&token)
            .header(kernel::server::ROUTER_SECRET_HEADER, &secret)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{answer}");
        routes.push(s.elapsed());
        route_peak = route_peak.max(Counting::peak_above(before));
        // Bare: the same bytes into the same store.
        let _ = std::process::Command::new("sync").status();
        let path = object_store::path::Path::from(format!("bench/bare-put-{r}"));
        let before = Counting::reset();
        let s = Instant::now();
        let upload = app.state.bodies.blob.store.put_multipart(&path).await.unwrap();
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, lineage::bodies::PART);
        for _ in 0..mib {
            w.wait_for_capacity(lineage::bodies::IN_FLIGHT).await.unwrap();
            w.put(block.clone());
        }
        w.finish().await.unwrap();
        bares.push(s.elapsed());
        bare_peak = bare_peak.max(Counting::peak_above(before));
        let _ = app.state.bodies.blob.store.delete(&path).await;
        // The hash alone, in process: what the route must do that the bare put does not.
        let s = Instant::now();
        let mut h = Sha256::new();
        for _ in 0..mib {
            h.update(&block);
        }
        std::hint::black_box(h.finalize());
        hashes.push(s.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (route, bare, hashing) = (median(&mut routes), median(&mut bares), median(&mut hashes));
    let mibps = |d: Duration| mib as f64 / d.as_secs_f64();
    println!("\n## upload of a {mib} MiB body ({body_len} bytes), median of {rounds} rounds");
    println!("| path | MiB/s | peak heap above start |");
    println!("|---|---|---|");
    println!(
        "| PUT /api/v1/…/body (HTTP, sha256, claims, record) | {:.0} | {:.1} MiB |",
        mibps(route),
        route_peak as f64 / 1048576.0
    );
    println!("| bare object_store multipart put | {:.0} | {:.1} MiB |", mibps(bare), bare_peak as f64 / 1048576.0);
    println!("| sha256 alone, in process | {:.0} | |", mibps(hashing));
    println!(
        "ratio ×{:.2} (aim ≥ 0.8); each round route / bare ms: {:?} / {:?}",
        bare.as_secs_f64() / route.as_secs_f64(),
        routes.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        bares.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );

    // 3. OpenLineage ingestion.
    let event = |i: usize| {
        json!({
            "eventType": "COMPLETE", "eventTime": "2026-12-07T10:00:00Z", "producer": "https://example.com/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": { "runId": uuid::Uuid::now_v7() }, "job": { "namespace": "bench", "name": format!("job-{}", i % 100) },
            "inputs": [{ "namespace": "postgres://db", "name": format!("in-{}", i % 1000), "facets": { "schema": {
                "_producer": "https://example.com/bench", "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
                "fields": [{ "name": "id", "type": "BIGINT" }, { "name": "amount", "type": "NUMERIC" }] } } }],
            "outputs": [{ "namespace": "postgres://db", "name": format!("out-{}", i % 1000) }]
        })
    };
    let concurrency = 64;
    let bodies: Vec<String> = (0..events).map(|i| event(i).to_string()).collect();
    let s = Instant::now();
    futures::stream::iter(bodies)
        .map(|b| {
            let (http, token, secret, base) = (&http, &token, &secret, &base);
            async move {
                let r = http
                    .post(format!("{base}/api/v1/lineage"))
                    .bearer_auth(token)
                    .header(kernel::server::ROUTER_SECRET_HEADER, secret)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    let routed = s.elapsed();
    let raws: Vec<Value> = (0..events).map(|i| event(i + events)).collect();
    let state = app.state.clone();
    let s = Instant::now();
    futures::stream::iter(raws)
        .map(|raw| {
            let (state, tenant) = (Arc::clone(&state), tenant.clone());
            async move {
                let plan = lineage::openlineage::plan(&lineage::openlineage::read(&raw).unwrap());
                let meta = kernel::envelope::EventMeta::system("bench", "bench");
                let submitted = lineage::openlineage::Submitted::new(tenant, plan, raw, meta);
                state.openlineage.submit(submitted).await.unwrap();
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    let bare = s.elapsed();
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("\n## OpenLineage ingestion, {events} RunEvents, {concurrency} concurrent");
    println!("| path | events/s |");
    println!("|---|---|");
    println!("| POST /api/v1/lineage (HTTP, token, JSON, spec check, group commit) | {:.0} |", rate(routed));
    println!("| bare: the same events handed to the group-commit writer (no HTTP) | {:.0} |", rate(bare));
    app.cleanup().await;
}
