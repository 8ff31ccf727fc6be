//! Subscriptions over graphql-transport-ws, through the public endpoint, that outlive their connection.
//!
//! [`Client::subscribe`] opens a WebSocket to `/graphql` (protocol `graphql-transport-ws`, the bearer
//! token in `connection_init`'s `Authorization`, as the routers take it) and subscribes. When the
//! connection drops — a router restarting, a proxy timing out, the network — it connects again with
//! exponential backoff and subscribes again with a fresh operation, until the subscription reaches its
//! end (its `is_final` item, or an error from the API), the consumer drops the stream, or the connection
//! has failed for longer than [`Reconnect::give_up_after`]. A token that expired while subscribed is
//! fetched again (client credentials) before resubscribing.
//!
//! What a resubscription resumes from is the server's to say: `processState` answers with the state as it
//! is now and then each change, so a watch loses nothing (the domain methods drop what the consumer has
//! already seen); an event stream (`tenantEvents`, `workflowEvents`, `artifactChanges`) has no replay, so
//! events published while no connection was open are not seen — the domain methods say so.

use std::time::{Duration, Instant};

use cynic::{GraphQlResponse, StreamingOperation};
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_tungstenite::tungstenite;

use crate::{backoff, Client, Error, ErrorCode};

/// How a subscription reconnects.
#[derive(Clone, Copy, Debug)]
pub struct Reconnect {
    /// The wait before the first reconnection; each next one doubles (with jitter).
    pub first_wait: Duration,
    /// The longest wait between two attempts.
    pub max_wait: Duration,
    /// How long the connection may keep failing, counted from its first failure since the last item,
    /// before the stream ends with [`Error::Live`].
    pub give_up_after: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(5),
            give_up_after: Duration::from_secs(120),
        }
    }
}

/// Pings the server this often; a connection whose pings go unanswered is dropped (and reconnected).
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// The longest a connection and its `connection_ack` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl Client {
    /// Subscribes with the operation `make` builds (again at each reconnection), yielding each item until
    /// one for which `is_final` holds (after yielding it), an error from the API, or giving up (see the
    /// [module](crate::live) docs). The domain methods ([`Client::watch_workflow`],
    /// [`Client::tenant_events`], …) are built on it.
    pub fn subscribe<Q, V, M, F>(&self, make: M, is_final: F) -> impl Stream<Item = Result<Q, Error>> + Send + 'static
    where
        Q: DeserializeOwned + Send + Unpin + 'static,
        V: Serialize + Send + Sync + Unpin + 'static,
        M: Fn() -> StreamingOperation<Q, V> + Send + Sync + 'static,
        F: Fn(&Q) -> bool + Send + Sync + 'static,
    {
        futures::stream::unfold(Live::new(self.clone(), make, is_final), Live::next)
    }

    /// How this client's subscriptions reconnect ([`Reconnect::default`] unless set).
    pub fn with_reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The WebSocket URL of the public endpoint's `/graphql`.
    fn ws_url(&self) -> String {
        let base = self.base();
        let ws = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.trim_start_matches("http://")),
        };
        format!("{ws}/graphql")
    }
}

type Responses<Q> = BoxStream<'static, Result<GraphQlResponse<Q, serde_json::Value>, graphql_ws_client::Error>>;

struct Live<Q, M, F> {
    client: Client,
    make: M,
    is_final: F,
    sub: Option<Responses<Q>>,
    /// The open connection's: when it opened, the token it presented, whether it has delivered an item.
    opened_at: Instant,
    token: String,
    delivered: bool,
    /// Failed attempts in a row (the backoff's exponent).
    attempt: u32,
    /// Since when no connection has been healthy.
    failing_since: Option<Instant>,
    /// Connections in a row the server ended at once without an item.
    refused: u32,
    done: bool,
}

/// A connection that stayed open this long was healthy, whatever ended it (a token's expiry ends every
/// subscription, items or not).
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Connections in a row the server may end at once, with nothing delivered, before the stream ends: Hive
/// Router turns a subgraph's refusal (a bad argument, a missing permission, an unknown instance) into a
/// bare `complete`, so such a subscription would otherwise be resubscribed for ever.
const MAX_REFUSED: u32 = 3;

