//! RabbitMQ: one shared connection per process, reopened on demand, and the topology every domain uses.
//!
//! Events go to the durable topic exchange [`EXCHANGE`] with routing key `<domain>.<eventType>`, as persistent
//! JSON messages carrying the headers `cs-tenant-id` and `cs-schema-version`.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::envelope::Envelope;

/// The topic exchange all domain events and commands travel through.
pub const EXCHANGE: &str = "cp.events";

pub fn routing_key(domain: &str, event_type: &str) -> String {
    format!("{domain}.{event_type}")
}

pub struct Broker {
    url: SecretString,
    conn: Mutex<Option<Arc<Connection>>>,
}

impl Broker {
    /// Does not connect yet: a broker that is down at start-up must not stop the subgraph from serving.
    pub fn new(url: SecretString) -> Self {
        Self { url, conn: Mutex::new(None) }
    }

    /// The shared connection, reopened if it was lost.
    pub async fn connection(&self) -> anyhow::Result<Arc<Connection>> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.status().connected() {
                return Ok(conn.clone());
            }
        }
        *slot = None;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
            .with_connection_name("control-plane".into());
        let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(self.url.expose_secret(), props))
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting to RabbitMQ"))??;
        let conn = Arc::new(conn);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// A new channel in publisher-confirm mode, with the events exchange declared.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let conn = self.connection().await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        ch.exchange_declare(
            EXCHANGE,
            ExchangeKind::Topic,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
        Ok(ch)
    }

    /// For `/health/ready`: connected, or able to reconnect within two seconds.
    pub async fn is_ready(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(2), self.connection()).await, Ok(Ok(_)))
    }
}

/// Message properties for an envelope: persistent JSON, ids and the `cs-*` headers.
pub fn properties(envelope: &Envelope, schema_version: u32) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("cs-tenant-id".into(), AMQPValue::LongString(LongString::from(envelope.tenant_id.as_str())));
    headers.insert("cs-schema-version".into(), AMQPValue::LongUInt(schema_version));
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(envelope.event_id.as_str()))
        .with_correlation_id(ShortString::from(envelope.correlation_id.as_str()))
        .with_type(ShortString::from(envelope.event_type.as_str()))
        .with_timestamp(envelope.occurred_at.timestamp().max(0) as u64)
        .with_headers(headers)
}
