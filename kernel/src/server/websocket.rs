//! Subscriptions over WebSocket (graphql-transport-ws), with the connection's limits.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Data, ObjectType, SubscriptionType};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::Message;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::auth::{Caller, Termination};
use crate::context::RequestContext;
use crate::error::Code;

use super::{secret_matches, AppState, ROUTER_SECRET_HEADER};

/// A header from a graphql-transport-ws `connection_init` payload: top-level fields or a nested `headers`
/// object, names matched case-insensitively.
pub fn payload_header(payload: &serde_json::Value, name: &str) -> Option<String> {
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
pub(super) async fn websocket<Q, M, S>(
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
                    return Err(crate::Error::unauthenticated("requests must come through the router").to_graphql());
                }
                let auth = upgrade_auth.or_else(|| payload_header(&payload, "authorization"));
                let token = auth
                    .as_deref()
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim().to_owned())
                    .ok_or_else(|| crate::Error::unauthenticated("missing bearer token").to_graphql())?;
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
                            "extensions": { "code": Code::QuotaExceeded.as_str() },
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
