//! `UsageRecorded` events from every domain (`tenancy.UsageRecorded`, `workflow.UsageRecorded`: a domain's
//! broker user publishes only under its own prefix, so the queue binds `*.UsageRecorded`). The payload is
//! `kernel::contracts::usage::UsageRecord`; its time defaults to the envelope's `occurredAt` and its
//! idempotency key to the event's id. The consumer takes up to [`BATCH`] waiting events per transaction
//! (one insert per tenant); a record that cannot be stored (malformed, or for an hour already closed)
//! fails its batch, which the kernel then retries one event at a time, dead-lettering that one alone.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::usage::{UsageRecord, USAGE_RECORDED};
use kernel::envelope::Envelope;
use kernel::Work;

use super::Record;
use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.usage"),
        bindings: vec![format!("*.{USAGE_RECORDED}")],
        retry,
        prefetch: 2 * BATCH as u16,
    }
}

/// Events stored per transaction, at most.
pub const BATCH: usize = 512;

pub struct Usage;

fn record(envelope: &Envelope) -> Result<Record, Failure> {
    if envelope.event_type != USAGE_RECORDED {
        return Err(Failure::Permanent(anyhow::anyhow!("unexpected event type {}", envelope.event_type)));
    }
    let raw: UsageRecord = serde_json::from_value(envelope.payload.clone())
        .map_err(|e| Failure::Permanent(anyhow::anyhow!("not a usage record: {e}")))?;
    Ok(super::validate("payload", raw, envelope.occurred_at, &envelope.event_id)?)
}

async fn store(work: &mut Work, envelopes: &[Envelope]) -> Result<(), Failure> {
    let Some(first) = envelopes.first() else { return Ok(()) };
    let records = envelopes.iter().map(record).collect::<Result<Vec<_>, _>>()?;
    super::ingest(work, &first.tenant_id, &records, |i| format!("{}.payload", envelopes[i].event_id)).await?;
    Ok(())
}

#[async_trait::async_trait]
impl Handler for Usage {
    fn name(&self) -> &'static str {
        "governance.usage"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        store(work, std::slice::from_ref(envelope)).await
    }

    fn batch_size(&self) -> usize {
        BATCH
    }

    async fn handle_batch(&self, work: &mut Work, envelopes: &[Envelope]) -> Result<(), Failure> {
        store(work, envelopes).await
    }
}
