//! `edge`: the one public endpoint, in front of the router (Hive Router or Apollo Router).
//!
//! A router parses, validates and plans a document before any subgraph sees it, and a small document can
//! make that work explode: fragments that each spread the next one many times expand to billions of
//! fields ("billion laughs"), which Hive Router 0.2.19 has no limit for. The edge refuses such requests
//! before the router sees them — bodies over `MAX_BODY_BYTES` (413), non-JSON bodies (415), documents
//! that do not parse or whose selections, once fragments are expanded, exceed `MAX_SELECTIONS` (400 with
//! a coded GraphQL error) — counting each fragment once, so the check is linear in the document. Everything
//! else is proxied unchanged: HTTP (responses streamed, so `@defer` multipart works) and WebSocket
//! subscriptions (each `subscribe` message checked the same way, and counted against the caps of
//! [`subscriptions`]).
//!
//! ```text
//! edge --listen 127.0.0.1:4000 --upstream http://127.0.0.1:4100
//! ```

pub mod pages;
pub mod pass;
pub mod subscriptions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use hyper_util::client::legacy::connect::HttpConnector;
use kernel::error::Code;

#[derive(clap::Parser, Clone, Debug)]
#[command(about = "The public GraphQL endpoint: refuses hostile requests, proxies the rest to the router")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "EDGE_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// The router's base URL (its GraphQL endpoint is `<upstream>/graphql`).
    #[arg(long, env = "EDGE_UPSTREAM", default_value = "http://127.0.0.1:4100")]
    pub upstream: String,
    /// Largest request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Most field selections an operation may have once its fragments are expanded.
    #[arg(long, env = "MAX_SELECTIONS", default_value_t = 10_000)]
    pub max_selections: usize,
    /// Most subscriptions one WebSocket connection may hold at once.
    #[arg(long, env = "EDGE_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = DEFAULT_CAPS.per_connection)]
    pub max_subscriptions_per_connection: usize,
    /// Most subscriptions one credential (bearer token) may hold at once, over all its connections. Keep
    /// it at most the subgraphs' `WS_MAX_SUBSCRIPTIONS` divided by the number of edge replicas: the router
    /// carries a credential's subscriptions on one connection to each subgraph.
    #[arg(long, env = "EDGE_MAX_SUBSCRIPTIONS_PER_TOKEN", default_value_t = DEFAULT_CAPS.per_credential)]
    pub max_subscriptions_per_token: usize,
    /// Most subscriptions one client address may hold at once, whatever its credentials.
    #[arg(long, env = "EDGE_MAX_SUBSCRIPTIONS_PER_CLIENT", default_value_t = DEFAULT_CAPS.per_client)]
    pub max_subscriptions_per_client: usize,
    /// Most subscriptions this edge relays at once, in all.
    #[arg(long, env = "EDGE_MAX_SUBSCRIPTIONS", default_value_t = DEFAULT_CAPS.total)]
    pub max_subscriptions: usize,
    /// Threads serving requests (each with its own listener on the address); default one per core.
    #[arg(long, env = "EDGE_THREADS")]
    pub threads: Option<usize>,
    /// Paths passed straight to a subgraph, streamed (`PREFIX=URL`, repeatable or comma-separated):
    /// `/api/v1/=http://lineage:4006` for artifact bodies and OpenLineage ingestion,
    /// `/oauth/token=http://identity:4001` for the token endpoint ([`pass`]).
    #[arg(long = "pass", env = "EDGE_PASS", value_delimiter = ',')]
    pub pass: Vec<pass::PassRoute>,
    /// Largest body of a passed request (an artifact upload), in bytes: streamed, never held whole.
    #[arg(long, env = "EDGE_MAX_PASS_BODY_BYTES", default_value_t = 4 << 30)]
    pub max_pass_body_bytes: u64,
    /// Folders of static pages the edge serves itself, read once at start (`PREFIX=DIR`, repeatable or
    /// comma-separated): `/dashboard/=clients/dashboard` for the live dashboard ([`pages`]).
    #[arg(long = "pages", env = "EDGE_PAGES", value_delimiter = ',')]
    pub pages: Vec<pages::PagesRoute>,
    /// The router-to-subgraph secret (from the environment), which passed requests carry as the router's
    /// do; needed when there are pass routes.
    #[arg(long, env = "ROUTER_SECRET", hide_env_values = true, value_parser = kernel::config::secret)]
    pub router_secret: Option<secrecy::SecretString>,
}

