//! What governance learns from other domains' events: identity's role bindings (`RoleBound`,
//! `RoleUnbound`: an approver must hold one of a request's roles) and tenancy's legal hold
//! (`TenantLegalHoldChanged`: retention never deletes a tenant's rows while it is on hold). Each is
//! projected into a table of ours; the latest event (by `occurredAt`) wins, so redelivered or reordered
//! events leave the newest state.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::identity::{RoleBound, RoleUnbound};
use kernel::contracts::tenancy::{self, TenantLegalHoldChanged};
use kernel::envelope::Envelope;
use kernel::Work;

mod store;

use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.directory"), bindings: Fact::routing_keys(), retry, prefetch: 32 }
}

pub struct Directory;

kernel::inbound! {
    /// The other domains' facts the directory keeps.
    pub enum Fact {
        RoleBound(RoleBound),
        RoleUnbound(RoleUnbound),
        LegalHold(TenantLegalHoldChanged),
    }
}

#[async_trait::async_trait]
impl Handler for Directory {
    fn name(&self) -> &'static str {
        "governance.directory"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let (tenant, at) = (&envelope.tenant_id, envelope.occurred_at);
        match Fact::decode(envelope).into_result("governance.directory")? {
            Fact::RoleBound(e) => {
                store::set_role(work, tenant, &e.principal_id.to_string(), &e.role_key, true, at).await?
            }
            Fact::RoleUnbound(e) => {
                store::set_role(work, tenant, &e.principal_id.to_string(), &e.role_key, false, at).await?
            }
            Fact::LegalHold(e) => tenancy::record_legal_hold(work, tenant, e.legal_hold, at).await?,
        }
        Ok(())
    }
}
