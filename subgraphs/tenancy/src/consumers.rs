//! What tenancy consumes: the `ProvisionTenant` command (durable, idempotent), and its own events on a
//! per-replica listener that drops cached copies after a change committed and feeds live subscriptions.

use std::sync::Arc;

use kernel::consumer::{ConsumerSpec, Failure, Handler, Notice, RetryPolicy};
use kernel::envelope::{Envelope, Event, Inbound};
use kernel::TenantId;
use kernel::Work;

use crate::events::{self, DOMAIN};
use crate::State;

/// The durable queue for commands addressed to tenancy.
pub fn command_spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{DOMAIN}.commands"),
        bindings: vec![events::ProvisionTenant::routing_key()],
        retry,
        prefetch: 16,
    }
}

/// Applies `ProvisionTenant` commands. The envelope's tenant is the tenant to create.
pub struct ProvisionTenantHandler;

#[async_trait::async_trait]
impl Handler for ProvisionTenantHandler {
    fn name(&self) -> &'static str {
        "tenancy.provision-tenant"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        let command: events::ProvisionTenant = envelope
            .payload_as()
            .map_err(|e| Failure::Permanent(anyhow::anyhow!("malformed ProvisionTenant payload: {e}")))?;
        let p = crate::tenants::Provision::parse(
            envelope.tenant_id.as_str(),
            &command.display_name,
            &command.region,
            &command.edition_id,
            command.isolation_model,
        )?;
        // Commands come from platform automation: they act as an operator would.
        crate::tenants::store::elevate_to_platform(work).await?;
        crate::tenants::provision(work, &p).await?;
        Ok(())
    }
}

/// Everything tenancy publishes: the per-replica listener hears it all.
pub fn listener_bindings() -> Vec<String> {
    vec![format!("{DOMAIN}.#")]
}

/// What the per-replica listener does with each notice: drop stale cached copies, then hand the event to
/// live subscriptions.
pub fn on_notice(state: Arc<State>) -> impl Fn(Notice) + Send + Sync + 'static {
    move |notice| match notice {
        // Events may have been missed while disconnected: nothing cached locally can be trusted.
        Notice::Reset => state.flags.forget_local(),
        Notice::Event(env) => {
            let env: Arc<Envelope> = Arc::from(env);
            let st = state.clone();
            let stale = env.clone();
            tokio::spawn(async move { invalidate(&st, &stale).await });
            // No receivers is normal (nobody subscribed); lagging receivers skip ahead.
            let _ = state.events.send(env);
        }
    }
}

kernel::inbound! {
    /// The events that make a replica's cached flags and quota definitions stale.
    pub enum Staleness {
        FlagChanged(events::FeatureFlagChanged),
        FlagDeleted(events::FeatureFlagDeleted),
        QuotaDefined(events::QuotaDefined),
    }
}

async fn invalidate(state: &State, env: &Envelope) {
    match Staleness::decode(env) {
        Inbound::Known(Staleness::FlagChanged(_) | Staleness::FlagDeleted(_)) => state.flags.invalidate().await,
        Inbound::Known(Staleness::QuotaDefined(e)) => {
            if let Ok(t) = TenantId::parse(&e.tenant_id) {
                state
                    .kernel
                    .cache
                    .invalidate(&[state.kernel.cache.key(&t, kernel::cache::kind::QUOTA_DEFINITION, &e.quota.key)])
                    .await;
            }
        }
        Inbound::Malformed(t, e) => tracing::error!(error = %e, "malformed {t}; caches not invalidated"),
        Inbound::Unknown(_) => {}
    }
}
