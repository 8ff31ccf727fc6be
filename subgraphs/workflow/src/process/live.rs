//! Live subscriptions for dashboards: an instance's process state as it moves (`processState`) and the
//! tenant's workflow events (`workflowEvents`). Both are fed from RabbitMQ — each replica's listener takes
//! every event workflow publishes — so any replica serves any subscriber, whichever replica made the
//! change. Tenant-scoped; they end when the caller's token expires, and the server closes them when the
//! caller's access is revoked or the tenant suspended (as every subscription).
//!
//! `processState` starts from the instance's history as it is when the subscription starts (the listener
//! is subscribed first, so nothing falls in between), then applies each of the instance's events as it
//! arrives, in order (one relay publishes a domain's outbox in order, and one queue per replica keeps it);
//! an event it has applied already is skipped. When the listener may have missed events (it reconnected,
//! or this subscriber fell behind), the state is read again from the history. It ends after the
//! instance's final state.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Json, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use kernel::consumer::Notice;
use kernel::context::ContextExt;
use kernel::db::Db;
use kernel::envelope::Envelope;
use kernel::permissions::workflow::READ;
use kernel::service::Listener;
use kernel::{Authorize, Error, Result, TenantId};
use serde_json::Value;
use tokio::sync::broadcast;

use super::ProcessState;
use crate::history::{self, Recorded, HISTORY_LIMIT};
use crate::ids::InstanceId;
use crate::state;

/// What the listener hands the subscriptions.
#[derive(Clone, Debug)]
pub enum Live {
    /// Events may have been missed: anything derived from them must be read again.
    Reset,
    Event(Arc<Envelope>),
}

/// How many notices wait for a slow subscriber before it skips ahead (and reads the state again).
pub const BUFFER: usize = 1024;

pub fn channel() -> broadcast::Sender<Live> {
    broadcast::channel(BUFFER).0
}

/// The per-replica listener: every event workflow publishes, to the live subscriptions.
pub fn listener(events: broadcast::Sender<Live>) -> Listener {
    Listener {
        bindings: vec![format!("{}.#", crate::events::DOMAIN)],
        on_notice: Arc::new(move |notice| {
            // No receivers is normal (nobody subscribed); lagging receivers skip ahead.
            let _ = events.send(match notice {
                Notice::Reset => Live::Reset,
                Notice::Event(env) => Live::Event(Arc::from(env)),
            });
        }),
    }
}

/// An event of the tenant's, as it was published.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "WorkflowLiveEvent")]
pub struct LiveEvent {
    pub event_id: String,
    pub event_type: String,
    /// The instance it is about (none for a definition's events).
    pub instance_id: Option<ID>,
    pub occurred_at: DateTime<Utc>,
    pub payload: Json<Value>,
}

fn instance_of(env: &Envelope) -> Option<&str> {
    env.payload.get("instanceId").and_then(Value::as_str)
}

/// The instance's state and the ids of the events it was folded from.
async fn snapshot(db: &Db, tenant: &TenantId, instance: InstanceId) -> Result<(Option<ProcessState>, HashSet<String>)> {
    let mut tx = db.tenant_tx(tenant).await?;
    let events = history::store::read(&mut tx, tenant, instance, 0, HISTORY_LIMIT).await?;
    tx.commit().await?;
    let seen = events.iter().map(|e| e.event_id.clone()).collect();
    Ok((events.iter().fold(None, super::apply), seen))
}

#[derive(Default)]
pub struct LiveRoot;

