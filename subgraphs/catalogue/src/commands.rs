//! Commands addressed to catalogue (`catalogue.CreateProject`, `catalogue.ValidateBlueprint`), on one
//! durable queue. Each is applied once however often it is delivered (the inbox), and creating a project
//! whose slug exists already is a no-op (`ON CONFLICT DO NOTHING`), so a command re-sent under a new event
//! id is harmless too, even when the copies race.
//!
//! They are addressed to catalogue (`catalogue.<Command>`), so they come from platform automation, the way
//! `tenancy.ProvisionTenant` does: another domain's broker user may publish only under its own prefix.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::{Envelope, Event};
use kernel::Work;

use crate::events::{self, DOMAIN};
use crate::projects;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.commands"),
        bindings: vec![events::CreateProject::routing_key(), events::ValidateBlueprint::routing_key()],
        retry,
        prefetch: 16,
    }
}

pub struct Commands;

fn malformed(e: serde_json::Error) -> Failure {
    Failure::Permanent(anyhow::anyhow!("malformed command payload: {e}"))
}

#[async_trait::async_trait]
impl Handler for Commands {
    fn name(&self) -> &'static str {
        "catalogue.commands"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        match envelope.event_type.as_str() {
            t if t == events::CreateProject::TYPE => {
                let c: events::CreateProject = envelope.payload_as().map_err(malformed)?;
                let p = projects::NewProject::parse(&c.slug, &c.name, &c.description, c.owner_principal_id)?;
                if projects::create_if_absent(work, tenant, &p).await?.is_none() {
                    tracing::info!(%tenant, slug = %p.slug, "CreateProject: the project exists already");
                }
                Ok(())
            }
            t if t == events::ValidateBlueprint::TYPE => {
                let c: events::ValidateBlueprint = envelope.payload_as().map_err(malformed)?;
                crate::blueprints::validate_command(work, tenant, c.blueprint_id, c.version).await?;
                Ok(())
            }
            other => Err(Failure::Permanent(anyhow::anyhow!("catalogue accepts no command {other}"))),
        }
    }
}
