//! The audit consumer: bound to every routing key (`#`: every domain's events and commands, governance's
//! own included), it appends one entry per message to the message tenant's log. The kernel's inbox makes a
//! redelivered message append nothing; appends emit no events (an audit of the audit would never end).
//! It takes up to [`BATCH`] waiting messages per transaction, each tenant's appended in one statement
//! under one lock of its head: a commit per message would cap the log at the commit rate.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::Envelope;
use kernel::Work;

use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.audit"), bindings: vec!["#".into()], retry, prefetch: 2 * BATCH as u16 }
}

/// Messages appended per transaction, at most.
pub const BATCH: usize = 256;

pub struct Audit;

#[async_trait::async_trait]
impl Handler for Audit {
    fn name(&self) -> &'static str {
        "governance.audit"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        super::append(work, &envelope.tenant_id, vec![envelope.clone()]).await?;
        Ok(())
    }

    fn batch_size(&self) -> usize {
        BATCH
    }

    async fn handle_batch(&self, work: &mut Work, envelopes: &[Envelope]) -> Result<(), Failure> {
        if let Some(first) = envelopes.first() {
            super::append(work, &first.tenant_id, envelopes.to_vec()).await?;
        }
        Ok(())
    }
}
