//! API-token validation (cache hit and miss) and JWT verification, per second and p99; and a cache-hit
//! validation through the whole request path.
//!
//!     cargo bench -p identity --bench token_validation     (PostgreSQL and Redis as for the tests)
//!
//! A hit is served from the in-process cache; a miss goes through Redis and PostgreSQL (both caches are
//! dropped before each call). "Whole request path" is an HTTP request to identity's `/graphql`
//! (`{ __typename }`) with the API token, measured at the client, over loopback, one request at a time.

use std::time::{Duration, Instant};

use kernel::auth::LocalSigner;
use kernel::config::KernelConfig;

fn report(name: &str, mut lat: Vec<u32>, elapsed: Duration) {
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
    println!("| {name} | {:.0} | {:.1} | {:.1} |", lat.len() as f64 / elapsed.as_secs_f64(), pct(0.50), pct(0.99));
}

async fn measure<F, Fut>(n: usize, mut f: F) -> (Vec<u32>, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        lat.push(t.elapsed().as_nanos().div_ceil(1000) as u32);
    }
    (lat, started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin =
        std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database = "cp_bench_identity";
    kernel::db::drop_database(&admin, database).await?;
    let roles = kernel::db::provision(&admin, "identity", database).await?;
    let dir = std::env::temp_dir().join("cp-bench-identity");
    std::fs::create_dir_all(&dir)?;
    let signer = LocalSigner::from_base64(&LocalSigner::generate("b").to_base64())?;
    std::fs::write(dir.join("key"), signer.to_base64())?;
    let cfg = identity::Config {
        listen: "127.0.0.1:0".parse()?,
        signing_keys: vec![format!("file:{}", dir.join("key").display())],
        kernel: KernelConfig {
            database_url: kernel::db::url_for(&admin, &roles.app, database)?.into(),
            migrate_database_url: Some(kernel::db::url_for(&admin, &roles.owner, database)?.into()),
            database_max_connections: 8,
            redis_url: "redis://127.0.0.1:6379".to_owned().into(),
            redis_namespace: "cp-bench".into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into(),
            router_secret: "bench".to_owned().into(),
            jwt_issuer: "https://bench/".into(),
            jwt_audience: "control-plane".into(),
            jwks: None,
            identity_url: None,
            max_depth: 12,
            max_complexity: 5000,
            outbox_poll_ms: 100,
            log_format: kernel::telemetry::LogFormat::Text,
        },
    };
    let state = identity::connect(&cfg).await?;
    let token = identity::bootstrap(&state).await?;
    let hash = kernel::api_token::hash(&token);
    let auth = state.kernel.auth.clone();
    let jwt =
        signer.mint("https://bench/", "control-plane", "s", Some("acme"), &["tenancy:read"], Duration::from_secs(3600));

    println!("| what | per second | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    auth.authenticate(&token).await?;
    let (lat, el) = measure(200_000, || async {
        auth.authenticate(&token).await.unwrap();
    })
    .await;
    report("API token, cache hit", lat, el);
    let (lat, el) = measure(3_000, || async {
        auth.forget_api_token(&hash).await;
        auth.authenticate(&token).await.unwrap();
    })
    .await;
    report("API token, cache miss (Redis + PostgreSQL)", lat, el);
    let (lat, el) = measure(100_000, || async {
        auth.authenticate(&jwt).await.unwrap();
    })
    .await;
    report("JWT (Ed25519) verification", lat, el);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let app = identity::app(state.clone(), 12, 5000);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "query": "{ __typename }" });
    let call = || async {
        let v: serde_json::Value = http
            .post(&url)
            .bearer_auth(&token)
            .header(kernel::server::ROUTER_SECRET_HEADER, "bench")
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v.get("errors").is_none(), "{v}");
    };
    for _ in 0..500 {
        call().await;
    }
    let (lat, el) = measure(20_000, call).await;
    report("whole request path, API token cache hit (HTTP, one at a time)", lat, el);
    state.kernel.pool.close().await;
    kernel::db::drop_database(&admin, database).await?;
    Ok(())
}
