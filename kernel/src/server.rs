//! The HTTP side every subgraph shares: `/graphql`, `/health/live`, `/health/ready`, `/metrics`.
//!
//! The GraphQL handler authenticates every request before executing it, puts the [`RequestContext`] into the
//! request, lets the subgraph add its per-request data (DataLoaders, which therefore never share a cache
//! between requests or tenants), and runs it inside a span carrying the trace, correlation and tenant ids.
//! Errors that async-graphql raises itself (parse, validation, depth and complexity limits) get the code
//! `BAD_USER_INPUT`, so every error a client sees has one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{ObjectType, Pos, Schema, SubscriptionType};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::JwtVerifier;
use crate::broker::Broker;
use crate::cache::Cache;
use crate::context::RequestContext;
use crate::error::{Code, Error};
use crate::metrics;

/// Shared handles every subgraph's state holds.
#[derive(Clone)]
pub struct Kernel {
    pub pool: PgPool,
    pub cache: Cache,
    pub broker: Arc<Broker>,
    pub verifier: Arc<JwtVerifier>,
}

/// Adds a subgraph's per-request data (its DataLoaders) to a request.
pub type PerRequest =
    Arc<dyn Fn(async_graphql::Request, &RequestContext) -> async_graphql::Request + Send + Sync>;

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
    let state = Arc::new(AppState {
        schema,
        kernel,
        per_request,
    });
    Router::new()
        .route("/graphql", post(graphql::<Q, M, S>))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready::<Q, M, S>))
        .route("/metrics", get(|| async { metrics::render() }))
        .with_state(state)
}

async fn graphql<Q, M, S>(
    State(state): State<Arc<AppState<Q, M, S>>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let started = Instant::now();
    let (trace_id, correlation_id) = RequestContext::ids_from_headers(&headers);
    let span = tracing::info_span!(
        "graphql",
        trace_id = %trace_id,
        correlation_id = %correlation_id,
        tenant = tracing::field::Empty,
        subject = tracing::field::Empty,
    );
    let response = async {
        let caller = match bearer(&headers) {
            Some(token) => state.kernel.verifier.verify(token).await,
            None => Err(Error::unauthenticated("missing bearer token")),
        };
        match caller {
            Err(e) => {
                metrics::GRAPHQL_REQUESTS
                    .with_label_values(&["unauthenticated"])
                    .inc();
                async_graphql::Response::from_errors(vec![e
                    .to_graphql()
                    .into_server_error(Pos::default())])
            }
            Ok(caller) => {
                let current = tracing::Span::current();
                current.record("subject", caller.subject.as_str());
                if let Some(t) = &caller.tenant {
                    current.record("tenant", t.as_str());
                }
                let ctx = RequestContext {
                    caller,
                    trace_id,
                    correlation_id,
                };
                let req = (state.per_request)(request.into_inner().data(ctx.clone()), &ctx);
                let resp = state.schema.execute(req).await;
                let outcome = if resp.errors.is_empty() {
                    "ok"
                } else {
                    "error"
                };
                metrics::GRAPHQL_REQUESTS
                    .with_label_values(&[outcome])
                    .inc();
                resp
            }
        }
    }
    .instrument(span)
    .await;
    let mut response = response;
    for err in &mut response.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", Code::BadUserInput.as_str());
        }
        if let Some(async_graphql::Value::String(code)) = ext.get("code") {
            metrics::GRAPHQL_ERRORS
                .with_label_values(&[code.as_str()])
                .inc();
        }
    }
    metrics::GRAPHQL_SECONDS.observe(started.elapsed().as_secs_f64());
    response.into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn ready<Q, M, S>(State(state): State<Arc<AppState<Q, M, S>>>) -> impl IntoResponse {
    let k = &state.kernel;
    let pg = async {
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&k.pool)
            )
            .await,
            Ok(Ok(_))
        )
    };
    let (postgres, redis, rabbitmq) = tokio::join!(pg, k.cache.is_ready(), k.broker.is_ready());
    let up = |ok: bool| if ok { "up" } else { "down" };
    let status = if postgres && redis && rabbitmq {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            serde_json::json!({ "postgres": up(postgres), "redis": up(redis), "rabbitmq": up(rabbitmq) }),
        ),
    )
}

/// Serves `app` until `shutdown`, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        token.cancel();
    });
}
