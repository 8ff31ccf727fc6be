//! Consuming events: idempotent handlers with retries and a dead-letter queue, and per-replica listeners.
//!
//! A [`Handler`] runs in its own database transaction beside an inbox row keyed
//! `sha256(eventId:handler:aggregateId)`; a redelivered message finds the row and is acknowledged without
//! being applied again. A transient failure is retried [`RetryPolicy::retries`] times through per-attempt
//! delay queues (`<queue>.retry.<n>-<delay>ms.x`, each with its own TTL, dead-lettering back to `<queue>`), so a waiting
//! message holds no consumer and survives restarts. After the last retry, or at once on a permanent failure,
//! the message goes to `<queue>.dlq` with its full envelope and the reason in `cs-dead-letter-reason`.
//! A handler whose throughput matters may take several waiting messages per transaction
//! ([`Handler::batch_size`]); a batch that fails falls back to one message at a time, so nothing changes
//! about retries or dead-lettering.
//!
//! [`listen`] is the other kind: a per-replica, exclusive queue for work every replica must do (dropping its
//! in-process cache, feeding live subscriptions). It reports [`Notice::Reset`] whenever it (re)subscribes,
//! since events published while it was away are gone.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, EXCHANGE};
use crate::db::Db;
use crate::envelope::Envelope;
use crate::metrics;
use crate::work::Work;

/// How often and how long to retry a transient failure.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub retries: u32,
    /// Delay before the first retry.
    pub first: Duration,
    /// Delay before the last retry; the ones between grow geometrically.
    pub last: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries, 2 s → 2 min.
    fn default() -> Self {
        Self { retries: 5, first: Duration::from_secs(2), last: Duration::from_secs(120) }
    }
}

impl RetryPolicy {
    /// Delay before retry `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        if self.retries <= 1 || n <= 1 {
            return self.first;
        }
        let ratio = self.last.as_secs_f64() / self.first.as_secs_f64();
        let step = ratio.powf(f64::from(n.min(self.retries) - 1) / f64::from(self.retries - 1));
        Duration::from_secs_f64(self.first.as_secs_f64() * step)
    }
}

/// Why a handler did not apply a message.
#[derive(Debug)]
pub enum Failure {
    /// Might succeed later (a database or downstream hiccup): retried.
    Transient(anyhow::Error),
    /// Will never succeed (a malformed or impossible message): dead-lettered at once.
    Permanent(anyhow::Error),
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Internal(cause) => Failure::Transient(cause),
            // Something the deployment lacks for now (a partition not created yet, a key not configured):
            // retried with backoff, dead-lettered if it is still missing after the retries.
            e if e.code() == crate::Code::Unavailable => Failure::Transient(anyhow::anyhow!(e.describe())),
            other => Failure::Permanent(anyhow::anyhow!(other.describe())),
        }
    }
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Stable name: part of every inbox key, so renaming it re-applies old messages.
    fn name(&self) -> &'static str;

    /// The aggregate a message applies to; part of the inbox key. The tenant by default.
    fn aggregate_id(&self, envelope: &Envelope) -> String {
        envelope.tenant_id.to_string()
    }

    /// Applies the message inside `work`, which is scoped to the envelope's tenant, commits with the inbox
    /// row, and emits events caused by the message (same trace and correlation, caused by it).
    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure>;

    /// Messages applied per transaction. Above 1, the consumer takes the deliveries already waiting (up to
    /// this many, never waiting for more), applies the fresh ones in one transaction — each tenant's under
    /// row-level security for it, with their inbox rows — through [`Handler::handle_batch`], and
    /// acknowledges them together once it commits. If the batch fails, each of its messages is applied
    /// alone, with the usual retries and dead-lettering. 1, the default: one message per transaction.
    fn batch_size(&self) -> usize {
        1
    }

    /// Applies fresh messages of one tenant, in delivery order, inside `work` (scoped to that tenant). By
    /// default [`Handler::handle`] each, its events caused by it.
    async fn handle_batch(&self, work: &mut Work, envelopes: &[Envelope]) -> Result<(), Failure> {
        for envelope in envelopes {
            work.set_meta(envelope.caused_meta());
            self.handle(work, envelope).await?;
        }
        Ok(())
    }

    /// Whether a batch's fresh messages of every tenant go to [`Handler::handle_across_tenants`] in one
    /// call, instead of tenant by tenant to [`Handler::handle_batch`]. For a handler whose per-tenant
    /// statements would dominate a batch spread over many tenants (the audit log); it scopes its own
    /// statements (row-level security still holds the inbox rows to each message's tenant).
    fn across_tenants(&self) -> bool {
        false
    }

    /// Applies a batch's fresh messages of any tenants, in delivery order, inside `work` (left scoped to
    /// one of their tenants: the handler must set its own scope). Called only if
    /// [`Handler::across_tenants`] says so.
    async fn handle_across_tenants(&self, _work: &mut Work, _envelopes: &[Envelope]) -> Result<(), Failure> {
        Err(Failure::Permanent(anyhow::anyhow!("{} does not handle batches across tenants", self.name())))
    }
}