impl<Q, V, M, F> Live<Q, M, F>
where
    Q: DeserializeOwned + Send + Unpin + 'static,
    V: Serialize + Send + Sync + Unpin + 'static,
    M: Fn() -> StreamingOperation<Q, V> + Send + Sync + 'static,
    F: Fn(&Q) -> bool + Send + Sync + 'static,
{
    fn new(client: Client, make: M, is_final: F) -> Self {
        Self {
            client,
            make,
            is_final,
            sub: None,
            opened_at: Instant::now(),
            token: String::new(),
            delivered: false,
            attempt: 0,
            failing_since: None,
            refused: 0,
            done: false,
        }
    }

    async fn next(mut self) -> Option<(Result<Q, Error>, Self)> {
        loop {
            if self.done {
                return None;
            }
            let Some(sub) = self.sub.as_mut() else {
                match self.connect().await {
                    Ok(sub) => {
                        self.sub = Some(sub);
                        (self.opened_at, self.delivered) = (Instant::now(), false);
                    }
                    Err(e) if !e.retryable() => return self.end(e),
                    Err(e) => {
                        if let Some(gave_up) = self.failed(&e).await {
                            return self.end(gave_up);
                        }
                    }
                }
                continue;
            };
            match sub.next().await {
                Some(Ok(resp)) => {
                    if let Some(e) = resp.errors.as_ref().and_then(|e| e.first()) {
                        let e = Error::from_graphql(e);
                        // The token expired or was revoked while subscribed: another, and subscribe again.
                        if e.code() == Some(&ErrorCode::Unauthenticated)
                            && self.client.auth.renewable()
                            && self.refused + 1 < MAX_REFUSED
                        {
                            self.refused += 1;
                            self.client.auth.forget(&self.token).await;
                            self.sub = None;
                            if let Some(gave_up) = self.failed(&e).await {
                                return self.end(gave_up);
                            }
                            continue;
                        }
                        return self.end(e);
                    }
                    let Some(data) = resp.data else { continue };
                    (self.delivered, self.attempt, self.failing_since, self.refused) = (true, 0, None, 0);
                    self.done = (self.is_final)(&data);
                    return Some((Ok(data), self));
                }
                // An answer this client cannot read (a value newer than it): resubscribing would only
                // skip more, so the stream ends with it.
                Some(Err(graphql_ws_client::Error::Decode(e))) => {
                    return self.end(Error::Live(format!("an answer this client cannot read: {e}")))
                }
                // The connection broke, or the server completed the subscription before its final item (a
                // token's expiry ends it): connect and subscribe again.
                Some(Err(_)) | None => {
                    self.sub = None;
                    if let Some(gave_up) = self.closed().await {
                        return self.end(gave_up);
                    }
                }
            }
        }
    }

    fn end(mut self, e: Error) -> Option<(Result<Q, Error>, Self)> {
        self.done = true;
        self.sub = None;
        Some((Err(e), self))
    }

    /// The open connection ended: healthy (it delivered, or lasted, or its token was due) means reconnect
    /// at once; ended at once with nothing means the server may be refusing it — a new token, and after a
    /// few such ends, give up.
    async fn closed(&mut self) -> Option<Error> {
        let expired = self.client.auth.renewable() && self.client.auth.due(&self.token).await;
        if self.delivered || expired || self.opened_at.elapsed() >= HEALTHY_AFTER {
            (self.attempt, self.failing_since, self.refused) = (0, None, 0);
            return None;
        }
        self.refused += 1;
        if self.refused >= MAX_REFUSED {
            return Some(Error::Live(format!(
                "the server ended the subscription {MAX_REFUSED} times at once, with nothing delivered: check \
                 its arguments and the credentials' permissions"
            )));
        }
        // Perhaps the token is no longer taken (revoked, a retired key): the next connection fetches one.
        self.client.auth.forget(&self.token).await;
        self.failed(&Error::Live("the server ended the subscription at once".into())).await
    }

    /// Waits before the next attempt; the error to end with once no connection has been healthy for too
    /// long.
    async fn failed(&mut self, e: &Error) -> Option<Error> {
        let policy = self.client.reconnect;
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= policy.give_up_after {
            return Some(Error::Live(format!("gave up after {:?}: {e}", policy.give_up_after)));
        }
        tokio::time::sleep(backoff(self.attempt, policy.first_wait, policy.max_wait)).await;
        self.attempt = self.attempt.saturating_add(1);
        None
    }

    async fn connect(&mut self) -> Result<Responses<Q>, Error> {
        let token = self.client.bearer().await?;
        self.token.clone_from(&token);
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(self.client.ws_url())
            .map_err(|e| Error::Config(format!("the subscription URL: {e}")))?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", tungstenite::http::HeaderValue::from_static("graphql-transport-ws"));
        let opened = async {
            let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| match e {
                tungstenite::Error::Http(resp) => Error::Http {
                    status: resp.status().as_u16(),
                    body: resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
                },
                other => Error::Live(other.to_string()),
            })?;
            graphql_ws_client::Client::build(Ws(socket))
                .payload(serde_json::json!({ "Authorization": format!("Bearer {token}") }))
                .map_err(|e| Error::Live(e.to_string()))?
                .keep_alive_interval(KEEP_ALIVE)
                .subscribe(Subscription((self.make)()))
                .await
                .map_err(|e| Error::Live(e.to_string()))
        };
        let sub = tokio::time::timeout(CONNECT_TIMEOUT, opened)
            .await
            .map_err(|_| Error::Live(format!("no connection within {CONNECT_TIMEOUT:?}")))??;
        Ok(sub.boxed())
    }
}