/// The subscription caps an edge has unless configured otherwise.
pub const DEFAULT_CAPS: subscriptions::Caps =
    subscriptions::Caps { per_connection: 100, per_credential: 500, per_client: 2_000, total: 20_000 };

impl Config {
    /// The defaults, in front of `upstream`, listening on `listen`.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        Self {
            listen,
            upstream: upstream.into(),
            max_body_bytes: 256 * 1024,
            max_selections: 10_000,
            max_subscriptions_per_connection: DEFAULT_CAPS.per_connection,
            max_subscriptions_per_token: DEFAULT_CAPS.per_credential,
            max_subscriptions_per_client: DEFAULT_CAPS.per_client,
            max_subscriptions: DEFAULT_CAPS.total,
            threads: None,
            pass: Vec::new(),
            max_pass_body_bytes: 4 << 30,
            pages: Vec::new(),
            router_secret: None,
        }
    }

    fn caps(&self) -> subscriptions::Caps {
        subscriptions::Caps {
            per_connection: self.max_subscriptions_per_connection,
            per_credential: self.max_subscriptions_per_token,
            per_client: self.max_subscriptions_per_client,
            total: self.max_subscriptions,
        }
    }
}

/// What the edge's threads share: the configuration, the subscription counts and the documents that passed.
#[derive(Clone)]
struct Shared {
    cfg: Arc<Config>,
    /// `<upstream>/graphql`.
    graphql: Uri,
    subscriptions: Arc<subscriptions::Ledger>,
    /// Documents that passed [`check_document`], by their text, with whether they hold a subscription:
    /// clients send the same few operations over and over, and the verdict depends on the text alone, so
    /// each is parsed once (refusals are not kept). Bounded by the bytes of the documents it holds.
    passed: moka::sync::Cache<String, Subscribes>,
    /// The static pages, read at start.
    pages: Arc<pages::Pages>,
}

impl Shared {
    fn new(cfg: Config) -> anyhow::Result<Self> {
        let graphql: Uri = format!("{}/graphql", cfg.upstream.trim_end_matches('/'))
            .parse()
            .map_err(|e| anyhow::anyhow!("EDGE_UPSTREAM `{}` is not a URL: {e}", cfg.upstream))?;
        anyhow::ensure!(
            graphql.scheme_str() == Some("http") && graphql.host().is_some(),
            "EDGE_UPSTREAM `{}` must be an http:// URL: the router sits beside the edge, on a private network",
            cfg.upstream
        );
        anyhow::ensure!(
            cfg.pass.is_empty()
                || cfg.router_secret.as_ref().is_some_and(|s| secrecy::ExposeSecret::expose_secret(s).len() >= 32),
            "EDGE_PASS needs ROUTER_SECRET (at least 32 bytes): the subgraphs demand it of passed requests"
        );
        let subscriptions = subscriptions::Ledger::new(cfg.caps());
        let passed = moka::sync::Cache::builder()
            .weigher(|query: &String, _: &Subscribes| u32::try_from(query.len()).unwrap_or(u32::MAX))
            .max_capacity(PASSED_CACHE_BYTES)
            .build();
        let pages = Arc::new(pages::Pages::load(&cfg.pages)?);
        Ok(Self { cfg: Arc::new(cfg), graphql, subscriptions, passed, pages })
    }
}

/// The client that forwards requests to the router: hyper's own (a measured third cheaper per request than
/// reqwest's on top of it; `benches/hop.rs`), one per thread so its connections live on that thread.
type Upstream = hyper_util::client::legacy::Client<HttpConnector, Body>;

fn upstream_client() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // Answers are small and must go out at once.
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(256)
        // Idle connections are closed after 90 s, by a timer (without one they go only when next used).
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// The longest wait for the router's answer to begin, and then between two chunks of it (a long `@defer`
/// stream keeps sending), not for the whole of it.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One thread's edge.
struct Edge {
    shared: Shared,
    http: Upstream,
}

/// Whether a document that passed holds a subscription operation.
type Subscribes = bool;

/// Most bytes of documents the edge remembers as checked.
const PASSED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

impl Edge {
    fn cfg(&self) -> &Config {
        &self.shared.cfg
    }

