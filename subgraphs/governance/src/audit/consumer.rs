//! The audit consumer: bound to every routing key (`#`: every domain's events and commands, governance's
//! own included), it appends one entry per message to the message tenant's log. The kernel's inbox makes a
//! redelivered message append nothing; appends emit no events (an audit of the audit would never end).
//! It takes up to [`BATCH`] waiting messages per transaction — a commit per message would cap the log at
//! the commit rate — and appends those of every tenant together (`audit::append_many`: the heads locked in
//! one statement, then one statement each for entries, tree hashes and heads), under the `audit` system
//! scope that migration 1011 admits to the log's tables: with many tenants in a batch, statements per
//! tenant would otherwise dominate it. The inbox rows stay under each message's own tenant.

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

    fn across_tenants(&self) -> bool {
        true
    }

    async fn handle_across_tenants(&self, work: &mut Work, envelopes: &[Envelope]) -> Result<(), Failure> {
        super::store::appender_scope(work, true).await?;
        super::append_many(work, envelopes.to_vec()).await?;
        // The scope ends here, not with the transaction: nothing after this batch's appends may use it.
        super::store::appender_scope(work, false).await?;
        Ok(())
    }
}
