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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Data, ObjectType, Pos, Schema, SchemaBuilder, ServerError, ServerResult, SubscriptionType};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::ws::Message;
use axum::extract::{DefaultBodyLimit, Request, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::auth::{Authenticator, Caller, Termination};
use crate::cache::Cache;
use crate::config::KernelConfig;
use crate::context::RequestContext;
use crate::error::{Code, Error};
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
    let guard = Guard { secret: kernel.config.router_secret.clone(), max_body: kernel.config.max_body_bytes };
    let state = Arc::new(AppState { schema, kernel, per_request });
    Router::new()
        .route("/graphql", get(websocket::<Q, M, S>).post(graphql::<Q, M, S>))
        // The guard enforces MAX_BODY_BYTES; axum's own 2 MiB default must not cap it below that.
        .route_layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(Arc::new(guard), guard_graphql))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready::<Q, M, S>))
        .route("/metrics", get(|| async { metrics::render() }))
        .with_state(state)
}

/// The executable schema's limits from configuration: depth, complexity (list fields multiply by their
/// page size), directives, parser recursion, selections after fragment expansion, and introspection.
pub fn limits<Q, M, S>(builder: SchemaBuilder<Q, M, S>, cfg: &KernelConfig) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let builder = builder
        .limit_depth(cfg.max_depth)
        .limit_complexity(cfg.max_complexity)
        .limit_directives(cfg.max_directives)
        .limit_recursive_depth(cfg.max_depth.max(32))
        .extension(SelectionLimit(cfg.max_selections));
    if cfg.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

struct Guard {
    secret: SecretString,
    max_body: usize,
}

/// Runs before the body is read: the router secret, the content type, the declared size; and bounds the
/// body's actual size while it is read.
async fn guard_graphql(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    // Only a WebSocket upgrade (a GET asking for `websocket`) may carry the secret in `connection_init`
    // instead (checked there); any other request with an `Upgrade` header is checked here like the rest.
    let is_websocket = request.method() == axum::http::Method::GET
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_websocket && !secret_matches(&guard.secret, headers.get(ROUTER_SECRET_HEADER).and_then(|v| v.to_str().ok()))
    {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["no_router_secret"]).inc();
        return refusal(StatusCode::FORBIDDEN, Code::Forbidden, "requests must come through the router");
    }
    if request.method() == axum::http::Method::POST {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::BadUserInput,
                "GraphQL requests must be application/json",
            );
        }
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > guard.max_body) {
            // Read (and drop) what the client is still sending, within bounds, so it gets the 413 rather
            // than a reset connection.
            let mut body = request.into_body().into_data_stream();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut seen = 0usize;
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
                seen += chunk.len();
                if seen > DRAIN_CAP {
                    break;
                }
            }
            return too_large(guard.max_body);
        }
        // A body without a length (chunked) is cut off at the limit while it is read.
        let (parts, body) = request.into_parts();
        let limited = http_body_util::Limited::new(body, guard.max_body);
        let request = Request::from_parts(parts, axum::body::Body::new(limited));
        let response = next.run(request).await;
        return response;
    }
    next.run(request).await
}

/// Most bytes of an oversize body read and dropped before answering 413.
const DRAIN_CAP: usize = 16 * 1024 * 1024;

fn too_large(max: usize) -> Response {
    refusal(StatusCode::PAYLOAD_TOO_LARGE, Code::BadUserInput, &format!("request body is larger than {max} bytes"))
}

fn refusal(status: StatusCode, code: Code, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}

async fn graphql<Q, M, S>(
    State(state): State<Arc<AppState<Q, M, S>>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let started = Instant::now();
    // One request per POST, parsed straight from the JSON body (the guard admits only JSON). Parsed as
    // async-graphql's batch form — an untagged enum — a body would be read twice: whole into serde's
    // buffer first, then into the request; a large mutation (a `recordUsage` batch) pays for both.
    let parsed = match body {
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(state.kernel.config.max_body_bytes);
        }
        Err(_) => None,
        Ok(bytes) => serde_json::from_slice::<async_graphql::Request>(&bytes).ok(),
    };
    let Some(request) = parsed else {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["malformed"]).inc();
        return refusal(StatusCode::BAD_REQUEST, Code::BadUserInput, "the body is not a GraphQL request");
    };
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
                let mut req = request;
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
    coded(&mut response.errors);
    metrics::GRAPHQL_SECONDS.observe(started.elapsed().as_secs_f64());
    GraphQLResponse::from(response).into_response()
}

