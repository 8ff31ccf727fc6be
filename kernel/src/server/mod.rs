//! The HTTP side every subgraph shares: `/graphql` (POST, and WebSocket upgrades for subscriptions with the
//! graphql-transport-ws protocol), `/health/live`, `/health/ready`, `/metrics`.
//!
//! `/graphql` checks, in this order and before any of the body is read: the router-to-subgraph secret
//! (`x-cp-router-secret`; over WebSocket it may also come in the `connection_init` payload, which is where
//! Hive Router puts propagated headers), so a subgraph's port is no way around the router; the content type
//! (JSON only: multipart is refused); and the body size (`MAX_BODY_BYTES`, 413 beyond it). Then the query
//! is parsed and its selections counted with fragments expanded ([`SelectionLimit`]) before validation, so
//! alias bombs and fragment "billion laughs" cost nothing; depth, complexity and directive limits follow.
//! Then it authenticates the caller's bearer token, puts the [`RequestContext`] into the request, lets the
//! subgraph add its per-request data (DataLoaders, which therefore never share a cache between requests or
//! tenants), and runs it inside a span carrying the trace, correlation and tenant ids.
//!
//! Every error a client sees has a code. Errors async-graphql raises itself before execution (parse,
//! validation, limits) get `BAD_USER_INPUT`; an error raised during execution without a code (a `?` on some
//! library's error) becomes `INTERNAL` with a generic message, and is logged in full.
//!
//! | module | what |
//! |---|---|
//! | [`guard`] | what `/graphql` checks before reading a body: router secret, content type, size |
//! | [`handler`] | the POST handler: authentication, per-request data, coded errors |
//! | [`limits`] | the schema's limits and the checks that run before async-graphql parses or walks a document |
//! | [`websocket`] | subscriptions over graphql-transport-ws with their connection limits |
//! | [`sdl`] | the federation SDL routers compose |
//! | [`signals`] | Ctrl-C and SIGTERM |

mod guard;
mod handler;
pub mod limits;
mod routes;
mod sdl;
mod signals;
mod websocket;

pub use guard::secret_matches;
pub use handler::{coded, MAX_ERRORS};
pub use limits::{
    charge, charge_within, expanded_selections, limits, nesting_depth, within_nesting, ObjectBudget, SelectionLimit,
    MAX_NESTING,
};
pub use routes::{error_response, protect, Authenticated};
pub use sdl::federation_sdl;
pub use signals::cancel_on_signal;
pub use websocket::payload_header;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, ObjectType, Schema, SubscriptionType};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware::{self};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::cache::Cache;
use crate::config::KernelConfig;
use crate::context::RequestContext;
use crate::metrics;
use crate::service::Kernel;

/// The header carrying the router-to-subgraph secret.
pub const ROUTER_SECRET_HEADER: &str = "x-cp-router-secret";

/// Adds a subgraph's per-request data (its DataLoaders) to a request's (or a WebSocket connection's) data.
pub type PerRequest = Arc<dyn Fn(&mut Data, &RequestContext) + Send + Sync>;

struct AppState<Q, M, S> {
    schema: Schema<Q, M, S>,
    kernel: Kernel,
    per_request: PerRequest,
}

/// The whole HTTP app of a subgraph. Testable with `tower::ServiceExt::oneshot`, no port needed.
pub fn app<Q, M, S>(schema: Schema<Q, M, S>, kernel: Kernel, per_request: PerRequest) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let guard = guard::Guard { secret: kernel.config.router_secret.clone(), max_body: kernel.config.max_body_bytes };
    let state = Arc::new(AppState { schema, kernel, per_request });
    Router::new()
        .route("/graphql", get(websocket::websocket::<Q, M, S>).post(handler::graphql::<Q, M, S>))
        // The guard enforces MAX_BODY_BYTES; axum's own 2 MiB default must not cap it below that.
        .route_layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(Arc::new(guard), guard::guard_graphql))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready::<Q, M, S>))
        .route("/metrics", get(|| async { metrics::render() }))
        .with_state(state)
}

/// Ready when PostgreSQL answers: the one thing a subgraph cannot serve without. Redis or RabbitMQ down
/// is reported as `degraded` in the body (requests still work: caches read as misses, events wait in the
/// outbox), so a load balancer does not take every replica out when the broker blinks.
async fn ready<Q, M, S>(State(state): State<Arc<AppState<Q, M, S>>>) -> impl IntoResponse {
    let k = &state.kernel;
    let pg = async {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(k.db.shared())).await,
            Ok(Ok(_))
        )
    };
    let (postgres, redis, rabbitmq) = tokio::join!(pg, k.cache.is_ready(), k.broker.is_ready());
    let up = |ok: bool| if ok { "up" } else { "down" };
    let (status, overall) = match (postgres, redis && rabbitmq) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "down"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "up"),
    };
    let body = serde_json::json!({
        "status": overall, "postgres": up(postgres), "redis": up(redis), "rabbitmq": up(rabbitmq),
    });
    (status, Json(body))
}

/// Serves `app` until `shutdown`, then lets in-flight requests finish. Small writes go out at once
/// (`TCP_NODELAY`): a subscription's event must not wait for Nagle's algorithm and a delayed ACK.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // The peer's address is there for a handler that wants it (`ConnectInfo<SocketAddr>`).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

/// Builds the authenticator from configuration: JWTs against the JWKS, API tokens through identity's
/// introspection endpoint when `IDENTITY_URL` is set.
pub async fn authenticator(cfg: &KernelConfig, cache: &Cache) -> anyhow::Result<Arc<Authenticator>> {
    let jwks =
        cfg.jwks.as_deref().ok_or_else(|| anyhow::anyhow!("JWKS (a file or identity's JWKS URL) is required"))?;
    let jwt = crate::auth::JwtVerifier::new(&cfg.jwt_issuer, &cfg.jwt_audience, crate::auth::JwksSource::parse(jwks));
    let api_tokens = match (cfg.identity_url.as_deref(), &cfg.internal_secret) {
        (Some(url), Some(secret)) => Some(Arc::new(crate::auth::IntrospectionSource::new(url, secret.clone()))
            as Arc<dyn crate::auth::ApiTokenSource>),
        _ => None,
    };
    let auth = Authenticator::new(jwt, api_tokens, Some(cache.clone()), cfg);
    auth.jwt.preload().await?;
    Ok(Arc::new(auth))
}
