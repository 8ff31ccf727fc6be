//! Commands addressed to governance: `governance.EvaluatePolicy` evaluates a request over the tenant's set
//! and appends its decision, answered by `PolicyDecided` (the command's correlation id, caused by it). The
//! inbox appends one decision however often the command is delivered.

use std::sync::Arc;

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::{Envelope, Event};
use kernel::Work;

use crate::decisions::{self, EvaluationRequest};
use crate::events::{self, DOMAIN};
use crate::State;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.commands"),
        bindings: vec![events::EvaluatePolicy::routing_key()],
        retry,
        prefetch: 32,
    }
}

pub struct Commands(pub Arc<State>);

#[async_trait::async_trait]
impl Handler for Commands {
    fn name(&self) -> &'static str {
        "governance.commands"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        match envelope.event_type.as_str() {
            t if t == events::EvaluatePolicy::TYPE => {
                let c: events::EvaluatePolicy = envelope
                    .payload_as()
                    .map_err(|e| Failure::Permanent(anyhow::anyhow!("malformed command payload: {e}")))?;
                let req = EvaluationRequest {
                    principal: c.principal,
                    principal_attrs: serde_json::Value::Null,
                    action: c.action,
                    resource: c.resource,
                    resource_attrs: serde_json::Value::Null,
                    context: c.context,
                };
                let set = self.0.policies.get(&self.0.kernel.db, tenant).await?;
                let decision = decisions::evaluate(tenant, &set, &req, work.meta())?;
                decisions::record(work, &decision).await?;
                Ok(())
            }
            other => Err(Failure::Permanent(anyhow::anyhow!("governance accepts no command {other}"))),
        }
    }
}
