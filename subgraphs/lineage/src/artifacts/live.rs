//! `artifactChanges`: a live stream of the tenant's artifact versions as they are recorded, move on, or
//! get their body, for dashboards. Fed from RabbitMQ — each replica's listener takes every event lineage
//! publishes — so any replica serves any subscriber. Each change is the version as it is when the event
//! arrives, read for the subscriber, so its sensitive fields are redacted exactly as in a query
//! (`crate::redaction`). Ends when the caller's token expires.

use std::sync::Arc;

use async_graphql::{Context, SimpleObject, Subscription, ID};
use futures::{Stream, StreamExt};
use kernel::consumer::Notice;
use kernel::context::ContextExt;
use kernel::envelope::Envelope;
use kernel::permissions::lineage::READ;
use kernel::service::Listener;
use kernel::{Authorize, Result, TenantId};
use tokio::sync::broadcast;

use super::{store, ArtifactVersion};
use crate::events::{ArtifactBodyStored, ArtifactVersionRecorded, ArtifactVersionStatusChanged};
use crate::ids::{ArtifactId, ProjectId};
use crate::state;

/// How many events wait for a slow subscriber before it skips ahead.
pub const BUFFER: usize = 1024;

pub fn channel() -> broadcast::Sender<Arc<Envelope>> {
    broadcast::channel(BUFFER).0
}

/// The per-replica listener: every event lineage publishes, to the live subscriptions.
pub fn listener(events: broadcast::Sender<Arc<Envelope>>) -> Listener {
    Listener {
        bindings: vec![format!("{}.#", crate::events::DOMAIN)],
        on_notice: Arc::new(move |notice| {
            if let Notice::Event(env) = notice {
                // No receivers is normal (nobody subscribed); lagging receivers skip ahead.
                let _ = events.send(Arc::from(env));
            }
        }),
    }
}

kernel::inbound! {
    /// The events that change a version.
    enum Change {
        Recorded(ArtifactVersionRecorded),
        Moved(ArtifactVersionStatusChanged),
        BodyStored(ArtifactBodyStored),
    }
}

/// One change of a version.
#[derive(SimpleObject)]
pub struct ArtifactChange {
    /// The event: `ArtifactVersionRecorded`, `ArtifactVersionStatusChanged` or `ArtifactBodyStored`.
    pub event_type: String,
    pub event_id: String,
    /// The version as it is now.
    pub version: ArtifactVersion,
}

#[derive(Default)]
pub struct ArtifactSubscription;

#[Subscription(name = "Subscription")]
impl ArtifactSubscription {
    /// The tenant's artifact versions as they change (of one artifact or project, when given): each change
    /// with the version as it is then, its sensitive fields redacted as in a query.
    async fn artifact_changes(
        &self,
        ctx: &Context<'_>,
        artifact_id: Option<ID>,
        project_id: Option<ID>,
    ) -> Result<impl Stream<Item = ArtifactChange>> {
        let req = ctx.request().clone();
        let tenant = req.authorize(READ)?.into_tenant();
        let artifact = artifact_id.map(|a| ArtifactId::parse("artifactId", a.as_str())).transpose()?;
        let project = project_id.map(|p| ProjectId::from_id("projectId", &p)).transpose()?;
        let db = state(ctx).kernel.db.clone();
        let events = tokio_stream::wrappers::BroadcastStream::new(state(ctx).events.subscribe());
        let changes = events.filter_map(move |item| {
            let (tenant, artifact, db) = (tenant.clone(), artifact.clone(), db.clone());
            async move {
                // A subscriber too slow for the stream skips what it missed rather than holding up others.
                let env = item.ok()?;
                if env.tenant_id != tenant || project.is_some_and(|p| env.project_id != Some(p.to_string())) {
                    return None;
                }
                let kernel::envelope::Inbound::Known(change) = Change::decode(&env) else { return None };
                let (id, version) = match change {
                    Change::Recorded(e) => (e.artifact_id, e.version),
                    Change::Moved(e) => (e.artifact_id, e.version),
                    Change::BodyStored(e) => (e.artifact_id, e.version),
                };
                if artifact.as_ref().is_some_and(|a| *a != id) {
                    return None;
                }
                let version = current(&db, &tenant, &id, &version).await?;
                Some(ArtifactChange { event_type: env.event_type.clone(), event_id: env.event_id.clone(), version })
            }
        });
        Ok(req.until_expiry(changes))
    }
}

/// The version as it is now (none when it cannot be read: the change is skipped, and logged).
async fn current(db: &kernel::db::Db, tenant: &TenantId, id: &ArtifactId, version: &str) -> Option<ArtifactVersion> {
    let read = async {
        let mut tx = db.tenant_tx(tenant).await?;
        let v = store::version(&mut tx, tenant, id, version).await?;
        tx.commit().await?;
        Ok::<_, kernel::Error>(v)
    };
    match read.await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = e.describe(), artifact = %id, version, "a live artifact change could not be read");
            None
        }
    }
}
