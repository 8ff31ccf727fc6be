use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::{Envelope, Event};
use kernel::Work;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{}.context-maps", crate::events::DOMAIN),
        bindings: vec![crate::events::BlueprintVersionValidated::routing_key()],
        retry,
        prefetch: 8,
    }
}

pub struct ContextMapProjection;

#[async_trait::async_trait]
impl Handler for ContextMapProjection {
    fn name(&self) -> &'static str {
        "catalogue.context-maps"
    }

    async fn handle(&self, _work: &mut Work, _envelope: &Envelope) -> Result<(), Failure> {
        Ok(())
    }
}