pub fn inbox_key(event_id: &str, handler: &str, aggregate_id: &str) -> String {
    hex::encode(Sha256::digest(format!("{event_id}:{handler}:{aggregate_id}")))
}

/// A durable queue, what it is bound to and how its failures are retried.
#[derive(Clone, Debug)]
pub struct ConsumerSpec {
    pub queue: String,
    /// Routing-key patterns on [`EXCHANGE`], e.g. `tenancy.ProvisionTenant`.
    pub bindings: Vec<String>,
    pub retry: RetryPolicy,
    pub prefetch: u16,
}

impl ConsumerSpec {
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.queue)
    }

    /// `<queue>.retry.<n>-<delay>ms.x`: the delay and the way back (`.x`: through [`Self::republish_exchange`])
    /// are in the name because RabbitMQ refuses to redeclare a queue with other arguments, so a changed retry
    /// policy gets new queues (the old ones drain into `<queue>`).
    pub fn retry_queue(&self, n: u32) -> String {
        format!("{}.retry.{n}-{}ms.x", self.queue, self.retry.delay(n).as_millis())
    }

    /// The direct exchange retries and dead letters are republished through (`<queue>.x`): a name under
    /// the consumer's own domain, so its broker user needs no right to publish through the default exchange
    /// (which reaches every queue).
    pub fn republish_exchange(&self) -> String {
        format!("{}.x", self.queue)
    }

    /// Declares the queue, its bindings, its retry queues, its dead-letter queue and the exchange retries
    /// and dead letters go through — both ways: a retry queue's expired messages dead-letter back to the
    /// queue through that exchange too, never through the default exchange, which a domain's broker user may
    /// not use (RabbitMQ checks the dead-letter exchange's permission when the queue is declared).
    pub async fn declare(&self, ch: &Channel) -> anyhow::Result<()> {
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare(&self.queue, durable, FieldTable::default()).await?;
        let x = self.republish_exchange();
        ch.exchange_declare(
            &x,
            lapin::ExchangeKind::Direct,
            lapin::options::ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
        for binding in &self.bindings {
            ch.queue_bind(&self.queue, EXCHANGE, binding, QueueBindOptions::default(), FieldTable::default()).await?;
        }
        ch.queue_bind(&self.queue, &x, &self.queue, QueueBindOptions::default(), FieldTable::default()).await?;
        for n in 1..=self.retry.retries {
            let mut args = FieldTable::default();
            args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(self.retry.delay(n).as_millis() as i64));
            args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from(x.as_str())));
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(LongString::from(self.queue.as_str())),
            );
            ch.queue_declare(&self.retry_queue(n), durable, args).await?;
            let q = self.retry_queue(n);
            ch.queue_bind(&q, &x, &q, QueueBindOptions::default(), FieldTable::default()).await?;
        }
        ch.queue_declare(&self.dead_letter_queue(), durable, FieldTable::default()).await?;
        let dlq = self.dead_letter_queue();
        ch.queue_bind(&dlq, &x, &dlq, QueueBindOptions::default(), FieldTable::default()).await?;
        Ok(())
    }
}

/// What became of one delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Retried(u32),
    DeadLettered,
}

