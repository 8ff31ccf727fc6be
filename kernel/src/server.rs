//! The HTTP side every subgraph shares: `/graphql` (POST, and WebSocket upgrades for subscriptions with the
//! graphql-transport-ws protocol), `/health/live`, `/health/ready`, `/metrics`.
//!
//! `/graphql` first checks the router-to-subgraph secret (`x-cp-router-secret`; over WebSocket it may also
//! come in the `connection_init` payload, which is where Hive Router puts propagated headers), so a
//! subgraph's port is no way around the router. Then it authenticates the caller's bearer token, puts the
//! [`RequestContext`] into the request, lets the subgraph add its per-request data (DataLoaders, which
//! therefore never share a cache between requests or tenants), and runs it inside a span carrying the trace,
//! correlation and tenant ids.
//! Errors that async-graphql raises itself (parse, validation, depth and complexity limits) get the code
//! `BAD_USER_INPUT`, so every error a client sees has one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Data, ObjectType, Pos, Schema, SubscriptionType};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::Authenticator;
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
    pub auth: Arc<Authenticator>,
    /// What the router must send in `x-cp-router-secret`.
    pub router_secret: SecretString,
}

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
    let state = Arc::new(AppState { schema, kernel, per_request });
    Router::new()
        .route("/graphql", get(websocket::<Q, M, S>).post(graphql::<Q, M, S>))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready::<Q, M, S>))
        .route("/metrics", get(|| async { metrics::render() }))
        .with_state(state)
}

async fn graphql<Q, M, S>(
    State(state): State<Arc<AppState<Q, M, S>>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let started = Instant::now();
    if !secret_matches(&state.kernel.router_secret, headers.get(ROUTER_SECRET_HEADER).and_then(|v| v.to_str().ok())) {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["no_router_secret"]).inc();
        return not_through_router();
    }
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
            Some(token) => state.kernel.auth.authenticate(token).await,
            None => Err(Error::unauthenticated("missing bearer token")),
        };
        match caller {
            Err(e) => {
                metrics::GRAPHQL_REQUESTS.with_label_values(&["unauthenticated"]).inc();
                async_graphql::Response::from_errors(vec![e.to_graphql().into_server_error(Pos::default())])
            }
            Ok(caller) => {
                let current = tracing::Span::current();
                current.record("subject", caller.subject.as_str());
                if let Some(t) = &caller.tenant {
                    current.record("tenant", t.as_str());
                }
                let ctx = RequestContext { caller, trace_id, correlation_id };
                let mut req = request.into_inner();
                (state.per_request)(&mut req.data, &ctx);
                req.data.insert(ctx);
                let resp = state.schema.execute(req).await;
                let outcome = if resp.errors.is_empty() { "ok" } else { "error" };
                metrics::GRAPHQL_REQUESTS.with_label_values(&[outcome]).inc();
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
            metrics::GRAPHQL_ERRORS.with_label_values(&[code.as_str()]).inc();
        }
    }
    metrics::GRAPHQL_SECONDS.observe(started.elapsed().as_secs_f64());
    GraphQLResponse::from(response).into_response()
}

/// Compares secrets in time independent of where they differ (both sides hashed to equal length first).
pub fn secret_matches(expected: &SecretString, presented: Option<&str>) -> bool {
    let Some(presented) = presented else { return false };
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn not_through_router() -> Response {
    let body = serde_json::json!({ "errors": [{
        "message": "requests must come through the router",
        "extensions": { "code": Code::Forbidden.as_str() },
    }] });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// A header from a graphql-transport-ws `connection_init` payload: top-level fields or a nested `headers`
/// object, names matched case-insensitively.
fn payload_header(payload: &serde_json::Value, name: &str) -> Option<String> {
    let find = |obj: &serde_json::Map<String, serde_json::Value>| {
        obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str().map(str::to_owned))
    };
    let obj = payload.as_object()?;
    obj.get("headers").and_then(|h| h.as_object()).and_then(find).or_else(|| find(obj))
}

/// Subscriptions over WebSocket. The router secret and bearer token are read from the upgrade request's
/// headers or from the `connection_init` payload; a connection without both valid is closed at init.
async fn websocket<Q, M, S>(
    State(state): State<Arc<AppState<Q, M, S>>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let upgrade_secret = header(ROUTER_SECRET_HEADER);
    let upgrade_auth = header("authorization");
    let (trace_id, correlation_id) = RequestContext::ids_from_headers(&headers);
    upgrade.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| {
        let schema = state.schema.clone();
        GraphQLWebSocket::new(socket, schema, protocol)
            .on_connection_init(move |payload: serde_json::Value| async move {
                let secret = upgrade_secret.or_else(|| payload_header(&payload, ROUTER_SECRET_HEADER));
                if !secret_matches(&state.kernel.router_secret, secret.as_deref()) {
                    return Err(async_graphql::Error::new("requests must come through the router"));
                }
                let auth = upgrade_auth.or_else(|| payload_header(&payload, "authorization"));
                let token = auth
                    .as_deref()
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim().to_owned())
                    .ok_or_else(|| async_graphql::Error::new("missing bearer token"))?;
                let caller = state.kernel.auth.authenticate(&token).await.map_err(|e| e.to_graphql())?;
                let trace_id = payload_header(&payload, "traceparent")
                    .and_then(|tp| tp.split('-').nth(1).map(str::to_owned))
                    .filter(|t| t.len() == 32)
                    .unwrap_or(trace_id);
                let ctx = RequestContext { caller, trace_id, correlation_id };
                let mut data = Data::default();
                (state.per_request)(&mut data, &ctx);
                data.insert(ctx);
                Ok(data)
            })
            .serve()
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn ready<Q, M, S>(State(state): State<Arc<AppState<Q, M, S>>>) -> impl IntoResponse {
    let k = &state.kernel;
    let pg = async {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&k.pool)).await,
            Ok(Ok(_))
        )
    };
    let (postgres, redis, rabbitmq) = tokio::join!(pg, k.cache.is_ready(), k.broker.is_ready());
    let up = |ok: bool| if ok { "up" } else { "down" };
    let status = if postgres && redis && rabbitmq { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "postgres": up(postgres), "redis": up(redis), "rabbitmq": up(rabbitmq) })))
}

