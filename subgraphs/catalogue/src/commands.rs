//! Commands addressed to catalogue (`catalogue.CreateProject`, `catalogue.ValidateBlueprint`), on one
//! durable queue. Each is applied once however often it is delivered (the inbox), and creating a project
//! whose slug exists already is a no-op (`ON CONFLICT DO NOTHING`), so a command re-sent under a new event
//! id is harmless too, even when the copies race.
//!
//! They are addressed to catalogue (`catalogue.<Command>`), so they come from platform automation, the way
//! `tenancy.ProvisionTenant` does: another domain's broker user may publish only under its own prefix.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::Envelope;
use kernel::Work;

use crate::events::{self, DOMAIN};
use crate::projects;

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.commands"), bindings: Command::routing_keys(), retry, prefetch: 16 }
}

pub struct Commands;

kernel::inbound! {
    /// The commands catalogue takes.
    pub enum Command {
        CreateProject(events::CreateProject),
        ValidateBlueprint(events::ValidateBlueprint),
    }
}

#[async_trait::async_trait]
impl Handler for Commands {
    fn name(&self) -> &'static str {
        "catalogue.commands"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        match Command::decode(envelope).into_result("catalogue's command consumer")? {
            Command::CreateProject(c) => {
                let p = projects::NewProject::parse(&c.slug, &c.name, &c.description, c.owner_principal_id)?;
                if projects::create_if_absent(work, tenant, &p).await?.is_none() {
                    tracing::info!(%tenant, slug = %p.slug, "CreateProject: the project exists already");
                }
                Ok(())
            }
            Command::ValidateBlueprint(c) => {
                crate::blueprints::validate_command(work, tenant, c.blueprint_id, c.version).await?;
                Ok(())
            }
        }
    }
}
