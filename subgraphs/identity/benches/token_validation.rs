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
    // Started through the production wiring on throwaway resources (removed when `app` drops).
    let builder = test_support::TestApp::<identity::State>::builder();
    let signer = LocalSigner::from_base64(&LocalSigner::generate("b").to_base64())?;
    let key = builder.dir.join("key");
    kernel::auth::write_private(&key, signer.to_base64().as_bytes())?;
    let app =
        builder.start::<identity::State>(&identity::Config::with_keys(vec![format!("file:{}", key.display())])).await;
    let state = app.state.clone();
    let token = identity::bootstrap(&state).await?;
    let hash = kernel::api_token::hash(&token);
    let auth = state.kernel.auth.clone();
    let jwt = signer.mint(
        test_support::ISSUER,
        "control-plane",
        "s",
        Some("acme"),
        &["tenancy:read"],
        Duration::from_secs(3600),
    );

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

    let url = format!("{}/graphql", app.serve().await);
    let secret = secrecy::ExposeSecret::expose_secret(&app.config.router_secret).to_owned();
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "query": "{ __typename }" });
    let call = || async {
        let v: serde_json::Value = http
            .post(&url)
            .bearer_auth(&token)
            .header(kernel::server::ROUTER_SECRET_HEADER, &secret)
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
    app.cleanup().await;
    Ok(())
}
