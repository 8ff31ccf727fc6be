//! Legal hold: tenancy's `TenantLegalHoldChanged`, projected into `legal_holds` (the latest event by
//! `occurredAt` wins, so redelivered or reordered events leave the newest state). While a tenant is on
//! hold, replay retention keeps its runs.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::tenancy::{record_legal_hold, TenantLegalHoldChanged};
use kernel::envelope::Envelope;
use kernel::Work;

use crate::events::DOMAIN;

kernel::inbound! {
    /// What the legal-hold projection takes.
    pub enum Hold {
        Changed(TenantLegalHoldChanged),
    }
}

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.legal-holds"), bindings: Hold::routing_keys(), retry, prefetch: 16 }
}

pub struct LegalHolds;

#[async_trait::async_trait]
impl Handler for LegalHolds {
    fn name(&self) -> &'static str {
        "workflow.legal-holds"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let Hold::Changed(e) = Hold::decode(envelope).into_result("workflow.legal-holds")?;
        record_legal_hold(work, &envelope.tenant_id, e.legal_hold, envelope.occurred_at).await?;
        Ok(())
    }
}
