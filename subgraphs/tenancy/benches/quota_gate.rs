//! Quota check-and-increment through Redis.
//!
//!     cargo bench -p tenancy --bench quota_gate        (Redis on 127.0.0.1:6379, or REDIS_URL)
//!
//! 64 concurrent callers on one multiplexed connection run the atomic Lua check-and-increment against 1,000
//! counters (one per simulated tenant) for BENCH_SECONDS (default 10). Prints operations per second and
//! latency percentiles. Target: at least 20,000 per second.

use std::time::{Duration, Instant};

use tenancy::quotas::{Gate, QuotaGate};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let cache = kernel::cache::Cache::connect(&url.into(), "cp-bench").await?;
    let gate = QuotaGate::default();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let keys: Vec<String> = (0..1000).map(|i| format!("cp:bench-{i}:quota:api-calls:{run}")).collect();
    let mut conn = cache.connection();
    for k in &keys {
        gate.seed(&mut conn, k, 0, Duration::from_secs(600)).await?;
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let (gate, keys, mut conn) = (gate.clone(), keys.clone(), cache.connection());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let g = gate.check_and_increment(&mut conn, &keys[i % keys.len()], 1, i64::MAX / 2).await.unwrap();
                    assert!(matches!(g, Gate::Granted(_)));
                    lat.push(t.elapsed().as_micros() as u32);
                    i += 64;
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u32> = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "quota_gate: {:.0} check-and-increments/s, p50 {:.2} ms, p99 {:.2} ms ({} ops, 64 callers, {seconds} s)",
        lat.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        lat.len()
    );
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    Ok(())
}
