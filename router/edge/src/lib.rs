//! `edge`: the one public endpoint, in front of the router (Hive Router or Apollo Router).
//!
//! A router parses, validates and plans a document before any subgraph sees it, and a small document can
//! make that work explode: fragments that each spread the next one many times expand to billions of
//! fields ("billion laughs"), which Hive Router 0.2.19 has no limit for. The edge refuses such requests
//! before the router sees them — bodies over `MAX_BODY_BYTES` (413), non-JSON bodies (415), documents
//! that do not parse or whose selections, once fragments are expanded, exceed `MAX_SELECTIONS` (400 with
//! a coded GraphQL error) — counting each fragment once, so the check is linear in the document. Everything
//! else is proxied unchanged: HTTP (responses streamed, so `@defer` multipart works) and WebSocket
//! subscriptions (each `subscribe` message checked the same way).
//!
//!     edge --listen 127.0.0.1:4000 --upstream http://127.0.0.1:4100

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
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
}

impl Config {
    /// The defaults, in front of `upstream`, listening on `listen`.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        Self { listen, upstream: upstream.into(), max_body_bytes: 256 * 1024, max_selections: 10_000 }
    }
}

struct Edge {
    cfg: Config,
    http: reqwest::Client,
}

/// Serves the edge on `listener` until `shutdown`.
pub async fn serve(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        // Between chunks of an answer (a long `@defer` stream keeps sending), not for the whole of it.
        .read_timeout(Duration::from_secs(60))
        .build()?;
    let edge = Arc::new(Edge { cfg, http });
    let app = Router::new()
        .route("/graphql", get(websocket_or_get).post(post))
        .route("/health", get(|| async { "ok" }))
        .with_state(edge);
    kernel::server::serve(listener, app, shutdown).await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": Code::BadUserInput.as_str() } }] });
    (status, Json(body)).into_response()
}

/// Why a document is refused, if it is.
fn check_document(query: &str, max_selections: usize) -> Option<String> {
    let doc = match async_graphql::parser::parse_query(query) {
        Ok(doc) => doc,
        Err(e) => return Some(format!("the query does not parse: {e}")),
    };
    (kernel::server::expanded_selections(&doc, max_selections) > max_selections).then(|| {
        format!(
            "the operation selects more than {max_selections} fields once its fragments are expanded (or its \
             fragments spread each other in a cycle)"
        )
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

async fn post(State(edge): State<Arc<Edge>>, request: Request) -> Response {
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
    let max = edge.cfg.max_body_bytes;
    let bytes = match read_body(body, max).await {
        BodyRead::Read(b) => b,
        BodyRead::TooLarge => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body is larger than {max} bytes"))
        }
        BodyRead::Broken => return refuse(StatusCode::BAD_REQUEST, "the request body could not be read in time"),
    };
    let request: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "the body is not a GraphQL request"),
    };
    let Some(query) = request.get("query").and_then(|q| q.as_str()) else {
        // Batches and persisted-query hashes are not served.
        return refuse(StatusCode::BAD_REQUEST, "the body is not a GraphQL request with a query");
    };
    if let Some(why) = check_document(query, edge.cfg.max_selections) {
        return refuse(StatusCode::BAD_REQUEST, &why);
    }
    forward(&edge, &parts.headers, bytes).await
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

async fn forward(edge: &Edge, headers: &HeaderMap, body: Bytes) -> Response {
    let mut req = edge.http.post(format!("{}/graphql", edge.cfg.upstream.trim_end_matches('/')));
    for (name, value) in headers {
        if !hop_by_hop(name) {
            req = req.header(name, value);
        }
    }
    let upstream = match req.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "the router did not answer");
            let body = serde_json::json!({ "errors": [{ "message": "the router is unavailable", "extensions": { "code": Code::Internal.as_str() } }] });
            return (StatusCode::BAD_GATEWAY, Json(body)).into_response();
        }
    };
    let mut resp = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if !hop_by_hop(name) {
            resp = resp.header(name, value);
        }
    }
    resp.body(Body::from_stream(upstream.bytes_stream())).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// WebSocket upgrades are proxied to the router; plain GETs (GraphQL over GET) are refused.
async fn websocket_or_get(State(edge): State<Arc<Edge>>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
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
    let max = edge.cfg.max_body_bytes;
    let upgrade = upgrade.protocols(["graphql-transport-ws", "graphql-ws"]).max_message_size(max).max_frame_size(max);
    upgrade.on_upgrade(move |client| async move {
        if let Err(e) = relay(edge, client, protocol, forwarded).await {
            tracing::debug!(error = %e, "WebSocket relay ended");
        }
    })
}

async fn relay(
    edge: Arc<Edge>,
    client: WebSocket,
    protocol: Option<axum::http::HeaderValue>,
    headers: Vec<(HeaderName, axum::http::HeaderValue)>,
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Up;
    let url = format!("{}/graphql", edge.cfg.upstream.trim_end_matches('/')).replacen("http", "ws", 1);
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
    let max = edge.cfg.max_selections;
    let to_router = async {
        while let Some(Ok(msg)) = client_rx.next().await {
            let up = match msg {
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                    if matches!(v["type"].as_str(), Some("subscribe" | "start")) {
                        let query = v["payload"]["query"].as_str().unwrap_or_default();
                        if let Some(why) = check_document(query, max) {
                            let error = serde_json::json!({ "id": v["id"], "type": "error", "payload": [{
                                "message": why, "extensions": { "code": Code::BadUserInput.as_str() } }] });
                            let _ = reply_tx.send(Message::Text(error.to_string().into())).await;
                            continue;
                        }
                    }
                    Up::Text(t.as_str().into())
                }
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
                    Some(Ok(Up::Text(t))) => Message::Text(t.as_str().into()),
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
        assert!(check_document(&q, 10_000).is_some());
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(check_document("{ __typename }", 10_000).is_none());
        assert!(check_document("{ ", 10_000).unwrap().contains("does not parse"));
    }
}