#[Subscription(name = "Subscription")]
impl LiveRoot {
    /// An instance's process state: now, then after each of its events, in order; it ends after the final
    /// state (`COMPLETED`, `FAILED`, `CANCELLED`).
    async fn process_state(&self, ctx: &Context<'_>, instance_id: ID) -> Result<impl Stream<Item = ProcessState>> {
        let tenant = ctx.authorize(READ)?.into_tenant();
        let instance = InstanceId::from_id("instanceId", &instance_id)?;
        let db = state(ctx).kernel.db.clone();
        let rx = state(ctx).events.subscribe();
        let (first, seen) = snapshot(&db, &tenant, instance).await?;
        let first = first.ok_or_else(|| Error::not_found(format!("no workflow instance `{instance}`")))?;
        let id = instance.to_string();
        struct Follow {
            rx: broadcast::Receiver<Live>,
            state: ProcessState,
            seen: HashSet<String>,
            first: bool,
            done: bool,
        }
        let start = Follow { rx, state: first, seen, first: true, done: false };
        let stream = futures::stream::unfold(start, move |mut f| {
            let (db, tenant, id) = (db.clone(), tenant.clone(), id.clone());
            async move {
                if f.first || f.done {
                    if f.done {
                        return None;
                    }
                    f.first = false;
                    f.done = f.state.ended_at.is_some();
                    return Some((f.state.clone(), f));
                }
                loop {
                    let env = match f.rx.recv().await {
                        Ok(Live::Event(env)) => env,
                        Ok(Live::Reset) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Missed events: read the state again, and show it if it moved.
                            let (now, seen) = snapshot(&db, &tenant, f.state.instance_id).await.ok()?;
                            let now = now?;
                            f.seen = seen;
                            if now.version != f.state.version {
                                f.state = now;
                                f.done = f.state.ended_at.is_some();
                                return Some((f.state.clone(), f));
                            }
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    if env.tenant_id != tenant
                        || instance_of(&env) != Some(id.as_str())
                        || !f.seen.insert(env.event_id.clone())
                    {
                        continue;
                    }
                    let e = Recorded {
                        tenant_id: tenant.clone(),
                        instance_id: f.state.instance_id,
                        version: f.state.version + 1,
                        position: 0,
                        tx: 0,
                        event_id: env.event_id.clone(),
                        event_type: env.event_type.clone(),
                        data: env.payload.clone(),
                        recorded_at: env.occurred_at,
                    };
                    f.state = super::apply(Some(f.state.clone()), &e)?;
                    f.done = f.state.ended_at.is_some();
                    return Some((f.state.clone(), f));
                }
            }
        });
        Ok(ctx.request().until_expiry(stream))
    }

    /// The tenant's workflow events as they are published — those of one instance, or of some types, when
    /// asked.
    async fn workflow_events(
        &self,
        ctx: &Context<'_>,
        instance_id: Option<ID>,
        #[graphql(desc = "Only these event types (at most 50); every type when omitted.")] event_types: Option<
            Vec<String>,
        >,
    ) -> Result<impl Stream<Item = LiveEvent>> {
        let tenant = ctx.authorize(READ)?.into_tenant();
        let instance = instance_id.as_ref().map(|i| InstanceId::from_id("instanceId", i)).transpose()?;
        if event_types.as_ref().is_some_and(|t| t.len() > 50) {
            return Err(Error::bad_input("eventTypes", "at most 50 event types"));
        }
        let instance = instance.map(|i| i.to_string());
        let rx = state(ctx).events.subscribe();
        let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
            let wanted = match &item {
                Ok(Live::Event(env)) => {
                    env.tenant_id == tenant
                        && instance.as_deref().is_none_or(|i| instance_of(env) == Some(i))
                        && event_types.as_ref().is_none_or(|types| types.iter().any(|t| *t == env.event_type))
                }
                // A reset or a subscriber too slow for the stream: it skips what it missed.
                _ => false,
            };
            let out = match item {
                Ok(Live::Event(env)) if wanted => Some(LiveEvent {
                    event_id: env.event_id.clone(),
                    event_type: env.event_type.clone(),
                    instance_id: instance_of(&env).map(|i| ID(i.to_owned())),
                    occurred_at: env.occurred_at,
                    payload: Json(env.payload.clone()),
                }),
                _ => None,
            };
            std::future::ready(out)
        });
        Ok(ctx.request().until_expiry(stream))
    }
}
