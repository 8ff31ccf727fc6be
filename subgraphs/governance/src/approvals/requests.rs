//! `RequestApproval` commands from every domain (`catalogue.RequestApproval`, `workflow.RequestApproval`:
//! a domain's broker user publishes only under its own prefix, so the queue binds `*.RequestApproval`).
//! The payload is `kernel::contracts::governance::ApprovalRequest`. The inbox applies a command once
//! however often it is delivered, and a subject with an open request keeps that one, so a re-sent command
//! opens nothing new. A subject kind must belong to the domain that sent it… which the envelope does not
//! say; the kind's domain is recorded instead and the answer goes to every listener of the outcome events.

use chrono::Utc;
use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::governance::{ApprovalRequest, REQUEST_APPROVAL};
use kernel::envelope::Envelope;
use kernel::Work;

use super::NewApproval;
use crate::events::DOMAIN;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.approval-requests"),
        bindings: vec![format!("*.{REQUEST_APPROVAL}")],
        retry,
        prefetch: 16,
    }
}

pub struct ApprovalRequests;

#[async_trait::async_trait]
impl Handler for ApprovalRequests {
    fn name(&self) -> &'static str {
        "governance.approval-requests"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        if envelope.event_type != REQUEST_APPROVAL {
            return Err(Failure::Permanent(anyhow::anyhow!("unexpected event type {}", envelope.event_type)));
        }
        let request: ApprovalRequest = envelope
            .payload_as::<RequestApprovalPayload>()
            .map(|p| p.0)
            .map_err(|e| Failure::Permanent(anyhow::anyhow!("malformed RequestApproval payload: {e}")))?;
        let tenant = &envelope.tenant_id;
        // A request refused here (bad roles, an expiry in the past) cannot succeed later: dead-lettered.
        let new = NewApproval::parse(request, Utc::now())?;
        let (a, created) = super::request(work, tenant, &new).await?;
        if !created {
            tracing::info!(%tenant, approval = %a.approval_id, subject = %a.subject_id, "RequestApproval: the subject has an open request already");
        }
        Ok(())
    }
}

/// The command's payload: an `ApprovalRequest`, with whatever else the requester adds (catalogue adds its
/// `projectId` beside it, which the subject carries too).
#[derive(serde::Deserialize, serde::Serialize)]
struct RequestApprovalPayload(ApprovalRequest);

impl kernel::envelope::Event for RequestApprovalPayload {
    const DOMAIN: &'static str = DOMAIN;
    const TYPE: &'static str = REQUEST_APPROVAL;
}