    /// Whether `query` holds a subscription, or why it is refused; a document that passed before is not
    /// parsed again.
    fn check(&self, query: &str) -> Result<Subscribes, String> {
        if let Some(subscribes) = self.shared.passed.get(query) {
            return Ok(subscribes);
        }
        let subscribes = check_document(query, self.cfg().max_selections)?;
        self.shared.passed.insert(query.to_owned(), subscribes);
        Ok(subscribes)
    }

    /// [`Edge::check`] for a request: a large document that was not checked before is parsed on the
    /// blocking pool, so its parse does not hold up the other connections of this thread's runtime.
    async fn check_request(&self, query: &str) -> Result<Subscribes, String> {
        if query.len() <= INLINE_CHECK_BYTES {
            return self.check(query);
        }
        if let Some(subscribes) = self.shared.passed.get(query) {
            return Ok(subscribes);
        }
        let (owned, max) = (query.to_owned(), self.cfg().max_selections);
        let subscribes = tokio::task::spawn_blocking(move || check_document(&owned, max))
            .await
            .map_err(|_| "the query could not be checked".to_owned())??;
        self.shared.passed.insert(query.to_owned(), subscribes);
        Ok(subscribes)
    }
}

/// Documents longer than this are checked off the serving thread ([`Edge::check_request`]).
const INLINE_CHECK_BYTES: usize = 16 * 1024;

fn app(shared: Shared) -> Router {
    let edge = Arc::new(Edge { shared, http: upstream_client() });
    Router::new()
        .route("/graphql", get(websocket_or_get).post(post))
        .route("/health", get(|| async { "ok" }))
        .fallback(pages_or_pass)
        .with_state(edge)
}

/// A page the edge serves itself, or else a pass route (or 404).
async fn pages_or_pass(state: State<Arc<Edge>>, request: Request) -> Response {
    match state.shared.pages.answer(request.method(), request.uri().path(), request.headers()) {
        Some(page) => page,
        None => pass::pass(state, request).await,
    }
}

/// Serves the edge on `listener`, on the caller's runtime, until `shutdown` (tests and benchmarks; the
/// `edge` binary runs [`run`]).
pub async fn serve(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    kernel::server::serve(listener, app(Shared::new(cfg)?), shutdown).await
}

/// Serves the edge on `cfg.listen` with `threads` threads until `shutdown` (the `edge` binary): [`start`],
/// then [`Running::wait`].
pub fn run(cfg: Config, threads: usize, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    start(cfg, threads, shutdown)?.wait()
}

/// Cancels the edge's shutdown token when dropped: a serving thread holds one, so its end — an error, a
/// panic, or shutdown itself — stops every thread.
struct StopOnExit(tokio_util::sync::CancellationToken);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The edge's serving threads, listening.
pub struct Running {
    /// The address they listen on (`cfg.listen`, with the port the system chose if it was 0).
    pub addr: SocketAddr,
    threads: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Waits until every thread has stopped (after `shutdown`); the first error any of them ended with.
    pub fn wait(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for t in self.threads {
            let ended = t.join().map_err(|_| anyhow::anyhow!("an edge thread panicked")).and_then(|r| r);
            if let (Err(e), true) = (ended, first.is_ok()) {
                first = Err(e);
            }
        }
        first
    }
}

/// Starts `threads` threads serving the edge on `cfg.listen` until `shutdown`, and returns once it listens.
/// Each thread runs a single-threaded runtime that accepts on the one listening socket and keeps its own
/// connections to the router, so a request is served start to end on one thread, without the wake-ups of
/// tasks moving between threads (measured: half the edge's CPU per request; `benches/hop.rs`). The
/// threads share the subscription counts and the checked documents.
pub fn start(cfg: Config, threads: usize, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<Running> {
    let shared = Shared::new(cfg)?;
    let listen = shared.cfg.listen;
    let listener = std::net::TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let started = listener.try_clone().map_err(anyhow::Error::from).and_then(|listener| {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            let thread = std::thread::Builder::new().name(format!("edge-{i}")).spawn(move || {
                // A thread that ends with an error or a panic stops the others: the edge does not go on
                // with fewer threads than it was given, and `wait` reports why.
                let stop_all = StopOnExit(shutdown.clone());
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(listener)?;
                            kernel::server::serve(listener, app(shared), shutdown).await
                        })
                    });
                drop(stop_all);
                served
            })?;
            Ok(thread)
        });
        match started {
            Ok(thread) => handles.push(thread),
            Err(e) => {
                shutdown.cancel();
                let _ = Running { addr, threads: handles }.wait();
                return Err(e.context(format!("starting edge thread {i}")));
            }
        }
    }
    Ok(Running { addr, threads: handles })
}