/// Consumes `spec.queue` with `handler` until `shutdown`, reconnecting with backoff.
pub async fn run<H: Handler + ?Sized>(
    broker: Arc<Broker>,
    db: Db,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume(&broker, &db, &spec, handler.as_ref(), &shutdown).await {
            Ok(()) => break,
            // The shared connection reopens by itself if it was lost; a channel error closes only the channel.
            Err(e) => tracing::warn!(queue = %spec.queue, error = format!("{e:#}"), "consumer stopped; reconnecting"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume<H: Handler + ?Sized>(
    broker: &Broker,
    db: &Db,
    spec: &ConsumerSpec,
    handler: &H,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let ch = broker.channel().await?;
    ch.basic_qos(spec.prefetch, BasicQosOptions::default()).await?;
    spec.declare(&ch).await?;
    let mut deliveries =
        ch.basic_consume(&spec.queue, handler.name(), BasicConsumeOptions::default(), FieldTable::default()).await?;
    let batch_size = handler.batch_size().max(1);
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            d = deliveries.next() => match d {
                None => anyhow::bail!("delivery stream ended"),
                Some(d) => d?,
            },
        };
        let outcomes = if batch_size == 1 {
            vec![process(&ch, db, spec, handler, &delivery).await?]
        } else {
            // What else has already arrived joins the batch; nothing waits for more.
            let mut batch = vec![delivery];
            while batch.len() < batch_size {
                match deliveries.next().now_or_never() {
                    Some(Some(d)) => batch.push(d?),
                    _ => break,
                }
            }
            process_batch(&ch, db, spec, handler, &batch).await?
        };
        for outcome in outcomes {
            metrics::CONSUMER_MESSAGES.with_label_values(&[handler.name(), outcome.label()]).inc();
        }
    }
}

/// Applies deliveries in one transaction ([`Handler::batch_size`]) and acknowledges them together; one that
/// is not an envelope is dead-lettered alone, and if the batch fails each is [`process`]ed alone.
pub async fn process_batch<H: Handler + ?Sized>(
    ch: &Channel,
    db: &Db,
    spec: &ConsumerSpec,
    handler: &H,
    deliveries: &[Delivery],
) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    let mut messages = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match received(spec, delivery) {
            Ok(envelope) => messages.push((delivery, envelope)),
            Err(_) => outcomes.push(process(ch, db, spec, handler, delivery).await?),
        }
    }
    let Some((last, _)) = messages.last() else { return Ok(outcomes) };
    match apply_batch(db, handler, &messages).await {
        Ok(fresh) => {
            // Every delivery up to the last is this batch's (earlier ones are all acknowledged).
            last.ack(BasicAckOptions { multiple: true }).await?;
            outcomes.extend(fresh.into_iter().map(|f| if f { Outcome::Applied } else { Outcome::Duplicate }));
        }
        Err(e) => {
            let e = match e {
                Failure::Transient(e) | Failure::Permanent(e) => e,
            };
            tracing::warn!(
                handler = handler.name(),
                messages = messages.len(),
                error = format!("{e:#}"),
                "a batch failed; applying its messages one by one"
            );
            for (delivery, _) in &messages {
                outcomes.push(process(ch, db, spec, handler, delivery).await?);
            }
        }
    }
    Ok(outcomes)
}