/// Most errors one response carries; the rest are summed up in one more.
pub const MAX_ERRORS: usize = 20;

/// Gives every error a code: request-level errors (parse, validation, limits: no path) are
/// `BAD_USER_INPUT`; an execution error without a code becomes `INTERNAL` with a generic message, its
/// original text logged. Caps the list at [`MAX_ERRORS`].
pub fn coded(errors: &mut Vec<ServerError>) {
    if errors.len() > MAX_ERRORS {
        let dropped = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        let mut more = ServerError::new(format!("{dropped} more errors were left out"), None);
        more.extensions.get_or_insert_with(Default::default).set("code", Code::BadUserInput.as_str());
        errors.push(more);
    }
    for err in errors.iter_mut() {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            if err.path.is_empty() {
                ext.set("code", Code::BadUserInput.as_str());
            } else {
                tracing::error!(error = %err.message, path = ?err.path, "uncoded error during execution");
                err.message = "internal error".to_owned();
                err.source = None;
                ext.set("code", Code::Internal.as_str());
            }
        }
        if let Some(async_graphql::Value::String(code)) = ext.get("code") {
            metrics::GRAPHQL_ERRORS.with_label_values(&[code.as_str()]).inc();
        }
    }
}

/// Refuses operations with more than `.0` field selections once fragments are expanded, before anything
/// else looks at the document: async-graphql's own checks (recursive depth, directives, depth, complexity)
/// walk every fragment again at every spread, which is exponential for a document whose fragments each
/// spread the next one twice. This runs in `prepare_request`, ahead of those, and computes each fragment's
/// size once, so it is linear in the document's length whatever the document would expand to.
pub struct SelectionLimit(pub usize);

impl ExtensionFactory for SelectionLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SelectionLimit(self.0))
    }
}

#[async_trait::async_trait]
impl Extension for SelectionLimit {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let n = expanded_selections(request.parsed_query()?, self.0);
        if n > self.0 {
            return Err(ServerError::new(
                format!(
                    "the operation selects more than {} fields once its fragments are expanded (or its fragments \
                     spread each other in a cycle)",
                    self.0
                ),
                None,
            ));
        }
        next.run(ctx, request).await
    }
}

/// Field selections of every operation in `doc` with fragments expanded, counting no further than `cap + 1`.
pub fn expanded_selections(doc: &ExecutableDocument, cap: usize) -> usize {
    use std::collections::HashMap;
    fn set(
        s: &SelectionSet,
        doc: &ExecutableDocument,
        memo: &mut HashMap<String, usize>,
        open: &mut HashSet<String>,
        cap: usize,
    ) -> usize {
        let mut n: usize = 0;
        for item in &s.items {
            let add = match &item.node {
                Selection::Field(f) => 1usize.saturating_add(set(&f.node.selection_set.node, doc, memo, open, cap)),
                Selection::InlineFragment(i) => set(&i.node.selection_set.node, doc, memo, open, cap),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    if let Some(&known) = memo.get(&name) {
                        known
                    } else if !open.insert(name.clone()) {
                        // A cycle: never valid, and async-graphql's own recursive walk would explore it
                        // exponentially up to its depth limit when fragments spread each other twice.
                        cap + 1
                    } else {
                        let size = doc
                            .fragments
                            .get(&spread.node.fragment_name.node)
                            .map(|f| set(&f.node.selection_set.node, doc, memo, open, cap))
                            .unwrap_or(0);
                        open.remove(&name);
                        memo.insert(name, size);
                        size
                    }
                }
            };
            n = n.saturating_add(add);
            if n > cap {
                return cap + 1;
            }
        }
        n
    }
    let mut memo = HashMap::new();
    let mut open = HashSet::new();
    let mut total: usize = 0;
    for (_, op) in doc.operations.iter() {
        total = total.saturating_add(set(&op.node.selection_set.node, doc, &mut memo, &mut open, cap));
        if total > cap {
            return cap + 1;
        }
    }
    total
}

