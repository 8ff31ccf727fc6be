//! The transactional outbox and its relay.
//!
//! Resolvers never talk to the broker: [`enqueue`] writes the event in the caller's transaction, so the state
//! change and its event commit or roll back together. [`Relay`] wakes when outbox rows commit (`NOTIFY
//! cp_outbox`, with polling as the backstop), claims pending rows with `FOR UPDATE SKIP LOCKED` (so replicas
//! share the work), publishes them `mandatory` with publisher confirms within a timeout, and marks them
//! published in the same transaction. A message no queue is bound for comes back and is kept in
//! the domain's unrouted queue; a row that does not decode is parked with its reason. A broker outage only delays
//! events: rows wait until it is back. Delivery is at-least-once; consumers are idempotent.

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
    write(tx, &payload.routing_key_of(), &envelope, E::VERSION).await?;
    Ok(envelope)
}

/// Writes `envelope` — built beforehand for `payload` ([`Envelope::new`]) — in the caller's transaction: for
/// a writer that stores the event elsewhere first (an event store) and publishes it only once that worked.
pub async fn enqueue_built<E: Event>(tx: &mut Tx, payload: &E, envelope: &Envelope) -> Result<()> {
    write(tx, &payload.routing_key_of(), envelope, E::VERSION).await
}

/// Writes many events — of any tenants, each under row-level security for its own — in the caller's
/// transaction with one round trip (`cp_outbox_enqueue`): a group commit's events. Every column
/// [`enqueue`] writes is written, the actor among them.
pub async fn enqueue_batch<'a, E: Event + 'a>(
    tx: &mut Tx,
    events: impl IntoIterator<Item = (&'a TenantId, &'a EventMeta, &'a E)>,
) -> Result<Vec<Envelope>> {
    let (envelopes, keys): (Vec<Envelope>, Vec<String>) =
        events.into_iter().map(|(tenant, meta, e)| (Envelope::new(tenant, meta, e), e.routing_key_of())).unzip();
    if envelopes.is_empty() {
        return Ok(envelopes);
    }
    let n = envelopes.len();
    let tenants: Vec<&str> = envelopes.iter().map(|e| e.tenant_id.as_str()).collect();
    let ids: Vec<&str> = envelopes.iter().map(|e| e.event_id.as_str()).collect();
    let types: Vec<&str> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
    let versions: Vec<i32> = vec![E::VERSION as i32; n];
    let bodies =
        envelopes.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::from)?;
    let actors: Vec<Option<&str>> = envelopes.iter().map(|e| e.actor.as_deref()).collect();
    sqlx::query("SELECT cp_outbox_enqueue($1, $2, $3, $4, $5, $6, $7)")
        .bind(&tenants)
        .bind(&ids)
        .bind(&types)
        .bind(&keys)
        .bind(&versions)
        .bind(&bodies)
        .bind(&actors)
        .execute(&mut **tx)
        .await?;
    Ok(envelopes)
}

