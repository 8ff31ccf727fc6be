//! In-process feature-flag evaluation throughput on one core.
//!
//!     cargo bench -p tenancy --bench flag_eval
//!
//! Evaluates a 50-flag set for 10,000 tenants across three editions, one thread, and prints evaluations per
//! second. Target: at least 1,000,000 per second.

use std::hint::black_box;
use std::time::Instant;

use tenancy::flags::FlagSet;
use tenancy::model::FeatureFlag;

fn main() {
    let editions = ["free", "pro", "enterprise"];
    let flags = (0..50)
        .map(|i| FeatureFlag {
            key: format!("feature-{i}"),
            description: String::new(),
            enabled: i % 10 != 0,
            rollout_percent: i * 7 % 101,
            editions: if i % 3 == 0 { vec!["enterprise".into()] } else { vec![] },
            allow_tenants: (0..5).map(|t| format!("tenant-{}", t * 97 + i)).collect(),
            deny_tenants: (0..5).map(|t| format!("tenant-{}", t * 89 + i)).collect(),
            version: 1,
            updated_at: chrono::Utc::now(),
        })
        .map(|f| (f.key.clone(), f))
        .collect();
    let set = FlagSet { flags };
    let tenants: Vec<String> = (0..10_000).map(|i| format!("tenant-{i}")).collect();
    let keys: Vec<String> = (0..50).map(|i| format!("feature-{i}")).collect();

    let mut best = 0f64;
    for round in 0..5 {
        let n = 5_000_000usize;
        let started = Instant::now();
        let mut on = 0usize;
        for i in 0..n {
            let e = set.evaluate(&keys[i % 50], &tenants[(i / 50) % tenants.len()], editions[i % 3]);
            on += usize::from(black_box(e).enabled);
        }
        let per_sec = n as f64 / started.elapsed().as_secs_f64();
        best = best.max(per_sec);
        eprintln!("round {round}: {per_sec:>12.0} evaluations/s ({on} on)");
    }
    println!("flag_eval: {best:.0} evaluations/s on one core (best of 5 rounds of 5,000,000)");
}