/// Compares secrets in time independent of where they differ (both sides hashed to equal length first).
pub fn secret_matches(expected: &SecretString, presented: Option<&str>) -> bool {
    let Some(presented) = presented else { return false };
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
/// headers or from the `connection_init` payload; a connection without both valid is closed at init, as is
/// one that sends no `connection_init` within `WS_INIT_TIMEOUT_SECS`. The server pings every `WS_PING_SECS`,
/// a connection may hold at most `WS_MAX_SUBSCRIPTIONS` subscriptions at once, and it is closed (code 4403)
/// within moments of its token being revoked, its principal disabled or its tenant suspended.
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
    let limits = WsLimits {
        init_timeout: Duration::from_secs(state.kernel.config.ws_init_timeout_secs),
        max_subscriptions: state.kernel.config.ws_max_subscriptions,
        ping_every: Duration::from_secs(state.kernel.config.ws_ping_secs.max(1)),
    };
    let terminations = state.kernel.auth.terminations();
    let caller_slot: Arc<std::sync::OnceLock<Caller>> = Arc::default();
    let max = state.kernel.config.max_body_bytes;
    let upgrade = upgrade.max_message_size(max).max_frame_size(max);
    upgrade.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| async move {
        let schema = state.schema.clone();
        let (sink, stream) = socket.split();
        let (out, inbound) = guarded_socket(sink, stream, limits, terminations, caller_slot.clone());
        GraphQLWebSocket::new_with_pair(out, inbound, schema, protocol)
            .on_connection_init(move |payload: serde_json::Value| async move {
                let secret = upgrade_secret.or_else(|| payload_header(&payload, ROUTER_SECRET_HEADER));
                if !secret_matches(&state.kernel.config.router_secret, secret.as_deref()) {
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
                let _ = caller_slot.set(caller.clone());
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
            .await
    })
}

#[derive(Clone, Copy)]
struct WsLimits {
    init_timeout: Duration,
    max_subscriptions: usize,
    ping_every: Duration,
}

/// A close frame with a graphql-transport-ws (or WebSocket) code.
fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame { code, reason: reason.into() }))
}

type WsSink = futures::stream::SplitSink<axum::extract::ws::WebSocket, Message>;
type WsStream = futures::stream::SplitStream<axum::extract::ws::WebSocket>;