/// A cynic subscription as graphql-ws-client sends it, answered with the API's error extensions kept
/// (its own cynic support drops them, and with them the error codes).
struct Subscription<Q, V>(StreamingOperation<Q, V>);

impl<Q, V: Serialize> Serialize for Subscription<Q, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<Q: DeserializeOwned, V: Serialize> graphql_ws_client::graphql::GraphqlOperation for Subscription<Q, V> {
    type Response = GraphQlResponse<Q, serde_json::Value>;
    type Error = serde_json::Error;

    fn decode(&self, data: serde_json::Value) -> Result<Self::Response, Self::Error> {
        serde_json::from_value(data)
    }
}

/// The workspace's tokio-tungstenite socket as a graphql-ws-client connection.
struct Ws(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>);

impl graphql_ws_client::Connection for Ws {
    async fn receive(&mut self) -> Option<graphql_ws_client::Message> {
        use graphql_ws_client::Message;
        loop {
            return match self.0.next().await? {
                Ok(tungstenite::Message::Text(text)) => Some(Message::Text(text.as_str().to_owned())),
                Ok(tungstenite::Message::Ping(_)) => Some(Message::Ping),
                Ok(tungstenite::Message::Pong(_)) => Some(Message::Pong),
                Ok(tungstenite::Message::Close(frame)) => Some(Message::Close {
                    code: frame.as_ref().map(|f| f.code.into()),
                    reason: frame.map(|f| f.reason.to_string()),
                }),
                Ok(tungstenite::Message::Binary(_) | tungstenite::Message::Frame(_)) => continue,
                Err(_) => None,
            };
        }
    }

    async fn send(&mut self, message: graphql_ws_client::Message) -> Result<(), graphql_ws_client::Error> {
        use graphql_ws_client::Message;
        let message = match message {
            Message::Text(text) => tungstenite::Message::Text(text.into()),
            Message::Close { code, reason } => {
                tungstenite::Message::Close(code.zip(reason).map(|(code, reason)| tungstenite::protocol::CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                }))
            }
            Message::Ping => tungstenite::Message::Ping(Default::default()),
            Message::Pong => tungstenite::Message::Pong(Default::default()),
        };
        self.0.send(message).await.map_err(|e| graphql_ws_client::Error::Send(e.to_string()))
    }
}

/// `events` unwrapped by `item`, each only once by the id `id` gives it (an event delivered again around a
/// reconnection is not yielded twice); errors pass through.
pub(crate) fn once_each<Q, T>(
    events: impl Stream<Item = Result<Q, Error>> + Send + 'static,
    item: impl Fn(Q) -> T + Send + 'static,
    id: impl Fn(&T) -> &str + Send + 'static,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static
where
    Q: Send + 'static,
    T: Send + 'static,
{
    let mut seen = Seen::default();
    events.filter_map(move |e| {
        let fresh = match e.map(&item) {
            Ok(e) => seen.first(id(&e)).then_some(Ok(e)),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(fresh)
    })
}

/// The ids of the last events a stream yielded.
#[derive(Default)]
struct Seen {
    order: std::collections::VecDeque<String>,
    ids: std::collections::HashSet<String>,
}

impl Seen {
    const KEEP: usize = 4096;

    /// Whether `id` is new (and remembers it).
    fn first(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.order.push_back(id.to_owned());
        self.ids.insert(id.to_owned());
        true
    }
}
