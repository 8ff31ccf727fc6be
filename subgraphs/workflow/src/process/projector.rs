//! The projector: follows the event store's global order from its checkpoint, folds each event into its
//! instance's state ([`super::apply`]) and writes the states and the new checkpoint in one transaction — so
//! an event is applied exactly once whatever crashes, and replicas take turns (a transaction-scoped lock).
//! `cp_projection_lag_seconds{projector="process-state"}` says how far behind it is: the age of the oldest
//! event it has not applied (0 when there is none). It reads only below the oldest transaction in flight
//! on the whole server, so a session left idle in a transaction anywhere holds it back — and shows here.

use std::collections::HashMap;

use chrono::Utc;
use kernel::db::Lock;
use kernel::{Kernel, Result, TenantId};

use super::{apply, store, ProcessState};
use crate::history;
use crate::ids::InstanceId;

/// The projector's name (its checkpoint's and its metric's).
pub const NAME: &str = "process-state";
/// Events applied per transaction.
pub const BATCH: i64 = 2_000;
/// How often the worker looks for new events.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

const LOCK: &str = "workflow.projector:process-state";

/// Applies every event that can be read now, batch by batch, and writes the states' hot copies; how many
/// events.
pub async fn catch_up(kernel: &Kernel) -> Result<usize> {
    let mut total = 0;
    loop {
        let applied = pass(kernel).await?;
        total += applied;
        if applied == 0 {
            return Ok(total);
        }
    }
}

/// One batch: at most [`BATCH`] events past the checkpoint.
async fn pass(kernel: &Kernel) -> Result<usize> {
    let lag = kernel::metrics::PROJECTION_LAG_SECONDS.with_label_values(&[NAME]);
    let mut tx = history::store::follower_tx(&kernel.db).await?;
    kernel::db::lock(&mut tx, LOCK, Lock::Exclusive).await?;
    let from = store::checkpoint(&mut tx, NAME).await?;
    let events = history::follow(&mut tx, from, BATCH).await?;
    let Some(last) = events.last().cloned() else {
        // Nothing can be read yet; an event may still wait behind a transaction in flight (anywhere on the
        // server): the lag is its age, not zero.
        let waiting = history::store::first_recorded_after(&mut tx, from).await?;
        tx.commit().await?;
        lag.set(waiting.map_or(0.0, |at| (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0));
        return Ok(0);
    };
    // The batch's instances as they stand (one statement), each event folded in, and every state written
    // back (one statement).
    let mut order: Vec<(TenantId, InstanceId)> = Vec::new();
    for e in &events {
        let key = (e.tenant_id.clone(), e.instance_id);
        if !order.contains(&key) {
            order.push(key);
        }
    }
    let mut states: HashMap<(TenantId, InstanceId), Option<ProcessState>> =
        order.iter().map(|k| (k.clone(), None)).collect();
    for s in store::get_many(&mut tx, &order).await? {
        states.insert((s.tenant_id.clone(), s.instance_id), Some(s));
    }
    for e in &events {
        let state = states.get_mut(&(e.tenant_id.clone(), e.instance_id)).expect("every instance of the batch");
        *state = apply(state.take(), e);
    }
    let changed: Vec<&ProcessState> = order.iter().filter_map(|k| states[k].as_ref()).collect();
    store::upsert_many(&mut tx, &changed).await?;
    store::save_checkpoint(&mut tx, NAME, last.checkpoint()).await?;
    tx.commit().await?;
    // After the commit: Redis never holds a state the table does not.
    super::hot::write(&kernel.cache, &changed).await;
    lag.set((Utc::now() - last.recorded_at).num_milliseconds().max(0) as f64 / 1000.0);
    Ok(events.len())
}

/// Drops the projection — the table and the hot copies — and builds it again from the events (holding the
/// projector's lock while it clears, so no pass interleaves); how many events it applied.
pub async fn rebuild(kernel: &Kernel) -> Result<usize> {
    let mut tx = history::store::follower_tx(&kernel.db).await?;
    kernel::db::lock(&mut tx, LOCK, Lock::Exclusive).await?;
    store::clear(&mut tx, NAME).await?;
    super::hot::clear(&kernel.cache).await?;
    tx.commit().await?;
    catch_up(kernel).await
}