/// Applies a batch in one transaction: the inbox rows of all its messages in one statement
/// (`cp_inbox_take`, migration 0004: row-level security checks each under its tenant), then the fresh
/// messages — tenant by tenant (in order of first appearance) through [`Handler::handle_batch`], or all at
/// once through [`Handler::handle_across_tenants`]. Whether each message was fresh.
async fn apply_batch<H: Handler + ?Sized>(
    db: &Db,
    handler: &H,
    messages: &[(&Delivery, Envelope)],
) -> Result<Vec<bool>, Failure> {
    let Some((_, first)) = messages.first() else { return Ok(Vec::new()) };
    let transient = |e: sqlx::Error| Failure::Transient(e.into());
    let keys: Vec<String> =
        messages.iter().map(|(_, e)| inbox_key(&e.event_id, handler.name(), &handler.aggregate_id(e))).collect();
    let tenants: Vec<&str> = messages.iter().map(|(_, e)| e.tenant_id.as_str()).collect();
    let event_ids: Vec<&str> = messages.iter().map(|(_, e)| e.event_id.as_str()).collect();
    let mut tx = db.tenant_tx(&first.tenant_id).await?;
    let taken: Vec<(String, String)> = sqlx::query_as("SELECT tenant, message FROM cp_inbox_take($1, $2, $3, $4)")
        .bind(&tenants)
        .bind(&keys)
        .bind(handler.name())
        .bind(&event_ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(transient)?;
    let mut taken: std::collections::HashSet<(String, String)> = taken.into_iter().collect();
    // A message delivered twice within the batch is fresh once.
    let fresh: Vec<bool> =
        tenants.iter().zip(&keys).map(|(t, k)| taken.remove(&((*t).to_owned(), k.clone()))).collect();
    if handler.across_tenants() {
        let envelopes: Vec<Envelope> =
            messages.iter().zip(&fresh).filter(|(_, f)| **f).map(|((_, e), _)| e.clone()).collect();
        if let Some(e) = envelopes.first() {
            let mut work = Work::from_tx(tx, e.caused_meta());
            handler.handle_across_tenants(&mut work, &envelopes).await?;
            tx = work.into_tx();
        }
    } else {
        let mut groups: Vec<(&crate::TenantId, Vec<Envelope>)> = Vec::new();
        for ((_, e), _) in messages.iter().zip(&fresh).filter(|(_, f)| **f) {
            match groups.iter_mut().find(|(t, _)| **t == e.tenant_id) {
                Some((_, mine)) => mine.push(e.clone()),
                None => groups.push((&e.tenant_id, vec![e.clone()])),
            }
        }
        for (tenant, mine) in &groups {
            crate::db::set_tenant(&mut tx, tenant).await?;
            let mut work = Work::from_tx(tx, mine[0].caused_meta());
            handler.handle_batch(&mut work, mine).await?;
            tx = work.into_tx();
        }
    }
    tx.commit().await.map_err(transient)?;
    Ok(fresh)
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Retried(_) => "retried",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Applies one delivery and acknowledges it once its fate is durable (applied, or re-queued elsewhere).
pub async fn process<H: Handler + ?Sized>(
    ch: &Channel,
    db: &Db,
    spec: &ConsumerSpec,
    handler: &H,
    delivery: &Delivery,
) -> anyhow::Result<Outcome> {
    let outcome = match apply(db, spec, handler, delivery).await {
        Ok(applied) => {
            if applied {
                Outcome::Applied
            } else {
                Outcome::Duplicate
            }
        }
        Err(Failure::Transient(e)) => {
            let attempt = retry_count(&delivery.properties) + 1;
            if attempt <= spec.retry.retries {
                tracing::warn!(handler = handler.name(), attempt, error = format!("{e:#}"), "retrying message");
                republish(ch, spec, &spec.retry_queue(attempt), delivery, attempt, None).await?;
                Outcome::Retried(attempt)
            } else {
                let reason = format!("gave up after {} retries: {e:#}", spec.retry.retries);
                tracing::error!(handler = handler.name(), reason, "dead-lettering message");
                republish(ch, spec, &spec.dead_letter_queue(), delivery, attempt - 1, Some(&reason)).await?;
                Outcome::DeadLettered
            }
        }
        Err(Failure::Permanent(e)) => {
            let reason = format!("{e:#}");
            tracing::error!(handler = handler.name(), reason, "dead-lettering message");
            republish(ch, spec, &spec.dead_letter_queue(), delivery, retry_count(&delivery.properties), Some(&reason))
                .await?;
            Outcome::DeadLettered
        }
    };
    delivery.ack(BasicAckOptions::default()).await?;
    Ok(outcome)
}

/// Applies a message once: `Ok(false)` when the inbox says it was applied before.
async fn apply<H: Handler + ?Sized>(
    db: &Db,
    spec: &ConsumerSpec,
    handler: &H,
    delivery: &Delivery,
) -> Result<bool, Failure> {
    let envelope =
        received(spec, delivery).map_err(|e| Failure::Permanent(anyhow::anyhow!("not a canonical envelope: {e}")))?;
    let key = inbox_key(&envelope.event_id, handler.name(), &handler.aggregate_id(&envelope));
    let transient = |e: sqlx::Error| Failure::Transient(e.into());
    let mut tx = db.tenant_tx(&envelope.tenant_id).await?;
    let fresh = sqlx::query(
        "INSERT INTO inbox (tenant_id, message_key, handler, event_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(envelope.tenant_id.as_str())
    .bind(&key)
    .bind(handler.name())
    .bind(&envelope.event_id)
    .execute(&mut *tx)
    .await
    .map_err(transient)?
    .rows_affected()
        == 1;
    if !fresh {
        return Ok(false);
    }
    let mut work = Work::from_tx(tx, envelope.caused_meta());
    handler.handle(&mut work, &envelope).await?;
    work.into_tx().commit().await.map_err(transient)?;
    Ok(true)
}

/// The envelope of a delivery to `spec`'s queue, with who acted (`cs-actor`) and the routing key it was
/// published under.
fn received(spec: &ConsumerSpec, delivery: &Delivery) -> Result<Envelope, serde_json::Error> {
    let mut envelope = serde_json::from_slice::<Envelope>(&delivery.data)?;
    envelope = envelope.with_actor_from(delivery.properties.headers().as_ref());
    envelope.published_under = published_under(spec, delivery);
    Ok(envelope)
}

/// The routing key a message was published under, as the broker vouches for it. A first delivery's own key
/// (a domain's broker user publishes only under its prefix). A retried message comes back through this
/// consumer's own delay queues, under a key of the queue's (`<queue>…`, which no other domain may publish
/// or route to): then the header the consumer set when it re-queued the message says what the key was.
/// The header is read only then: on a first delivery it is whatever the publisher put there.
fn published_under(spec: &ConsumerSpec, delivery: &Delivery) -> Option<String> {
    let key = delivery.routing_key.as_str();
    let ours = key == spec.queue || key.strip_prefix(spec.queue.as_str()).is_some_and(|rest| rest.starts_with('.'));
    if !ours {
        return Some(key.to_owned());
    }
    match delivery.properties.headers().as_ref()?.inner().get(ORIGINAL_ROUTING_KEY)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The header a re-queued message carries its original routing key in.
const ORIGINAL_ROUTING_KEY: &str = "cs-original-routing-key";

fn retry_count(props: &BasicProperties) -> u32 {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("cs-retry-count").cloned())
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

async fn republish(
    ch: &Channel,
    spec: &ConsumerSpec,
    queue: &str,
    delivery: &Delivery,
    retries: u32,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert("cs-retry-count".into(), AMQPValue::LongUInt(retries));
    // Every re-queued message carries the key it was first published under (what the broker vouched for,
    // never a header its publisher set), since it comes back under a key of this queue's.
    match published_under(spec, delivery) {
        Some(key) => headers.insert(ORIGINAL_ROUTING_KEY.into(), AMQPValue::LongString(LongString::from(key))),
        None => {
            let mut kept = headers.inner().clone();
            kept.remove(ORIGINAL_ROUTING_KEY);
            headers = FieldTable::from(kept);
        }
    }
    if let Some(reason) = reason {
        headers.insert("cs-dead-letter-reason".into(), AMQPValue::LongString(LongString::from(reason)));
    }
    let props = delivery.properties.clone().with_headers(headers).with_delivery_mode(2);
    let exchange = spec.republish_exchange();
    let confirm =
        ch.basic_publish(&exchange, queue, BasicPublishOptions::default(), &delivery.data, props).await?.await?;
    match confirm {
        Confirmation::Ack(_) => Ok(()),
        other => anyhow::bail!("broker did not confirm republish to {queue}: {other:?}"),
    }
}

/// What a per-replica listener reports.
#[derive(Debug)]
pub enum Notice {
    /// (Re)subscribed: events may have been missed, so anything derived from them must be dropped.
    Reset,
    Event(Box<Envelope>),
}

/// Feeds every event matching `bindings` to `on_notice` on this replica only, until `shutdown`.
pub async fn listen<F>(broker: Arc<Broker>, bindings: Vec<String>, on_notice: F, shutdown: CancellationToken)
where
    F: Fn(Notice) + Send + Sync + 'static,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        let result = async {
            let ch = broker.channel().await?;
            let queue = ch
                .queue_declare(
                    "",
                    QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await?;
            for binding in &bindings {
                ch.queue_bind(
                    queue.name().as_str(),
                    EXCHANGE,
                    binding,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            let mut deliveries = ch
                .basic_consume(
                    queue.name().as_str(),
                    "listener",
                    BasicConsumeOptions { no_ack: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await?;
            on_notice(Notice::Reset);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok::<_, anyhow::Error>(()),
                    d = deliveries.next() => match d {
                        None => anyhow::bail!("listener stream ended"),
                        Some(d) => {
                            let d = d?;
                            match serde_json::from_slice::<Envelope>(&d.data) {
                            Ok(env) => {
                                let mut env = env.with_actor_from(d.properties.headers().as_ref());
                                env.published_under = Some(d.routing_key.as_str().to_owned());
                                on_notice(Notice::Event(Box::new(env)))
                            }
                            Err(e) => tracing::warn!(error = %e, "listener skipped a non-envelope message"),
                        }
                        }
                    },
                }
            }
        }
        .await;
        match result {
            Ok(()) => break,
            Err(e) => tracing::warn!(error = format!("{e:#}"), "listener lost its queue; resubscribing"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_runs_from_two_seconds_to_two_minutes() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=5).map(|n| p.delay(n).as_millis() as u64).collect();
        assert_eq!(delays[0], 2000);
        assert_eq!(delays[4], 120_000);
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
    }

    #[test]
    fn inbox_key_depends_on_all_three_parts() {
        let k = inbox_key("evt-1", "h", "a");
        assert_eq!(k.len(), 64);
        assert_ne!(k, inbox_key("evt-2", "h", "a"));
        assert_ne!(k, inbox_key("evt-1", "g", "a"));
        assert_ne!(k, inbox_key("evt-1", "h", "b"));
    }
}