/// Writes a built envelope under `routing_key`.
async fn write(tx: &mut Tx, routing_key: &str, envelope: &Envelope, schema_version: u32) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (tenant_id, event_id, event_type, routing_key, schema_version, envelope, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(envelope.tenant_id.as_str())
    .bind(&envelope.event_id)
    .bind(&envelope.event_type)
    .bind(routing_key)
    .bind(schema_version as i32)
    .bind(serde_json::to_value(envelope).map_err(anyhow::Error::from)?)
    .bind(&envelope.actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub struct Relay {
    db: Db,
    broker: Arc<Broker>,
    /// Rows claimed per transaction.
    pub batch: i64,
    /// How long to wait when nothing is pending and no commit has been notified (a backstop: commits wake
    /// the relay through `NOTIFY cp_outbox`).
    pub poll: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    /// The longest a batch's publishing may take while its rows are locked; beyond it the transaction is
    /// rolled back and the rows are retried.
    pub publish_timeout: Duration,
    /// Where messages the exchange could route to no queue go (they are published `mandatory`, so the broker
    /// returns them rather than dropping them).
    pub unrouted_queue: String,
}

/// The queue (and fanout exchange) unroutable events of `domain` land in: a name under the domain, so its
/// broker user needs no right to publish through the default exchange.
pub fn unrouted_queue(domain: &str) -> String {
    format!("{domain}.unrouted")
}

/// Most messages the unrouted queue keeps (the oldest go first beyond it).
pub const UNROUTED_MAX: i64 = 100_000;

/// The PostgreSQL notification channel outbox inserts signal on.
pub const NOTIFY_CHANNEL: &str = "cp_outbox";

#[derive(sqlx::FromRow)]
struct Pending {
    tenant_id: String,
    event_id: String,
    routing_key: String,
    schema_version: i32,
    envelope: serde_json::Value,
    actor: Option<String>,
}

impl Relay {
    /// A relay for `domain`'s outbox (its unrouted events go to [`unrouted_queue`]).
    pub fn new(db: Db, broker: Arc<Broker>, poll: Duration, domain: &str) -> Self {
        Self {
            db,
            broker,
            batch: 200,
            poll,
            retention: Duration::from_secs(7 * 24 * 3600),
            publish_timeout: Duration::from_secs(10),
            unrouted_queue: unrouted_queue(domain),
        }
    }

    /// Runs until `shutdown`, reconnecting with backoff whenever the broker or the database fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut channel: Option<Channel> = None;
        let mut backoff = Duration::from_millis(200);
        let mut ticks: u64 = 0;
        let mut listener: Option<sqlx::postgres::PgListener> = None;
        loop {
            ticks += 1;
            if ticks % 3000 == 1 {
                if let Err(e) = self.prune().await {
                    tracing::warn!(error = format!("{e:#}"), "outbox prune failed");
                }
            }
            if listener.is_none() {
                listener = self.listen().await;
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
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                woke = notified => match woke {
                    // Commits that arrived meanwhile are covered by the one tick that follows.
                    Ok(()) => while listener.as_mut().and_then(|l| l.next_buffered()).is_some() {},
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox notifications lost; polling until they are back");
                        listener = None;
                    }
                },
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let mut l = match sqlx::postgres::PgListener::connect_with(self.db.shared()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for outbox commits; polling");
                return None;
            }
        };
        match l.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for outbox commits; polling");
                None
            }
        }
    }

    /// Publishes one batch; returns how many rows it handled (published or parked).
    pub async fn tick(&self, channel: &mut Option<Channel>) -> anyhow::Result<usize> {
        let mut tx = db::relay_tx(self.db.shared()).await?;
        let rows: Vec<Pending> = sqlx::query_as(
            "SELECT tenant_id, event_id, routing_key, schema_version, envelope, actor FROM outbox \
             WHERE published_at IS NULL AND parked_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // A row that does not decode is parked (kept, with its reason) and does not hold up the others.
        let mut good = Vec::with_capacity(rows.len());
        let mut parked = Vec::new();
        for row in &rows {
            match serde_json::from_value::<Envelope>(row.envelope.clone()) {
                Ok(env) => good.push((row, Envelope { actor: row.actor.clone(), ..env })),
                Err(e) => parked.push((row, format!("not a canonical envelope: {e}"))),
            }
        }
        for (row, reason) in &parked {
            metrics::OUTBOX_PARKED.inc();
            tracing::error!(event_id = %row.event_id, tenant = %row.tenant_id, reason, "parking an outbox row");
            sqlx::query("UPDATE outbox SET parked_at = now(), park_reason = $3 WHERE tenant_id = $1 AND event_id = $2")
                .bind(&row.tenant_id)
                .bind(&row.event_id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
        }
        if !good.is_empty() {
            // The rows stay locked while the broker answers (a channel, then the confirms): bounded, so a
            // stalled broker cannot hold them.
            let round_trip = async {
                let ch = match channel {
                    Some(ch) if ch.status().connected() => ch,
                    _ => channel.insert(self.broker.channel().await?),
                };
                self.publish(ch, &good).await
            };
            tokio::time::timeout(self.publish_timeout, round_trip)
                .await
                .map_err(|_| anyhow::anyhow!("the broker did not answer within {:?}", self.publish_timeout))??;
            let tenants: Vec<&str> = good.iter().map(|(r, _)| r.tenant_id.as_str()).collect();
            let ids: Vec<&str> = good.iter().map(|(r, _)| r.event_id.as_str()).collect();
            sqlx::query(
                "UPDATE outbox SET published_at = now() \
                 WHERE (tenant_id, event_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
            )
            .bind(&tenants)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        metrics::OUTBOX_PUBLISHED.inc_by(good.len() as u64);
        Ok(rows.len())
    }

    /// Publishes `mandatory` with confirms; a message no queue was bound for comes back from the broker and
    /// goes to the unrouted queue instead of vanishing.
    async fn publish(&self, ch: &Channel, rows: &[(&Pending, Envelope)]) -> anyhow::Result<()> {
        let mut confirms = Vec::with_capacity(rows.len());
        let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
        for (row, env) in rows {
            let body = serde_json::to_vec(env)?;
            let props = broker::properties(env, row.schema_version as u32);
            confirms.push(ch.basic_publish(broker::EXCHANGE, &row.routing_key, mandatory, &body, props).await?);
        }
        let mut unrouted = Vec::new();
        for confirm in confirms {
            match confirm.await? {
                Confirmation::Ack(None) => {}
                // The returned message itself says what it was (which confirmation carries a return is the
                // client library's bookkeeping, not necessarily the same message's).
                Confirmation::Ack(Some(returned)) => unrouted.push(returned),
                other => anyhow::bail!("broker did not confirm an event: {other:?}"),
            }
        }
        if !unrouted.is_empty() {
            let durable = lapin::options::QueueDeclareOptions { durable: true, ..Default::default() };
            // Bounded, so a routing key nobody consumes cannot fill the broker; the newest are kept.
            let mut args = lapin::types::FieldTable::default();
            args.insert("x-max-length".into(), lapin::types::AMQPValue::LongLongInt(UNROUTED_MAX));
            ch.queue_declare(&self.unrouted_queue, durable, args).await?;
            ch.exchange_declare(
                &self.unrouted_queue,
                lapin::ExchangeKind::Fanout,
                lapin::options::ExchangeDeclareOptions { durable: true, ..Default::default() },
                lapin::types::FieldTable::default(),
            )
            .await?;
            ch.queue_bind(
                &self.unrouted_queue,
                &self.unrouted_queue,
                "",
                lapin::options::QueueBindOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await?;
            for returned in unrouted {
                let routing_key = returned.routing_key.to_string();
                let event_id = returned.properties.message_id().as_ref().map(|m| m.to_string()).unwrap_or_default();
                metrics::OUTBOX_UNROUTED.inc();
                tracing::warn!(%routing_key, %event_id, queue = %self.unrouted_queue,
                    "no queue is bound for an event; kept in the unrouted queue");
                let mut props = returned.properties.clone();
                let mut headers = props.headers().clone().unwrap_or_default();
                headers.insert(
                    "cs-original-routing-key".into(),
                    lapin::types::AMQPValue::LongString(routing_key.as_str().into()),
                );
                props = props.with_headers(headers);
                let c = ch
                    .basic_publish(&self.unrouted_queue, "", BasicPublishOptions::default(), &returned.data, props)
                    .await?
                    .await?;
                anyhow::ensure!(matches!(c, Confirmation::Ack(None)), "the unrouted queue refused an event: {c:?}");
            }
        }
        Ok(())
    }

    async fn prune(&self) -> anyhow::Result<()> {
        let mut tx = db::relay_tx(self.db.shared()).await?;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(self.retention)?;
        sqlx::query("DELETE FROM outbox WHERE published_at < $1").bind(cutoff).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
