//! The skills a definition may name: catalogue's `SkillDefinitionPublished` and `…Deprecated`, projected
//! into `workflow_skills` for the envelope's tenant (`platform` for the platform's skills). Redelivery
//! and reordering are harmless: a version once deprecated stays deprecated.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::contracts::catalogue::{SkillDefinitionDeprecated, SkillDefinitionPublished};
use kernel::envelope::Envelope;
use kernel::Work;

use super::store;
use crate::events::DOMAIN;

kernel::inbound! {
    /// What the skills projection takes.
    pub enum Skills {
        Published(SkillDefinitionPublished),
        Deprecated(SkillDefinitionDeprecated),
    }
}

pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec { queue: format!("{DOMAIN}.skills"), bindings: Skills::routing_keys(), retry, prefetch: 16 }
}

pub struct KnownSkills;

#[async_trait::async_trait]
impl Handler for KnownSkills {
    fn name(&self) -> &'static str {
        "workflow.skills"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let tenant = &envelope.tenant_id;
        let (key, version, platform, deprecated) = match Skills::decode(envelope).into_result("workflow.skills")? {
            Skills::Published(e) => (e.skill_key, e.version, e.platform, false),
            Skills::Deprecated(e) => (e.skill_key, e.version, e.platform, true),
        };
        // A platform skill travels under the tenant `platform`, and only it.
        if platform != tenant.is_platform() {
            return Err(Failure::Permanent(anyhow::anyhow!(
                "skill `{key}` {version}: `platform` is {platform} but the envelope's tenant is `{tenant}`"
            )));
        }
        store::record_skill(work, tenant, &key, &version, deprecated).await?;
        Ok(())
    }
}
