//! Governance's answers to catalogue's approval requests: `ApprovalGranted` applies the pending prod
//! change named by the subject, `ApprovalRejected`, `ApprovalExpired` and `ApprovalCancelled` discard it.
//! The inbox applies each event once however often it is delivered, and a change that is no longer pending
//! is left alone, so an answer arriving after another (or after the project was archived) changes nothing.
//!
//! An answer is trusted only as far as the contract says: it must come from governance (the routing key it
//! was published under), answer the very `RequestApproval` command catalogue sent for the change (its
//! causation is that command's id: an approval someone opened through the API about the same change is not
//! it), and a grant must not count the change's requester among its deciders. Anything else is logged and
//! ignored; the change keeps waiting for its own answer.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::governance::{
    ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRejected, ApprovalSubject,
};
use kernel::envelope::{Envelope, Event};
use kernel::{TenantId, Work};

use super::{store, ChangeStatus};
use crate::events::ENVIRONMENT_CHANGE;
use crate::ids::ChangeId;

/// The durable queue of governance's answers to catalogue's approval requests: bound to the outcomes
/// addressed to catalogue alone, so another domain's outcomes never reach it.
pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{}.approval-outcomes", crate::events::DOMAIN),
        bindings: Outcome::routing_keys_to(crate::events::DOMAIN),
        retry,
        prefetch: 16,
    }
}

pub struct ApprovalOutcomes;

/// The change a subject names, if it is one of ours.
fn change_of(subject: &ApprovalSubject) -> Result<Option<ChangeId>, Failure> {
    if subject.kind != ENVIRONMENT_CHANGE {
        return Ok(None);
    }
    uuid::Uuid::parse_str(&subject.id)
        .map(ChangeId::from)
        .map(Some)
        .map_err(|_| Failure::Permanent(anyhow::anyhow!("approval subject id `{}` is not a change id", subject.id)))
}

kernel::inbound! {
    /// The approval outcomes governance publishes.
    pub enum Outcome {
        Granted(ApprovalGranted),
        Rejected(ApprovalRejected),
        Expired(ApprovalExpired),
        Cancelled(ApprovalCancelled),
    }
}

#[async_trait::async_trait]
impl Handler for ApprovalOutcomes {
    fn name(&self) -> &'static str {
        "catalogue.approval-outcomes"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant: &TenantId = &envelope.tenant_id;
        let (subject, outcome, by, note) =
            match Outcome::decode(envelope).into_result("catalogue's approval outcomes")? {
                Outcome::Granted(e) => (e.subject, ChangeStatus::Applied, e.decided_by, e.note),
                Outcome::Rejected(e) => (e.subject, ChangeStatus::Rejected, e.decided_by, e.note),
                Outcome::Expired(e) => (e.subject, ChangeStatus::Expired, Vec::new(), None),
                Outcome::Cancelled(e) => {
                    let subject = ApprovalSubject { kind: e.subject_kind, id: e.subject_id, project_id: None };
                    (
                        subject,
                        ChangeStatus::Cancelled,
                        vec![e.cancelled_by],
                        Some("the approval request was withdrawn".into()),
                    )
                }
            };
        if envelope.publisher() != Some(ApprovalGranted::DOMAIN) {
            return Err(Failure::Permanent(anyhow::anyhow!(
                "approval outcome published by {:?}, not governance",
                envelope.publisher()
            )));
        }
        let Some(change_id) = change_of(&subject)? else {
            // Another domain's subject: never routed here (outcomes are addressed to the asker); a guard.
            return Ok(());
        };
        let Some(change) = store::lock_change(work, tenant, change_id).await? else {
            tracing::warn!(%tenant, %change_id, "approval outcome for an unknown environment change; ignored");
            return Ok(());
        };
        if change.status != ChangeStatus::Pending {
            tracing::info!(%tenant, %change_id, status = ?change.status, "environment change already decided; outcome ignored");
            return Ok(());
        }
        let asked = store::approval_request_of(work, tenant, change_id).await?;
        if asked.is_some() && envelope.causation_id != asked {
            tracing::warn!(%tenant, %change_id, causation = ?envelope.causation_id, asked = ?asked,
                "approval outcome does not answer the request catalogue sent for this change; ignored");
            return Ok(());
        }
        if outcome == ChangeStatus::Applied && by.contains(&change.requested_by) {
            tracing::warn!(%tenant, %change_id, requester = %change.requested_by,
                "approval granted with the requester's own vote; ignored");
            return Ok(());
        }
        match outcome {
            ChangeStatus::Applied => {
                super::apply(work, tenant, change, Some((&by, note.as_deref()))).await?;
            }
            discarded => {
                let by = (!by.is_empty()).then(|| by.join(","));
                super::discard(work, tenant, &change, discarded, by.as_deref(), note.as_deref()).await?;
            }
        }
        Ok(())
    }
}