/// A graphql-transport-ws `error` message for subscription `id`.
fn error_message(id: &str, code: Code, why: &str) -> Message {
    let error = serde_json::json!({ "id": id, "type": "error", "payload": [{
        "message": why, "extensions": { "code": code.as_str() } }] });
    Message::Text(error.to_string().into())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": Code::BadUserInput.as_str() } }] });
    (status, Json(body)).into_response()
}

/// Whether a document holds a subscription operation, or why it is refused.
fn check_document(query: &str, max_selections: usize) -> Result<Subscribes, String> {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    // Parsing recurses per level of nesting: a deeper document would overflow the stack (and abort the
    // process for every client), so it is measured first, without parsing.
    kernel::server::within_nesting(query)?;
    let doc = async_graphql::parser::parse_query(query).map_err(|e| format!("the query does not parse: {e}"))?;
    if kernel::server::expanded_selections(&doc, max_selections) > max_selections {
        return Err(format!(
            "the operation selects more than {max_selections} fields once its fragments are expanded (or its \
             fragments spread each other in a cycle)"
        ));
    }
    let subscription = |op: &async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>| {
        op.node.ty == OperationType::Subscription
    };
    Ok(match &doc.operations {
        DocumentOperations::Single(op) => subscription(op),
        DocumentOperations::Multiple(ops) => ops.values().any(subscription),
    })
}

/// Headers that belong to one hop and are not forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

async fn post(State(edge): State<Arc<Edge>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let essence = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if essence != "application/json" {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "GraphQL requests must be application/json");
    }
    let max = edge.cfg().max_body_bytes;
    let bytes = match read_body(body, max).await {
        BodyRead::Read(b) => b,
        BodyRead::TooLarge => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body is larger than {max} bytes"))
        }
        BodyRead::Broken => return refuse(StatusCode::BAD_REQUEST, "the request body could not be read in time"),
    };
    let request = match GraphQLRequest::read(&bytes) {
        Ok(r) => r,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let subscribes = match edge.check_request(&request.query).await {
        Ok(subscribes) => subscribes,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    // A subscription over HTTP (SSE, multipart) counts like one over WebSocket, for as long as its answer
    // streams. A document holding a subscription is counted whichever of its operations is picked.
    let lease = if subscribes {
        let credential = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        match edge.shared.subscriptions.admit(credential, peer.ip(), 0) {
            Ok(lease) => Some(lease),
            Err(why) => {
                let body = serde_json::json!({ "errors": [{ "message": why, "extensions": { "code": Code::QuotaExceeded.as_str() } }] });
                return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            }
        }
    } else {
        None
    };
    // What goes on is what was checked, re-encoded: never the client's bytes, which another JSON reader
    // could read differently (a second `query` key, an escape this reader refused).
    let Ok(checked) = serde_json::to_vec(&request) else {
        return refuse(StatusCode::BAD_REQUEST, "the body is not a GraphQL request");
    };
    forward(&edge, &parts.headers, Bytes::from(checked), lease).await
}

/// One GraphQL request as the edge reads it — strictly: a key twice, a string that is not valid Unicode
/// (a lone surrogate escape), JSON nested deeper than 128 levels or a `query` that is not a string is
/// refused, and keys other than these four are dropped. Batches and persisted-query hashes alone (no
/// `query`) are not served.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphQLRequest {
    query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operation_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variables: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extensions: Option<serde_json::Value>,
}

impl GraphQLRequest {
    fn read(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                "the body is not a GraphQL request".to_owned()
            } else {
                // serde's own wording of a data error names keys, never the caller's values.
                format!(
                    "the body is not a GraphQL request with a query: {}",
                    e.to_string().split(" at line").next().unwrap_or("")
                )
            }
        })
    }
}

