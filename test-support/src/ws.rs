//! A graphql-transport-ws client for tests of live subscriptions.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server did next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// A protocol message (`connection_ack`, `next`, `error`, `complete`, …).
    Message(Value),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
    /// Nothing within the wait.
    Silence,
}

pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    /// Opens `ws_url` with the graphql-transport-ws subprotocol, without sending anything yet.
    pub async fn open(ws_url: &str) -> WsClient {
        let mut req = ws_url.into_client_request().expect("ws url");
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connect");
        WsClient { socket }
    }

    /// Opens a connection and initialises it with the router secret and a bearer token (in the payload, as
    /// Hive Router sends them); panics unless the server acknowledges.
    pub async fn init(ws_url: &str, router_secret: &str, token: &str) -> WsClient {
        let mut c = WsClient::open(ws_url).await;
        c.send(json!({ "type": "connection_init", "payload": {
            kernel::server::ROUTER_SECRET_HEADER: router_secret, "Authorization": format!("Bearer {token}") } }))
            .await;
        match c.next(Duration::from_secs(5)).await {
            Next::Message(m) if m["type"] == "connection_ack" => c,
            other => panic!("no connection_ack: {other:?}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.socket.send(Message::Text(v.to_string().into())).await.expect("websocket send");
    }

    /// Starts a subscription with id `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    }

    /// The next protocol message or close within `wait` (pings are answered and skipped).
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::Silence,
                Ok(None) => return Next::Closed(1006, "gone".into()),
                Ok(Some(Err(e))) => return Next::Closed(1006, e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => return Next::Message(serde_json::from_str(t.as_str()).unwrap_or(Value::Null)),
                Message::Close(frame) => {
                    return match frame {
                        Some(f) => Next::Closed(f.code.into(), f.reason.to_string()),
                        None => Next::Closed(1005, String::new()),
                    }
                }
                _ => continue,
            }
        }
    }

    /// Like [`WsClient::next`], skipping subscription data (`next` messages).
    pub async fn next_control(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Next::Message(m) if m["type"] == "next" => continue,
                other => return other,
            }
        }
    }

    /// Whether the server sends a WebSocket ping within `wait` (other frames are skipped).
    pub async fn pinged_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
                _ => return false,
            }
        }
    }

    /// Waits up to `wait` for the server to close the connection; returns the code, or `None` if it stayed
    /// open (messages meanwhile are skipped).
    pub async fn closed_within(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Next::Closed(code, _) => return Some(code),
                Next::Silence => return None,
                Next::Message(_) => continue,
            }
        }
    }
}
