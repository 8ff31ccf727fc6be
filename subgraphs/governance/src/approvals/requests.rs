//! `RequestApproval` commands from every domain (`catalogue.RequestApproval`, `workflow.RequestApproval`:
//! a domain's broker user publishes only under its own prefix, so the queue binds `*.RequestApproval`).
//! The payload is `kernel::contracts::governance::ApprovalRequest`. The inbox applies a command once
//! however often it is delivered, and a subject with an open request keeps that one, so a re-sent command
//! opens nothing new. A subject kind must belong to the domain that sent the command (the routing key it
//! was published under, which only that domain's broker user may use): a command about another domain's
//! subject is dead-lettered.

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
        // A request refused here (bad roles, an expiry in the past, another domain's subject) cannot succeed
        // later: dead-lettered.
        let new = NewApproval::parse(request, Utc::now())?;
        let sender = envelope
            .publisher()
            .ok_or_else(|| Failure::Permanent(anyhow::anyhow!("RequestApproval from no known domain")))?;
        super::may_ask(super::Requester::Domain(sender), &new.subject.kind)?;
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
