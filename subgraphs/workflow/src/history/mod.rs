//! The event store: an append-only stream of events per workflow instance, and the global order readers
//! follow across every stream (`migrations/workflow/1002_event_store.sql` says how both are kept).
//!
//! A writer knows the version it read ([`Stream::at`]) and [`Stream::append`]s at the next one, in its
//! unit of work: the event is stored in the stream and written to the outbox together. An append after
//! another writer moved the stream on is refused with `CONFLICT`, naming the expected and the actual
//! version, and nothing is written. A stream holds at most [`HISTORY_LIMIT`] events (a warning is logged
//! at [`HISTORY_WARNING`], as Temporal does at 10,240 and 51,200): past it an append is refused with
//! `QUOTA_EXCEEDED`, and the instance goes on as a new one (continue-as-new) with what it carries over.
//!
//! Readers of every stream (the projector, replay, live subscriptions) [`follow`] the global order from a
//! [`Checkpoint`]; they never skip an event, however the appending transactions interleave.

pub mod store;

use chrono::{DateTime, Utc};
use kernel::envelope::Event;
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use crate::ids::InstanceId;

/// Events after which appending to a stream logs a warning.
pub const HISTORY_WARNING: i64 = 10_240;
/// Most events one stream holds.
pub const HISTORY_LIMIT: i64 = 51_200;

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub tenant_id: TenantId,
    pub instance_id: InstanceId,
    /// Its place in its stream, from 1.
    pub version: i64,
    /// Its place in the global order: ([`Checkpoint::tx`], [`Checkpoint::position`]).
    pub position: i64,
    pub tx: i64,
    pub event_id: String,
    pub event_type: String,
    /// The payload (the envelope's `payload`).
    pub data: Value,
    pub recorded_at: DateTime<Utc>,
}

impl Recorded {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { tx: self.tx, position: self.position }
    }

    /// The payload as event `E`, if this is one (its type, and a payload that decodes).
    pub fn payload<E: Event + serde::de::DeserializeOwned>(&self) -> Option<E> {
        (self.event_type == E::TYPE).then(|| serde_json::from_value(self.data.clone()).ok()).flatten()
    }
}

/// Where a reader of the global order stands: the (transaction, position) of the last event it read.
/// The order is by transaction id, then position; the start is `Checkpoint::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub tx: i64,
    pub position: i64,
}

/// The definition version an instance runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefinitionRef {
    /// The definition's owner: the instance's tenant, or `platform`.
    pub tenant: TenantId,
    pub key: String,
    pub version: i32,
}

/// A stream as one writer knows it: the version it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    instance: InstanceId,
    version: i64,
}

impl Stream {
    /// A new, empty stream for `instance` running `definition`; `CONFLICT` if the instance has one.
    pub async fn create(
        work: &mut Work,
        tenant: &TenantId,
        instance: InstanceId,
        definition: &DefinitionRef,
    ) -> Result<Self> {
        store::create(work, tenant, instance, definition).await?;
        Ok(Self { instance, version: 0 })
    }

    /// The stream of `instance` as read at `version` (the number of events it held).
    pub fn at(instance: InstanceId, version: i64) -> Self {
        Self { instance, version }
    }

    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    /// The number of events in the stream, this writer's appends included.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Appends `event` at the next version and then writes it to the outbox, both in `work`'s transaction (a
    /// refused append leaves nothing in either).
    pub async fn append<E: Event>(&mut self, work: &mut Work, tenant: &TenantId, event: &E) -> Result<Recorded> {
        let envelope = work.envelope(tenant, event);
        let meta = serde_json::json!({
            "traceId": envelope.trace_id, "correlationId": envelope.correlation_id,
            "causationId": envelope.causation_id, "actor": envelope.actor,
        });
        let appended = store::append(
            work,
            tenant,
            self.instance,
            self.version,
            HISTORY_LIMIT,
            &envelope.event_id,
            &envelope.event_type,
            &envelope.payload,
            &meta,
        )
        .await?;
        let Some(recorded) = appended else {
            return Err(self.refusal(work, tenant).await);
        };
        work.emit_built(event, &envelope).await?;
        self.version = recorded.version;
        if recorded.version == HISTORY_WARNING {
            tracing::warn!(
                tenant = %tenant, instance = %self.instance, limit = HISTORY_LIMIT,
                "a workflow instance's history reached {HISTORY_WARNING} events; it should continue as new"
            );
        }
        Ok(recorded)
    }

    /// Why an append matched nothing: the stream moved on, is full, or does not exist.
    async fn refusal(&self, work: &mut Work, tenant: &TenantId) -> Error {
        let (expected, instance) = (self.version, self.instance);
        match store::version(work, tenant, instance).await {
            Err(e) => e,
            Ok(None) => Error::not_found(format!("no workflow instance `{instance}`")),
            Ok(Some(actual)) if actual == expected => Error::QuotaExceeded(format!(
                "workflow instance `{instance}` holds {actual} events, the most one history may hold \
                     ({HISTORY_LIMIT}); continue it as a new instance"
            ))
            .with("historyLength", actual)
            .with("limit", HISTORY_LIMIT),
            Ok(Some(actual)) => Error::conflict(format!(
                "workflow instance `{instance}` is at version {actual}, not the expected {expected}: another \
                 change came first; read it again and retry"
            ))
            .with("expectedVersion", expected)
            .with("actualVersion", actual),
        }
    }
}

/// Up to `limit` events of every stream after `from`, in the global order, that no transaction still in
/// flight can precede: only events of transactions older than the oldest one running are read, so an
/// event that commits later always sorts after the last one returned. `tx` is a follower's
/// ([`store::follower_tx`]).
pub async fn follow(tx: &mut kernel::db::Tx, from: Checkpoint, limit: i64) -> Result<Vec<Recorded>> {
    store::follow(tx, from, limit).await
}