/// Serves `app` until `shutdown`, then lets in-flight requests finish.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

/// Listens for identity's revocation events so revoked API and access tokens stop working on this replica
/// within moments (every subgraph runs this).
pub fn spawn_revocation_listener(kernel: &Kernel, shutdown: &CancellationToken) {
    tokio::spawn(crate::consumer::listen(
        kernel.broker.clone(),
        crate::auth::revocation_bindings(),
        crate::auth::on_revocation(kernel.auth.clone()),
        shutdown.clone(),
    ));
}

/// Builds the authenticator from configuration: JWTs against the JWKS, API tokens through identity's
/// introspection endpoint when `IDENTITY_URL` is set.
pub async fn authenticator(cfg: &crate::config::KernelConfig, cache: &Cache) -> anyhow::Result<Arc<Authenticator>> {
    let jwks =
        cfg.jwks.as_deref().ok_or_else(|| anyhow::anyhow!("JWKS (a file or identity's JWKS URL) is required"))?;
    let jwt = crate::auth::JwtVerifier::new(&cfg.jwt_issuer, &cfg.jwt_audience, crate::auth::JwksSource::parse(jwks));
    let api_tokens = cfg.identity_url.as_deref().map(|url| {
        Arc::new(crate::auth::IntrospectionSource::new(url, cfg.router_secret.clone()))
            as Arc<dyn crate::auth::ApiTokenSource>
    });
    let auth = Authenticator::new(jwt, api_tokens, Some(cache.clone()));
    auth.jwt.preload().await?;
    Ok(Arc::new(auth))
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

/// A subgraph's federation SDL for composition, minus two things async-graphql exports that routers refuse:
/// the imports of Apollo's licensed security directives (`@authenticated`, `@requiresScopes`, `@policy`;
/// an unlicensed Apollo Router will not start with them linked, and permissions are enforced in the
/// subgraphs anyway), and definitions of GraphQL's built-in directives (`@skip`, `@include`, …), which
/// Apollo Router's query planner rejects as duplicates.
pub fn federation_sdl<Q, M, S>(schema: &Schema<Q, M, S>) -> String
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let sdl = schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation());
    let sdl = ["\"@authenticated\"", "\"@requiresScopes\"", "\"@policy\""]
        .iter()
        .fold(sdl, |sdl, directive| sdl.replace(&format!(", {directive}"), "").replace(&format!("{directive}, "), ""));
    without_builtin_directives(&sdl)
}

/// Drops definitions of the built-in directives, with the docstrings just above them.
fn without_builtin_directives(sdl: &str) -> String {
    const BUILTIN: [&str; 5] = ["@skip(", "@include(", "@deprecated(", "@specifiedBy(", "@oneOf "];
    const QUOTES: &str = "\"\"\"";
    let mut out: Vec<&str> = Vec::new();
    for line in sdl.lines() {
        let builtin = line.strip_prefix("directive ").is_some_and(|rest| BUILTIN.iter().any(|b| rest.starts_with(b)));
        if !builtin {
            out.push(line);
            continue;
        }
        match out.last().map(|l| l.trim()) {
            // A multi-line docstring: drop back to its opening quotes.
            Some(QUOTES) => {
                out.pop();
                while let Some(l) = out.pop() {
                    if l.trim_start().starts_with(QUOTES) {
                        break;
                    }
                }
            }
            Some(l) if l.len() > 6 && l.starts_with(QUOTES) && l.ends_with(QUOTES) => {
                out.pop();
            }
            _ => {}
        }
    }
    let mut sdl = out.join("\n");
    sdl.push('\n');
    sdl
}
