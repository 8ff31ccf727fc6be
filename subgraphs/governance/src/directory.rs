//! What governance learns from other domains' events: identity's role bindings (`RoleBound`,
//! `RoleUnbound`: an approver must hold one of a request's roles) and tenancy's legal hold
//! (`TenantLegalHoldChanged`: retention never deletes a tenant's rows while it is on hold). Each is
//! projected into a table of ours; the latest event (by `occurredAt`) wins, so redelivered or reordered
//! events leave the newest state.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::identity::{RoleBound, RoleUnbound};
use kernel::contracts::tenancy::TenantLegalHoldChanged;
use kernel::envelope::{Envelope, Event};
use kernel::Work;

use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.directory"),
        bindings: vec![RoleBound::routing_key(), RoleUnbound::routing_key(), TenantLegalHoldChanged::routing_key()],
        retry,
        prefetch: 32,
    }
}

pub struct Directory;

fn malformed(e: serde_json::Error) -> Failure {
    Failure::Permanent(anyhow::anyhow!("malformed payload: {e}"))
}

#[async_trait::async_trait]
impl Handler for Directory {
    fn name(&self) -> &'static str {
        "governance.directory"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = envelope.tenant_id.as_str();
        let at = envelope.occurred_at;
        match envelope.event_type.as_str() {
            t if t == RoleBound::TYPE || t == RoleUnbound::TYPE => {
                let (principal, role, bound) = if t == RoleBound::TYPE {
                    let e: RoleBound = envelope.payload_as().map_err(malformed)?;
                    (e.principal_id, e.role_key, true)
                } else {
                    let e: RoleUnbound = envelope.payload_as().map_err(malformed)?;
                    (e.principal_id, e.role_key, false)
                };
                sqlx::query!(
                    "INSERT INTO principal_roles (tenant_id, principal, role_key, bound, changed_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (tenant_id, principal, role_key) DO UPDATE
                     SET bound = EXCLUDED.bound, changed_at = EXCLUDED.changed_at
                     WHERE principal_roles.changed_at <= EXCLUDED.changed_at",
                    tenant,
                    principal,
                    role,
                    bound,
                    at,
                )
                .execute(&mut ***work)
                .await
                .map_err(|e| Failure::Transient(e.into()))?;
                Ok(())
            }
            t if t == TenantLegalHoldChanged::TYPE => {
                let e: TenantLegalHoldChanged = envelope.payload_as().map_err(malformed)?;
                sqlx::query!(
                    "INSERT INTO legal_holds (tenant_id, on_hold, changed_at) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant_id) DO UPDATE SET on_hold = EXCLUDED.on_hold, changed_at = EXCLUDED.changed_at
                     WHERE legal_holds.changed_at <= EXCLUDED.changed_at",
                    tenant,
                    e.legal_hold,
                    at,
                )
                .execute(&mut ***work)
                .await
                .map_err(|e| Failure::Transient(e.into()))?;
                Ok(())
            }
            other => Err(Failure::Permanent(anyhow::anyhow!("governance.directory takes no {other}"))),
        }
    }
}
