//! The broker side of tests: a tap on the events exchange, and a TCP proxy for fault injection.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use kernel::broker::{Broker, EXCHANGE};
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;

/// Every message published to the events exchange under `pattern`, on an exclusive queue that goes away
/// with the tap.
pub struct Tap {
    _channel: lapin::Channel,
    consumer: lapin::Consumer,
}

impl Tap {
    pub async fn new(pattern: &str) -> Tap {
        let ch = Broker::new(crate::AMQP_URL.to_owned().into()).channel().await.expect("broker");
        let opts = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
        let q = ch.queue_declare("", opts, FieldTable::default()).await.unwrap();
        ch.queue_bind(q.name().as_str(), EXCHANGE, pattern, QueueBindOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let consume = BasicConsumeOptions { no_ack: true, ..Default::default() };
        let consumer = ch.basic_consume(q.name().as_str(), "tap", consume, FieldTable::default()).await.unwrap();
        Tap { _channel: ch, consumer }
    }

    /// The next delivery whose routing key is `routing_key` and envelope tenant is `tenant`, or `None` after
    /// `timeout`.
    pub async fn next(
        &mut self,
        routing_key: &str,
        tenant: &str,
        timeout: Duration,
    ) -> Option<lapin::message::Delivery> {
        tokio::time::timeout(timeout, async {
            while let Some(Ok(d)) = self.consumer.next().await {
                let v: Value = serde_json::from_slice(&d.data).unwrap_or_default();
                if d.routing_key.as_str() == routing_key && v["tenantId"] == tenant {
                    return Some(d);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// The next envelope of `event_type` (any domain) for `tenant`; panics after `timeout`.
    pub async fn event(&mut self, event_type: &str, tenant: &str, timeout: Duration) -> Value {
        tokio::time::timeout(timeout, async {
            while let Some(Ok(d)) = self.consumer.next().await {
                let v: Value = serde_json::from_slice(&d.data).unwrap_or_default();
                if v["eventType"] == event_type && v["tenantId"] == tenant {
                    return v;
                }
            }
            panic!("the tap closed");
        })
        .await
        .unwrap_or_else(|_| panic!("no {event_type} for {tenant} within {timeout:?}"))
    }
}

/// How many consumers `queue` has (0 when it does not exist yet).
pub async fn consumers_on(queue: &str) -> u32 {
    let Ok(ch) = Broker::new(crate::AMQP_URL.to_owned().into()).channel().await else { return 0 };
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    match ch.queue_declare(queue, passive, FieldTable::default()).await {
        Ok(q) => q.consumer_count(),
        Err(_) => 0,
    }
}

/// Waits until `queue` has a consumer (a started app's durable consumer has declared and bound it), so a
/// message published next is not lost to a queue that does not exist yet.
pub async fn consuming(queue: &str) {
    crate::eventually(&format!("a consumer on {queue}"), Duration::from_secs(10), || async {
        consumers_on(queue).await > 0
    })
    .await
}

/// A TCP proxy that can be taken down (connections cut, new ones refused) or stalled (connections stay open
/// but nothing gets through), and brought back, to stand between an app and a service.
pub struct Proxy {
    pub addr: SocketAddr,
    state: tokio::sync::watch::Sender<Link>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Up,
    Down,
    Stalled,
}

/// Copies `from` → `to` while the link is up; waits while it is stalled; stops when it goes down.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: tokio::sync::watch::Receiver<Link>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = link.wait_for(|l| *l == Link::Down) => return,
        };
        // Hold the bytes while stalled; drop the connection if it goes down meanwhile.
        match link.wait_for(|l| *l != Link::Stalled).await {
            Ok(l) if *l == Link::Up => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, rx) = tokio::sync::watch::channel(Link::Up);
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *rx.borrow() == Link::Down {
                    drop(client);
                    continue;
                }
                let rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, rx.clone()), pump(sr, cw, rx));
                });
            }
        });
        Self { addr, state }
    }

    /// Up: traffic flows. Down: connections are cut and new ones refused.
    pub fn set_up(&self, up: bool) {
        self.state.send_replace(if up { Link::Up } else { Link::Down });
    }

    /// Stalled: connections stay open and accept bytes, but nothing gets through until the link is up again.
    pub fn stall(&self) {
        self.state.send_replace(Link::Stalled);
    }

    /// An AMQP URL through this proxy (guest credentials).
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }
}
