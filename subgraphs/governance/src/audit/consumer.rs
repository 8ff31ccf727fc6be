//! The audit consumer: bound to every routing key (`#`: every domain's events and commands, governance's
//! own included), it appends one entry per message to the message tenant's log. The kernel's inbox makes a
//! redelivered message append nothing; appends emit no events (an audit of the audit would never end).

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::Envelope;
use kernel::Work;

use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.audit"), bindings: vec!["#".into()], retry, prefetch: 64 }
}

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
}
