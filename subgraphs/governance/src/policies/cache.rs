//! Compiled policy sets, cached per tenant in process. A set is compiled from the store on first use and
//! dropped when a `PolicyPublished` or `PolicyDeprecated` event says it changed (every replica hears them:
//! `invalidation_bindings`); the platform's changes drop every tenant's set. A time-to-live bounds how long a
//! replica that missed an event (a broker outage) can evaluate an old set; the decision records the version
//! and hash of the set it used either way.

use std::sync::Arc;
use std::time::Duration;

use kernel::db::Db;
use kernel::envelope::Event;
use kernel::{Result, TenantId};

use super::cedar::{CompiledSet, Engine};
use super::store;
use crate::events::{PolicyDeprecated, PolicyPublished};

#[derive(Clone)]
pub struct PolicyCache {
    sets: moka::sync::Cache<TenantId, Arc<CompiledSet>>,
    engine: Engine,
}

impl PolicyCache {
    pub fn new(capacity: u64, ttl: Duration, engine: Engine) -> Self {
        Self { sets: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(), engine }
    }

    /// The tenant's compiled set (its own published policies and the platform's). Two requests missing at
    /// once may both compile; the second insert wins, which is harmless.
    pub async fn get(&self, db: &Db, tenant: &TenantId) -> Result<Arc<CompiledSet>> {
        if let Some(set) = self.sets.get(tenant) {
            return Ok(set);
        }
        let mut tx = db.tenant_tx(tenant).await?;
        let (policies, version) = store::published_for(&mut tx, tenant).await?;
        tx.commit().await?;
        let set = Arc::new(CompiledSet::compile_for(&policies, version, self.engine)?);
        self.sets.insert(tenant.clone(), set.clone());
        Ok(set)
    }

    /// Drops every set.
    pub fn clear(&self) {
        self.sets.invalidate_all();
    }

    /// Drops `tenant`'s set (every tenant's for the platform).
    pub fn invalidate(&self, tenant: &TenantId) {
        if tenant.is_platform() {
            self.sets.invalidate_all();
        } else {
            self.sets.invalidate(tenant);
        }
    }
}

/// The events after which a tenant's compiled set is stale.
pub fn invalidation_bindings() -> Vec<String> {
    vec![PolicyPublished::routing_key(), PolicyDeprecated::routing_key()]
}
