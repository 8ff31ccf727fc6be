//! Redis as a cache and a coordinator — never the system of record.
//!
//! Every key is `{namespace}:{{tenant}}:{kind}:{id}` — the namespace (`cp` by default) separates deployments
//! that share a Redis; then the tenant in braces, a Redis Cluster hash tag (platform-level entries use the
//! reserved tenant `platform`), so a cluster keeps one tenant's keys in one slot, multi-key scripts keep
//! working, and one tenant's keys can be found and dropped together. Kinds are the constants in [`kind`].
//! Entries are invalidated after commit by the events the change published, and carry a TTL as a backstop;
//! everything here can be rebuilt from PostgreSQL, so a Redis error is logged and read as a miss.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ids::TenantId;

/// Every kind of key, in one place (the third segment of a key).
pub mod kind {
    /// A validated API token, by its hash (platform tenant).
    pub const API_TOKEN: &str = "api-token";
    /// API-token last-used times waiting to be flushed to PostgreSQL, per tenant.
    pub const API_TOKEN_LAST_USED: &str = "api-token-last-used";
    /// Revoked access-token ids, a sorted set scored by expiry (platform tenant): replicas load it at start.
    pub const REVOKED_JTI: &str = "revoked-jti";
    /// Tenancy's flag definitions snapshot (platform tenant).
    pub const FLAGS: &str = "flags";
    /// A tenant's quota definition, by quota key.
    pub const QUOTA_DEFINITION: &str = "quota-def";
    /// A tenant's quota counter, by quota key and period.
    pub const QUOTA_COUNTER: &str = "quota";
    /// Catalogue: an environment's configuration, by `<project id>/<environment>`.
    pub const ENVIRONMENT: &str = "environment";
    /// A lease on a resource (`kernel::leases`): its holder, with a TTL.
    pub const LEASE: &str = "lease";
    /// Workflow: an instance's process state (the projection's hot copy).
    pub const PROCESS_STATE: &str = "process-state";
}

#[derive(Clone)]
pub struct Cache {
    conn: ConnectionManager,
    namespace: String,
}

impl Cache {
    /// `namespace` starts every key; it may not contain `:`.
    pub async fn connect(url: &SecretString, namespace: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !namespace.is_empty() && !namespace.contains(':'),
            "the Redis namespace must be non-empty and free of ':'"
        );
        let client = redis::Client::open(url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { conn, namespace: namespace.to_owned() })
    }

    /// `{namespace}:{{tenant}}:{kind}:{id}`.
    pub fn key(&self, tenant: &TenantId, kind: &str, id: &str) -> String {
        format!("{}:{{{tenant}}}:{kind}:{id}", self.namespace)
    }

    /// A pattern matching one kind of key across tenants, for `SCAN`.
    pub fn pattern(&self, kind: &str, id: &str) -> String {
        format!("{}:{{*}}:{kind}:{id}", self.namespace)
    }

    /// The tenant a key of this cache belongs to.
    pub fn tenant_of(&self, key: &str) -> Option<TenantId> {
        let rest = key.strip_prefix(&self.namespace)?.strip_prefix(":{")?;
        let (tenant, _) = rest.split_once('}')?;
        TenantId::try_from(tenant.to_owned()).ok()
    }

    /// The multiplexed, auto-reconnecting connection, for commands beyond get/put/invalidate.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let raw: Option<String> = match self.conn.clone().get(key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(key, error = %e, "cache read failed; treating as a miss");
                return None;
            }
        };
        raw.and_then(|s| serde_json::from_str(&s).ok())
    }

    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(body) = serde_json::to_string(value) else {
            return;
        };
        let result: redis::RedisResult<()> = self.conn.clone().set_ex(key, body, ttl.as_secs().max(1)).await;
        if let Err(e) = result {
            tracing::warn!(key, error = %e, "cache write failed");
        }
    }

    pub async fn invalidate(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let result: redis::RedisResult<()> = self.conn.clone().del(keys).await;
        if let Err(e) = result {
            tracing::warn!(?keys, error = %e, "cache invalidation failed; entries expire by TTL");
        }
    }

    /// For `/health/ready`.
    pub async fn is_ready(&self) -> bool {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        matches!(tokio::time::timeout(Duration::from_secs(2), ping.query_async::<String>(&mut conn)).await, Ok(Ok(_)))
    }
}
