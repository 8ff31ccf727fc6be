//! The transactional outbox and its relay.
//!
//! Resolvers never talk to the broker: [`enqueue`] writes the event in the caller's transaction, so the state
//! change and its event commit or roll back together. [`Relay`] claims pending rows with
//! `FOR UPDATE SKIP LOCKED` (so replicas share the work), publishes them with publisher confirms and marks them
//! published in the same transaction. A broker outage only delays events: rows wait until it is back.
//! Delivery is at-least-once; consumers are idempotent.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::publisher_confirm::Confirmation;
use lapin::Channel;
use tokio_util::sync::CancellationToken;

use crate::broker::{self, Broker};
use crate::db::{self, Db, Tx};
use crate::envelope::{Envelope, Event, EventMeta};
use crate::error::Result;
use crate::ids::TenantId;
use crate::metrics;

/// Writes `payload` as an event for `tenant` in the caller's transaction (its domain, type and schema
/// version come from its [`Event`] impl). Resolvers use [`crate::work::Work::emit`], which calls this.
pub async fn enqueue<E: Event>(tx: &mut Tx, tenant: &TenantId, meta: &EventMeta, payload: &E) -> Result<Envelope> {
    let envelope = Envelope::new(tenant, meta, payload);
    write(tx, E::DOMAIN, &envelope, E::VERSION).await?;
    Ok(envelope)
}

/// Writes an already built envelope (commands relayed on behalf of others use it).
pub async fn write(tx: &mut Tx, domain: &str, envelope: &Envelope, schema_version: u32) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (tenant_id, event_id, event_type, routing_key, schema_version, envelope) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(envelope.tenant_id.as_str())
    .bind(&envelope.event_id)
    .bind(&envelope.event_type)
    .bind(broker::routing_key(domain, &envelope.event_type))
    .bind(schema_version as i32)
    .bind(serde_json::to_value(envelope).map_err(anyhow::Error::from)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub struct Relay {
    db: Db,
    broker: Arc<Broker>,
    /// Rows claimed per transaction.
    pub batch: i64,
    /// How long to wait when nothing is pending.
    pub poll: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
}

#[derive(sqlx::FromRow)]
struct Pending {
    tenant_id: String,
    event_id: String,
    routing_key: String,
    schema_version: i32,
    envelope: sqlx::types::Json<Envelope>,
}

impl Relay {
    pub fn new(db: Db, broker: Arc<Broker>, poll: Duration) -> Self {
        Self { db, broker, batch: 200, poll, retention: Duration::from_secs(7 * 24 * 3600) }
    }

    /// Runs until `shutdown`, reconnecting with backoff whenever the broker or the database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut channel: Option<Channel> = None;
        let mut backoff = Duration::from_millis(200);
        let mut ticks: u64 = 0;
        loop {
            ticks += 1;
            if ticks % 3000 == 1 {
                if let Err(e) = self.prune().await {
                    tracing::warn!(error = format!("{e:#}"), "outbox prune failed");
                }
            }
            let wait = match self.tick(&mut channel).await {
                Ok(n) => {
                    backoff = Duration::from_millis(200);
                    if n as i64 == self.batch {
                        continue;
                    }
                    self.poll
                }
                Err(e) => {
                    metrics::OUTBOX_RELAY_ERRORS.inc();
                    tracing::warn!(error = format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "outbox relay");
                    // Only the channel is dropped: the shared connection reopens by itself if it was lost,
                    // and a database error must not cut every other user of the broker off.
                    channel = None;
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Publishes one batch; returns how many rows it published.
    pub async fn tick(&self, channel: &mut Option<Channel>) -> anyhow::Result<usize> {
        let mut tx = db::relay_tx(self.db.shared()).await?;
        let rows: Vec<Pending> = sqlx::query_as(
            "SELECT tenant_id, event_id, routing_key, schema_version, envelope FROM outbox \
             WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ch = match channel {
            Some(ch) if ch.status().connected() => ch,
            _ => channel.insert(self.broker.channel().await?),
        };
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let body = serde_json::to_vec(&row.envelope.0)?;
            let props = broker::properties(&row.envelope.0, row.schema_version as u32);
            confirms.push(
                ch.basic_publish(broker::EXCHANGE, &row.routing_key, BasicPublishOptions::default(), &body, props)
                    .await?,
            );
        }
        for confirm in confirms {
            match confirm.await? {
                Confirmation::Ack(_) => {}
                other => anyhow::bail!("broker did not confirm an event: {other:?}"),
            }
        }
        let tenants: Vec<&str> = rows.iter().map(|r| r.tenant_id.as_str()).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
        sqlx::query(
            "UPDATE outbox SET published_at = now() \
             WHERE (tenant_id, event_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        )
        .bind(&tenants)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::OUTBOX_PUBLISHED.inc_by(rows.len() as u64);
        Ok(rows.len())
    }

    async fn prune(&self) -> anyhow::Result<()> {
        let mut tx = db::relay_tx(self.db.shared()).await?;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.retention)?;
        sqlx::query("DELETE FROM outbox WHERE published_at < $1").bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
