//! Governance's answers to the gates' `RequestApproval` commands. The subject is `workflow.Gate` with the
//! gate's key `<instance>/<step>/<attempt>`; the inbox applies each answer once however often it is
//! delivered, and an answer the gate no longer waits for (decided already, timed out, the instance ended)
//! changes nothing.
//!
//! An answer is trusted only as far as the contract says: it must come from governance (the routing key it
//! was published under), answer the very command the gate sent (its causation is that command's id,
//! derived from the gate's key: an approval someone opened through the API about the same subject is not
//! it), and a grant must not count the instance's starter among its deciders. Anything else is logged and
//! ignored; the gate keeps waiting for its own answer.

use chrono::Utc;
use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::governance::{ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRejected};
use kernel::envelope::{Envelope, Event};
use kernel::{Kernel, Work};

use super::engine::{request_id, Engine, GATE};
use crate::ids::InstanceId;

/// The durable queue of governance's answers addressed to workflow alone.
pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{}.approval-outcomes", crate::events::DOMAIN),
        bindings: Outcome::routing_keys_to(crate::events::DOMAIN),
        retry,
        prefetch: 16,
    }
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

pub struct ApprovalOutcomes {
    pub kernel: Kernel,
}

/// The instance, step and run of a gate's key.
fn gate(key: &str) -> Option<(InstanceId, String, i64)> {
    let mut parts = key.splitn(3, '/');
    let instance = parts.next()?.parse().ok()?;
    let step = parts.next()?.to_owned();
    let attempt = parts.next()?.parse().ok()?;
    Some((instance, step, attempt))
}

#[async_trait::async_trait]
impl Handler for ApprovalOutcomes {
    fn name(&self) -> &'static str {
        "workflow.approval-outcomes"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        if envelope.publisher() != Some(ApprovalGranted::DOMAIN) {
            return Err(Failure::Permanent(anyhow::anyhow!(
                "approval outcome published by {:?}, not governance",
                envelope.publisher()
            )));
        }
        let (kind, key, outcome, by, note) =
            match Outcome::decode(envelope).into_result("workflow's approval outcomes")? {
                Outcome::Granted(e) => (e.subject.kind, e.subject.id, "Granted", e.decided_by, e.note),
                Outcome::Rejected(e) => (e.subject.kind, e.subject.id, "Rejected", e.decided_by, e.note),
                Outcome::Expired(e) => (e.subject.kind, e.subject.id, "Expired", Vec::new(), None),
                Outcome::Cancelled(e) => (e.subject_kind, e.subject_id, "Cancelled", vec![e.cancelled_by], None),
            };
        if kind != GATE {
            // Another kind of subject: never routed here (outcomes are addressed to the asker); a guard.
            return Ok(());
        }
        let tenant = &envelope.tenant_id;
        let Some((instance, step, run)) = gate(&key) else {
            return Err(Failure::Permanent(anyhow::anyhow!("approval subject id `{key}` is not a gate's key")));
        };
        if envelope.causation_id.as_deref() != Some(request_id(&key).as_str()) {
            tracing::warn!(%tenant, gate = %key, causation = ?envelope.causation_id,
                "approval outcome does not answer the request the gate sent; ignored");
            return Ok(());
        }
        let mut engine = match Engine::load(work, &self.kernel, tenant, instance, Utc::now()).await {
            Ok(engine) => engine,
            Err(e) if e.code() == kernel::Code::NotFound => {
                tracing::warn!(%tenant, gate = %key, "approval outcome for an unknown workflow instance; ignored");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let starter = engine.started_by();
        if outcome == "Granted" && by.contains(&starter) {
            tracing::warn!(%tenant, gate = %key, %starter, "approval granted with the starter's own vote; ignored");
            return Ok(());
        }
        if !engine.approval(work, &step, run, outcome, by, note).await? {
            tracing::info!(%tenant, gate = %key, outcome, "the gate no longer waits for this answer; ignored");
        }
        engine.release().await?;
        Ok(())
    }
}