/// Puts the connection's limits between the socket and async-graphql: a writer task that forwards
/// outgoing messages and pings on a timer, and an inbound stream that ends the connection when no
/// `connection_init` arrives in time and answers a subscription over the cap with an error.
fn guarded_socket(
    mut sink: WsSink,
    stream: WsStream,
    limits: WsLimits,
    mut terminations: tokio::sync::broadcast::Receiver<Termination>,
    caller: Arc<std::sync::OnceLock<Caller>>,
) -> (
    impl futures::Sink<Message, Error = tokio_util::sync::PollSendError<Message>> + Send + Unpin,
    impl futures::Stream<Item = Result<Message, axum::Error>> + Send,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(64);
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    let writer_active = active.clone();
    let ended = CancellationToken::new();
    let end_inbound = ended.clone();
    tokio::spawn(async move {
        let mut ping = tokio::time::interval(limits.ping_every);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = ping.tick() => Message::Ping(Vec::new().into()),
                t = terminations.recv() => match t {
                    Ok(t) if caller.get().is_some_and(|c| t.ends(c)) => {
                        end_inbound.cancel();
                        close(4403, "the credentials of this connection are no longer valid")
                    }
                    Ok(_) => continue,
                    // Missed some: a revoked caller must not slip through, so the client authenticates again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        tracing::warn!("a WebSocket connection missed session terminations; closing it");
                        end_inbound.cancel();
                        close(4403, "authenticate again")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => continue,
                },
            };
            if let Message::Text(text) = &msg {
                // A subscription the server completed (or failed) no longer counts against the cap. Data
                // messages, the bulk of the traffic, are not parsed.
                let t = text.as_str();
                let maybe_end = t.contains("\"complete\"") || t.contains("\"error\"");
                if let Some(v) = maybe_end.then(|| serde_json::from_str::<serde_json::Value>(t).ok()).flatten() {
                    if matches!(v["type"].as_str(), Some("complete" | "error")) {
                        if let Some(id) = v["id"].as_str() {
                            writer_active.lock().expect("ws lock").remove(id);
                        }
                    }
                }
            }
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let replies = tx.clone();
    let started = tokio::time::Instant::now();
    let inbound = futures::stream::unfold((stream, false), move |(mut stream, initialised)| {
        let replies = replies.clone();
        let active = active.clone();
        let ended = ended.clone();
        async move {
            loop {
                let next = if ended.is_cancelled() {
                    return None;
                } else if initialised {
                    tokio::select! {
                        next = stream.next() => next,
                        _ = ended.cancelled() => return None,
                    }
                } else {
                    match tokio::time::timeout_at(started + limits.init_timeout, stream.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            let _ = replies.send(close(4408, "Connection initialisation timeout")).await;
                            return None;
                        }
                    }
                };
                let msg = next?;
                // graphql-transport-ws is text only: a binary frame would slip past the checks below.
                if matches!(msg, Ok(Message::Binary(_))) {
                    let _ = replies.send(close(4400, "binary frames are not part of graphql-transport-ws")).await;
                    return None;
                }
                let Ok(Message::Text(text)) = &msg else { return Some((msg, (stream, initialised))) };
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                match (v["type"].as_str(), v["id"].as_str()) {
                    (Some("connection_init"), _) => return Some((msg, (stream, true))),
                    (Some("subscribe" | "start"), Some(id)) => {
                        let admitted = {
                            let mut set = active.lock().expect("ws lock");
                            if set.contains(id) || set.len() < limits.max_subscriptions {
                                set.insert(id.to_owned());
                                true
                            } else {
                                false
                            }
                        };
                        if admitted {
                            return Some((msg, (stream, initialised)));
                        }
                        let error = serde_json::json!({ "id": id, "type": "error", "payload": [{
                            "message": format!("at most {} subscriptions per connection", limits.max_subscriptions),
                            "extensions": { "code": Code::BadUserInput.as_str() },
                        }] });
                        let _ = replies.send(Message::Text(error.to_string().into())).await;
                    }
                    (Some("complete" | "stop"), Some(id)) => {
                        active.lock().expect("ws lock").remove(id);
                        return Some((msg, (stream, initialised)));
                    }
                    _ => return Some((msg, (stream, initialised))),
                }
            }
        }
    });
    (tokio_util::sync::PollSender::new(tx), inbound)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_error_without_a_code_becomes_internal_and_hides_its_text() {
        let mut uncoded = ServerError::new("relation \"tenants\" does not exist at character 15", None);
        uncoded.path = vec![async_graphql::PathSegment::Field("tenant".into())];
        let validation = ServerError::new("Unknown field \"nope\" on type \"Query\"", None);
        let mut errors = vec![uncoded, validation];
        coded(&mut errors);
        assert_eq!(errors[0].message, "internal error");
        let ext = format!("{:?}", errors[0].extensions);
        assert!(ext.contains("INTERNAL") && !ext.contains("tenants"), "{ext}");
        assert!(errors[1].message.contains("Unknown field"), "request-level errors keep their message");
        assert!(format!("{:?}", errors[1].extensions).contains("BAD_USER_INPUT"));
    }

    #[test]
    fn error_lists_are_bounded() {
        let mut errors: Vec<ServerError> = (0..500).map(|i| ServerError::new(format!("e{i}"), None)).collect();
        coded(&mut errors);
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert!(errors[MAX_ERRORS].message.contains("480 more"));
    }

    #[test]
    fn expanded_selections_are_counted_without_expanding() {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..60 {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i + 1, i + 1));
        }
        q.push_str("fragment F60 on Query { a b }\n");
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        let started = Instant::now();
        assert_eq!(expanded_selections(&doc, 2000), 2001);
        assert!(started.elapsed() < Duration::from_millis(100));
        let small = async_graphql::parser::parse_query("{ a b { c d } ...X } fragment X on Q { e }").unwrap();
        assert_eq!(expanded_selections(&small, 2000), 5);
        let cycle =
            async_graphql::parser::parse_query("{ ...A } fragment A on Q { ...B ...B } fragment B on Q { ...A ...A }")
                .unwrap();
        assert_eq!(expanded_selections(&cycle, 2000), 2001, "a fragment cycle is refused outright");
    }
}
