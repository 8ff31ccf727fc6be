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

/// A TCP proxy that can be taken down and brought back, to stand between an app and a service.
pub struct Proxy {
    pub addr: SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = tokio::sync::watch::channel(true);
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// An AMQP URL through this proxy (guest credentials).
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }
}
