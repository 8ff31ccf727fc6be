//! Commands addressed to governance: `governance.EvaluatePolicy` evaluates a request over the tenant's set
//! and appends its decision, answered by `PolicyDecided` (the command's correlation id, caused by it). The
//! inbox appends one decision however often the command is delivered.

use std::sync::Arc;

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::Envelope;
use kernel::Work;

use crate::decisions::{self, EvaluationRequest};
use crate::events::{self, DOMAIN};
use crate::State;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.commands"), bindings: Command::routing_keys(), retry, prefetch: 32 }
}

pub struct Commands(pub Arc<State>);

kernel::inbound! {
    /// The commands governance's command consumer takes (`RequestApproval` has a consumer of its own).
    pub enum Command {
        EvaluatePolicy(events::EvaluatePolicy),
    }
}

#[async_trait::async_trait]
impl Handler for Commands {
    fn name(&self) -> &'static str {
        "governance.commands"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        match Command::decode(envelope).into_result("governance's command consumer")? {
            Command::EvaluatePolicy(c) => {
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
        }
    }
}
