//! The read-heavy path: an environment's configuration cached in Redis under the tenant's keys
//! (`cp:{tenant}:environment:<project>/<name>`). A change drops the entry after commit, twice over: the
//! mutation that applied it drops it at once, so its caller reads its own write, and the listener drops it
//! again when `EnvironmentChanged` arrives (so an entry a concurrent reader put back from before the commit
//! does not survive); a change applied by the approval consumer is dropped by that event alone. Entries
//! expire after `ENVIRONMENT_CACHE_TTL_SECS` as a backstop.

use std::sync::Arc;
use std::time::Duration;

use kernel::consumer::Notice;
use kernel::envelope::{Envelope, Event};
use kernel::{Result, TenantId};

use super::{store, Environment, EnvironmentName};
use crate::events;
use crate::ids::ProjectId;
use crate::State;

pub const KIND: &str = kernel::cache::kind::ENVIRONMENT;

fn key(state: &State, tenant: &TenantId, project_id: ProjectId, name: EnvironmentName) -> String {
    state.kernel.cache.key(tenant, KIND, &format!("{project_id}/{}", name.as_str()))
}

/// The environment, from Redis when cached there, else from PostgreSQL (and then cached).
pub async fn get(
    state: &State,
    tenant: &TenantId,
    project_id: ProjectId,
    name: EnvironmentName,
) -> Result<Option<Environment>> {
    let key = key(state, tenant, project_id, name);
    if let Some(env) = state.kernel.cache.get_json::<Environment>(&key).await {
        // A key is the tenant's own; the row it holds must be too.
        if env.tenant_id == *tenant && env.project_id == project_id && env.name == name {
            return Ok(Some(env));
        }
    }
    let mut tx = state.kernel.db.tenant_tx(tenant).await?;
    let env = store::get(&mut tx, tenant, project_id, name).await?;
    tx.commit().await?;
    if let Some(env) = &env {
        let ttl = Duration::from_secs(state.config.environment_cache_ttl_secs);
        state.kernel.cache.put_json(&key, env, ttl).await;
    }
    Ok(env)
}

/// Drops the cached copy (after the change committed).
pub async fn forget(state: &State, tenant: &TenantId, project_id: ProjectId, name: EnvironmentName) {
    state.kernel.cache.invalidate(&[key(state, tenant, project_id, name)]).await;
}

/// The per-replica listener hears every environment change.
pub fn bindings() -> Vec<String> {
    vec![events::EnvironmentChanged::routing_key()]
}

pub fn on_notice(state: Arc<State>) -> impl Fn(Notice) + Send + Sync + 'static {
    move |notice| {
        let state = state.clone();
        match notice {
            Notice::Event(env) => {
                tokio::spawn(async move { invalidate(&state, &env).await });
            }
            // Changes may have been missed while disconnected: no cached environment can be trusted.
            Notice::Reset => {
                tokio::spawn(async move { forget_all(&state).await });
            }
        }
    }
}

async fn forget_all(state: &State) {
    use futures::StreamExt;
    let cache = &state.kernel.cache;
    let pattern = cache.pattern(KIND, "*");
    let mut conn = cache.connection();
    let keys: Vec<String> = match redis::AsyncCommands::scan_match::<_, String>(&mut conn, &pattern).await {
        Ok(iter) => iter.collect().await,
        Err(e) => {
            tracing::warn!(error = %e, "could not list cached environments; they expire by TTL");
            return;
        }
    };
    for chunk in keys.chunks(500) {
        cache.invalidate(chunk).await;
    }
}

async fn invalidate(state: &State, env: &Envelope) {
    if env.event_type != events::EnvironmentChanged::TYPE {
        return;
    }
    let Ok(e) = env.payload_as::<events::EnvironmentChanged>() else {
        tracing::warn!(event_id = %env.event_id, "malformed EnvironmentChanged; nothing invalidated");
        return;
    };
    if let Some(name) = EnvironmentName::parse(&e.environment) {
        forget(state, &env.tenant_id, e.project_id, name).await;
    }
}