/// Most bytes of an oversize body read (and thrown away) so the client, still sending, gets its 413 rather
/// than a reset connection; beyond it, or after five seconds, the connection is dropped.
const DRAIN_CAP: usize = 16 * 1024 * 1024;

enum BodyRead {
    Read(Bytes),
    TooLarge,
    Broken,
}

/// The body if it is at most `max` bytes; `TooLarge` (after draining what a client may still be sending,
/// up to [`DRAIN_CAP`]) when it is larger; `Broken` when it could not be read (an error, or longer than
/// five seconds to arrive).
async fn read_body(body: Body, max: usize) -> BodyRead {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                seen += chunk.len();
                if seen <= max {
                    buf.extend_from_slice(&chunk);
                } else if seen > DRAIN_CAP {
                    return BodyRead::TooLarge;
                }
            }
            Ok(None) if seen <= max => return BodyRead::Read(Bytes::from(buf)),
            Ok(None) => return BodyRead::TooLarge,
            Ok(Some(Err(_))) | Err(_) if seen > max => return BodyRead::TooLarge,
            Ok(Some(Err(_))) | Err(_) => return BodyRead::Broken,
        }
    }
}

/// Sends `body` to the router and streams its answer back; `lease`, a subscription's place in the counts,
/// is held until the answer ends.
async fn forward(edge: &Edge, headers: &HeaderMap, body: Bytes, lease: Option<subscriptions::Lease>) -> Response {
    let mut req = axum::http::Request::post(edge.shared.graphql.clone());
    for (name, value) in headers {
        if !hop_by_hop(name) {
            req = req.header(name, value);
        }
    }
    let unavailable = |why: &dyn std::fmt::Display| {
        tracing::warn!(error = %why, "the router did not answer");
        let body = serde_json::json!({ "errors": [{ "message": "the router is unavailable", "extensions": { "code": Code::Internal.as_str() } }] });
        (StatusCode::BAD_GATEWAY, Json(body)).into_response()
    };
    let req = match req.body(Body::from(body)) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("the request cannot be forwarded: {e}")),
    };
    let upstream = match tokio::time::timeout(READ_TIMEOUT, edge.http.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return unavailable(&e),
        Err(_) => return unavailable(&"no answer in time"),
    };
    let (parts, incoming) = upstream.into_parts();
    let mut resp = Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            resp = resp.header(name, value);
        }
    }
    // Chunk by chunk, each within the read timeout; the lease (a subscription's) is held until the end.
    let chunks = futures::stream::unfold(
        (http_body_util::BodyDataStream::new(incoming), lease),
        |(mut stream, lease)| async move {
            match tokio::time::timeout(READ_TIMEOUT, stream.next()).await {
                Ok(Some(chunk)) => Some((chunk.map_err(axum::Error::new), (stream, lease))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new("the router sent nothing in time")), (stream, lease))),
            }
        },
    );
    resp.body(Body::from_stream(chunks)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// WebSocket upgrades are proxied to the router; plain GETs (GraphQL over GET) are refused.
async fn websocket_or_get(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let credential = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let protocol = parts.headers.get(header::SEC_WEBSOCKET_PROTOCOL).cloned();
    let forwarded: Vec<(HeaderName, axum::http::HeaderValue)> = parts
        .headers
        .iter()
        .filter(|(n, _)| matches!(n.as_str(), "authorization" | "traceparent" | "x-correlation-id"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "use POST for queries and mutations");
    };
    let max = edge.cfg().max_body_bytes;
    let upgrade = upgrade.protocols(["graphql-transport-ws", "graphql-ws"]).max_message_size(max).max_frame_size(max);
    upgrade.on_upgrade(move |client| async move {
        let who = Who { credential: credential.unwrap_or_default(), client: peer.ip() };
        if let Err(e) = relay(edge, client, protocol, forwarded, who).await {
            tracing::debug!(error = %e, "WebSocket relay ended");
        }
    })
}

/// Whose subscriptions a connection holds: its credential (empty until one is given) and its address.
struct Who {
    credential: String,
    client: std::net::IpAddr,
}

async fn relay(
    edge: Arc<Edge>,
    client: WebSocket,
    protocol: Option<axum::http::HeaderValue>,
    headers: Vec<(HeaderName, axum::http::HeaderValue)>,
    mut who: Who,
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Up;
    let url = format!("{}/graphql", edge.cfg().upstream.trim_end_matches('/')).replacen("http", "ws", 1);
    let mut req = url.into_client_request()?;
    if let Some(p) = protocol {
        req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    for (n, v) in headers {
        req.headers_mut().insert(n, v);
    }
    // Events are small and must go out at once: no Nagle on the upstream connection either.
    let connect = tokio_tungstenite::connect_async_with_config(req, None, true);
    let (upstream, _) = tokio::time::timeout(Duration::from_secs(10), connect).await??;
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut client_tx, mut client_rx) = client.split();
    let (reply_tx, mut reply_rx) = tokio::sync::mpsc::channel::<Message>(16);
    // The connection's live subscriptions, each holding its place in the edge's counts until the client
    // or the server ends it, or the connection ends (the map is dropped with the relay).
    let leases = std::sync::Mutex::new(HashMap::<String, subscriptions::Lease>::new());
    let to_router = async {
        while let Some(Ok(msg)) = client_rx.next().await {
            let up = match msg {
                Message::Text(t) => match Frame::check(t.as_str(), |q| edge.check(q).err()) {
                    Checked::Forward { text, kind } => {
                        match kind {
                            Kind::Init { credential } if who.credential.is_empty() => {
                                who.credential = credential.unwrap_or_default();
                            }
                            Kind::Subscribe(id) => {
                                // A second subscribe for a live id goes on: the router closes the
                                // connection for it (4409), as the protocol says.
                                let refused = {
                                    let mut held = leases.lock().expect("leases lock");
                                    if held.contains_key(&id) {
                                        None
                                    } else {
                                        match edge.shared.subscriptions.admit(&who.credential, who.client, held.len()) {
                                            Ok(lease) => held.insert(id.clone(), lease).and(None),
                                            Err(why) => Some(why),
                                        }
                                    }
                                };
                                if let Some(why) = refused {
                                    let _ = reply_tx.send(error_message(&id, Code::QuotaExceeded, &why)).await;
                                    continue;
                                }
                            }
                            Kind::Complete(id) => {
                                leases.lock().expect("leases lock").remove(&id);
                            }
                            Kind::Init { .. } | Kind::Other => {}
                        }
                        Up::Text(text.into())
                    }
                    Checked::Refuse { id, why } => {
                        let _ = reply_tx.send(error_message(&id, Code::BadUserInput, &why)).await;
                        continue;
                    }
                    Checked::Invalid => {
                        // graphql-transport-ws: an invalid message closes the connection with 4400. The
                        // close goes out through the client-side task, which ends the relay once it has
                        // sent it; nothing more is read from the client meanwhile.
                        let frame = axum::extract::ws::CloseFrame { code: 4400, reason: "Invalid message".into() };
                        if reply_tx.send(Message::Close(Some(frame))).await.is_ok() {
                            std::future::pending::<()>().await;
                        }
                        break;
                    }
                },
                // graphql-transport-ws is text only: a binary frame would slip past the check above.
                Message::Binary(_) => break,
                Message::Ping(p) => Up::Ping(p),
                Message::Pong(p) => Up::Pong(p),
                Message::Close(_) => break,
            };
            if up_tx.send(up).await.is_err() {
                break;
            }
        }
        let _ = up_tx.close().await;
    };
    let to_client = async {
        loop {
            let msg = tokio::select! {
                m = up_rx.next() => match m {
                    Some(Ok(Up::Text(t))) => {
                        if let Some(id) = ended_subscription(t.as_str()) {
                            leases.lock().expect("leases lock").remove(&id);
                        }
                        Message::Text(t.as_str().into())
                    }
                    Some(Ok(Up::Binary(b))) => Message::Binary(b),
                    Some(Ok(Up::Ping(p))) => Message::Ping(p),
                    Some(Ok(Up::Pong(p))) => Message::Pong(p),
                    Some(Ok(Up::Close(f))) => Message::Close(f.map(|f| axum::extract::ws::CloseFrame {
                        code: f.code.into(),
                        reason: f.reason.as_str().into(),
                    })),
                    Some(Ok(Up::Frame(_))) => continue,
                    Some(Err(_)) | None => break,
                },
                r = reply_rx.recv() => match r { Some(m) => m, None => continue },
            };
            let closing = matches!(msg, Message::Close(_));
            if client_tx.send(msg).await.is_err() || closing {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    tokio::select! {
        _ = to_router => {}
        _ = to_client => {}
    }
    Ok(())
}

/// The id of the subscription a message from the router ends (`complete` or `error`), if it ends one.
/// Data messages, the bulk of the traffic, are not parsed.
fn ended_subscription(text: &str) -> Option<String> {
    if !(text.contains("\"complete\"") || text.contains("\"error\"")) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Ending {
        id: Option<String>,
        #[serde(rename = "type")]
        kind: String,
    }
    let m: Ending = serde_json::from_str(text).ok()?;
    matches!(m.kind.as_str(), "complete" | "error").then_some(m.id).flatten()
}

/// A graphql-transport-ws (or legacy graphql-ws) message, read as strictly as a POST body.
#[derive(serde::Deserialize, serde::Serialize)]
struct Frame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Box<serde_json::value::RawValue>>,
}

enum Checked {
    /// The message, re-encoded from what was read, and what it does.
    Forward { text: String, kind: Kind },
    /// A subscription the edge refuses: answered with an `error` for its id, the connection kept.
    Refuse { id: String, why: String },
    /// Not a message at all: the connection is closed.
    Invalid,
}

/// What a forwarded message does, as far as the edge's counts go.
#[derive(Debug, PartialEq)]
enum Kind {
    /// `connection_init`, with the credential in its payload if it has one.
    Init {
        credential: Option<String>,
    },
    /// Starts the subscription with this id.
    Subscribe(String),
    /// Ends the subscription with this id.
    Complete(String),
    Other,
}

impl Frame {
    /// Reads `text`; `check_document` says why a subscription's document is refused, if it is.
    fn check(text: &str, check_document: impl Fn(&str) -> Option<String>) -> Checked {
        let Ok(frame) = serde_json::from_str::<Frame>(text) else { return Checked::Invalid };
        // connection_init's credential, read from the payload as it is parsed.
        let mut credential = None;
        let payload = match (frame.kind.as_str(), &frame.payload) {
            ("subscribe" | "start", Some(raw)) => {
                let Some(id) = frame.id.clone() else { return Checked::Invalid };
                match GraphQLRequest::read(raw.get().as_bytes()) {
                    Ok(request) => {
                        if let Some(why) = check_document(&request.query) {
                            return Checked::Refuse { id, why };
                        }
                        serde_json::to_string(&request).ok()
                    }
                    Err(why) => return Checked::Refuse { id, why },
                }
            }
            ("subscribe" | "start", None) => return Checked::Invalid,
            // Other payloads (connection_init's, ping's) are read as JSON, bounded like any other.
            (kind, Some(raw)) => serde_json::from_str::<serde_json::Value>(raw.get()).ok().map(|v| {
                if kind == "connection_init" {
                    credential = kernel::server::payload_header(&v, "authorization");
                }
                v.to_string()
            }),
            (_, None) => None,
        };
        if frame.payload.is_some() && payload.is_none() {
            return Checked::Invalid;
        }
        let kind = match (frame.kind.as_str(), &frame.id) {
            ("connection_init", _) => Kind::Init { credential },
            ("subscribe" | "start", Some(id)) => Kind::Subscribe(id.clone()),
            ("complete" | "stop", Some(id)) => Kind::Complete(id.clone()),
            _ => Kind::Other,
        };
        let payload = payload.and_then(|p| serde_json::value::RawValue::from_string(p).ok());
        match serde_json::to_string(&Frame { payload, ..frame }) {
            Ok(text) => Checked::Forward { text, kind },
            Err(_) => Checked::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_that_expand_beyond_the_limit_are_refused_without_expanding() {
        let mut q = String::from("query { ...F0 }\n");
        for i in 0..6 {
            q.push_str(&format!("fragment F{i} on Query {{ {} }}\n", vec![format!("...F{}", i + 1); 30].join(" ")));
        }
        q.push_str("fragment F6 on Query { __typename }\n");
        let started = std::time::Instant::now();
        assert!(check_document(&q, 10_000).is_err());
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(check_document("{ __typename }", 10_000), Ok(false));
        assert!(check_document("{ ", 10_000).unwrap_err().contains("does not parse"));
        assert_eq!(check_document("subscription { e }", 10_000), Ok(true));
        assert_eq!(check_document("query A { a } subscription B { e }", 10_000), Ok(true));
    }

    #[test]
    fn documents_nested_past_the_limit_are_refused_before_parsing() {
        let deep = format!("{{ __type(name: {}\"Query\"{}) {{ name }} }}", "[".repeat(5_000), "]".repeat(5_000));
        assert!(check_document(&deep, 10_000).unwrap_err().contains("nests more than"));
    }

    #[test]
    fn a_post_is_read_strictly_and_forwarded_as_read() {
        // The first of two `query` keys could be the one another reader keeps.
        let twice = br#"{"query":"{ ...A } fragment A on Query { ...A }","query":"{ __typename }"}"#;
        assert!(GraphQLRequest::read(twice).unwrap_err().contains("duplicate field `query`"));
        let lone = br#"{"query":"{ __typename }","operationName":"\ud800"}"#;
        assert!(GraphQLRequest::read(lone).is_err());
        let ok = GraphQLRequest::read(br#"{"query":"{ a }","variables":{"x":1},"extra":true}"#).unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"query":"{ a }","variables":{"x":1}}"#);
    }

    #[test]
    fn websocket_frames_are_read_strictly_and_forwarded_as_read() {
        let bomb = "{ ...A } fragment A on Query { ...B ...B } fragment B on Query { ...A ...A }";
        const CHECK: fn(&str) -> Option<String> = |q| check_document(q, 10_000).err();
        let refused = |text: &str| matches!(Frame::check(text, CHECK), Checked::Refuse { .. });
        let invalid = |text: &str| matches!(Frame::check(text, CHECK), Checked::Invalid);
        // A frame this reader cannot read (a lone surrogate in its id) is not relayed unread.
        assert!(invalid(&format!(r#"{{"id":"\ud800","type":"subscribe","payload":{{"query":"{bomb}"}}}}"#)));
        assert!(invalid("not json"));
        assert!(invalid(r#"{"type":"subscribe","id":"1"}"#), "a subscribe without a payload");
        // Two `payload` keys: refused, whichever the router would read.
        let twice = format!(
            r#"{{"id":"1","type":"subscribe","payload":{{"query":"{bomb}"}},"payload":{{"query":"{{ a }}"}}}}"#
        );
        assert!(invalid(&twice));
        // Two `query` keys inside the payload.
        assert!(refused(&format!(
            r#"{{"id":"1","type":"subscribe","payload":{{"query":"{bomb}","query":"{{ a }}"}}}}"#
        )));
        assert!(refused(&format!(r#"{{"id":"1","type":"subscribe","payload":{{"query":"{bomb}"}}}}"#)));
        match Frame::check(r#"{"id":"1","type":"subscribe","payload":{"query":"{ a }","x":1},"y":2}"#, CHECK) {
            Checked::Forward { text, kind } => {
                assert_eq!(text, r#"{"id":"1","type":"subscribe","payload":{"query":"{ a }"}}"#);
                assert_eq!(kind, Kind::Subscribe("1".into()));
            }
            _ => panic!("a plain subscription is forwarded"),
        }
        match Frame::check(r#"{"type":"connection_init","payload":{"headers":{"authorization":"Bearer t"}}}"#, CHECK) {
            Checked::Forward { text, kind } => {
                assert!(text.contains("Bearer t"));
                assert_eq!(kind, Kind::Init { credential: Some("Bearer t".into()) });
            }
            _ => panic!("connection_init is forwarded"),
        }
        match Frame::check(r#"{"id":"7","type":"complete"}"#, CHECK) {
            Checked::Forward { kind, .. } => assert_eq!(kind, Kind::Complete("7".into())),
            _ => panic!("complete is forwarded"),
        }
    }

    #[test]
    fn the_routers_complete_and_error_end_a_subscription_and_its_data_does_not() {
        assert_eq!(ended_subscription(r#"{"id":"3","type":"complete"}"#).as_deref(), Some("3"));
        assert_eq!(ended_subscription(r#"{"id":"4","type":"error","payload":[]}"#).as_deref(), Some("4"));
        assert_eq!(ended_subscription(r#"{"id":"5","type":"next","payload":{"data":{"x":"complete"}}}"#), None);
        assert_eq!(ended_subscription(r#"{"id":"5","type":"next","payload":{"data":{"x":1}}}"#), None);
    }
}
