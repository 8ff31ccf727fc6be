//! A tenant read by id through the subgraph's HTTP endpoint, at 50 concurrent clients.
//!
//!     cargo bench -p tenancy --bench tenant_read      (needs PostgreSQL, Redis, RabbitMQ as for the tests)
//!
//! Provisions a database `cp_bench_tenancy`, serves the real app (authentication, RLS transaction,
//! DataLoader) on a local port, and has 50 clients send `tenant(id:)` for BENCH_SECONDS (default 10).
//! Prints requests per second, p50 and p99. Client and server share the machine's cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kernel::auth::{JwksSource, JwtVerifier, LocalSigner};
use kernel::broker::Broker;
use kernel::cache::Cache;
use kernel::server::Kernel;
use serde_json::{json, Value};

const ISSUER: &str = "https://bench.local/";
const AUDIENCE: &str = "control-plane";

async fn call(http: &reqwest::Client, url: &str, token: &str, query: &str) -> anyhow::Result<Value> {
    let v: Value = http
        .post(url)
        .bearer_auth(token)
        .header(kernel::server::ROUTER_SECRET_HEADER, "bench-secret")
        .json(&json!({ "query": query }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(v.get("errors").is_none(), "GraphQL errors: {v}");
    Ok(v)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin =
        std::env::var("ADMIN_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let database = "cp_bench_tenancy";
    kernel::db::drop_database(&admin, database).await?;
    let roles = kernel::db::provision(&admin, "tenancy", database).await?;
    kernel::db::migrate(&kernel::db::url_for(&admin, &roles.owner, database)?.into(), &tenancy::MIGRATIONS).await?;

    let dir = std::env::temp_dir().join("cp-bench-jwks");
    std::fs::create_dir_all(&dir)?;
    let signer = LocalSigner::generate("bench");
    std::fs::write(dir.join("jwks.json"), signer.jwks().to_string())?;
    let pool = kernel::db::connect(&kernel::db::url_for(&admin, &roles.app, database)?.into(), 16).await?;
    let verifier = Arc::new(JwtVerifier::new(ISSUER, AUDIENCE, JwksSource::File(dir.join("jwks.json"))));
    verifier.preload().await?;
    let state = tenancy::State::new(Kernel {
        pool,
        cache: Cache::connect(&"redis://127.0.0.1:6379".to_owned().into()).await?,
        broker: Arc::new(Broker::new("amqp://guest:guest@127.0.0.1:5672/%2f".to_owned().into())),
        verifier,
        router_secret: "bench-secret".to_owned().into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let app = tenancy::app(state, 12, 5000);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let op = signer.mint(ISSUER, AUDIENCE, "bench-op", None, &["platform:admin"], Duration::from_secs(3600));
    call(&http, &url, &op, r#"mutation { createEdition(input: { id: "pro", name: "Pro", quotaTemplate: [{ key: "api-calls", limit: 1000, period: MONTH }] }) { id } }"#).await?;
    call(&http, &url, &op, r#"mutation { publishEdition(id: "pro", version: 1) { id } }"#).await?;
    call(&http, &url, &op, r#"mutation { provisionTenant(input: { id: "bench", displayName: "Bench", region: "eu-west", editionId: "pro" }) { id } }"#).await?;
    let token =
        signer.mint(ISSUER, AUDIENCE, "bench-user", Some("bench"), &["tenancy:read"], Duration::from_secs(3600));
    let query = r#"{ tenant(id: "bench") { id displayName status region } }"#;
    for _ in 0..200 {
        call(&http, &url, &token, query).await?; // warm-up
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    call(&http, &url, &token, query).await.expect("request");
                    lat.push(t.elapsed().as_micros() as u32);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u32> = Vec::new();
    for c in clients {
        lat.extend(c.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "tenant_read: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} requests, 50 clients, {seconds} s)",
        lat.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        lat.len()
    );
    kernel::db::drop_database(&admin, database).await?;
    Ok(())
}
