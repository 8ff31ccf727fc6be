//! Leases with fencing tokens (Kleppmann, "How to do distributed locking"): who holds a resource — an agent
//! of a pool, a task — lives in Redis with a TTL and is renewed while held; the **fencing token** each new
//! lease carries comes from PostgreSQL (`fencing_tokens`, a counter per tenant and resource that only
//! grows). A holder writes with its token, and the write checks it ([`check`], in the writer's
//! transaction): once another holder took the resource — the lease expired, Redis lost it, a failover —
//! the newer lease has a higher token and the older holder's writes are refused with `CONFLICT`, nothing
//! written. Redis losing every lease is safe: leases are taken again with higher tokens.
//!
//! ```ignore
//! let lease = leases::acquire(&db, &cache, &tenant, "pool:writers/agent-7", "task-42", ttl).await?
//!     .ok_or_else(|| Error::conflict("the agent is busy"))?;
//! // …each report of the holder, in its unit of work:
//! leases::check(&mut work, &tenant, "pool:writers/agent-7", lease.token).await?;
//! ```

use std::time::Duration;

use crate::cache::{kind, Cache};
use crate::db::{Db, Tx};
use crate::error::{Error, Result};
use crate::ids::TenantId;

/// A lease held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub tenant: TenantId,
    pub resource: String,
    pub holder: String,
    /// The fencing token: higher than every earlier lease's on the resource.
    pub token: i64,
    pub ttl: Duration,
}

fn redis_error(e: redis::RedisError) -> Error {
    tracing::warn!(error = %e, "the lease store (Redis) failed");
    Error::unavailable("the lease store (Redis) is unavailable; try again shortly")
}

/// What [`take`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// The resource was free: now the holder's, for the TTL.
    New,
    /// The holder had it already: its TTL starts again.
    Again,
    /// Another holder has it.
    Busy,
}

/// Takes the lease on `resource` in Redis for `holder` for `ttl` (no fencing token: [`issue`] gives one,
/// in the writer's transaction). Atomic: free → this holder's; this holder's already → its TTL from now;
/// another's → `Busy`. (Two commands would let the key expire and be taken in between.)
pub async fn take(cache: &Cache, tenant: &TenantId, resource: &str, holder: &str, ttl: Duration) -> Result<Taken> {
    if resource.is_empty() || resource.len() > MAX_RESOURCE || holder.is_empty() {
        return Err(Error::bad_input("resource", "a lease names a resource (1–200 bytes) and a holder"));
    }
    let key = cache.key(tenant, kind::LEASE, resource);
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let taken: String = redis::Script::new(
        "local cur = redis.call('GET', KEYS[1]) \
         if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 'new' end \
         if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 'again' end \
         return 'busy'",
    )
    .key(&key)
    .arg(holder)
    .arg(ms)
    .invoke_async(&mut cache.connection())
    .await
    .map_err(redis_error)?;
    Ok(match taken.as_str() {
        "new" => Taken::New,
        "again" => Taken::Again,
        _ => Taken::Busy,
    })
}

/// The next fencing token of `fence` (what the holder's writes protect: a resource, or a task whatever
/// slot it runs on), issued in the caller's transaction `tx` under `tenant`: higher than every token
/// issued before. A transaction that rolls back gives its token again; nobody learned it.
pub async fn issue(tx: &mut Tx, tenant: &TenantId, fence: &str, holder: &str) -> Result<i64> {
    if fence.is_empty() || fence.len() > MAX_RESOURCE {
        return Err(Error::bad_input("resource", "a fence names a resource (1–200 bytes)"));
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO fencing_tokens (tenant_id, resource, token, holder) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (tenant_id, resource) DO UPDATE \
           SET token = fencing_tokens.token + 1, holder = EXCLUDED.holder, issued_at = now() \
         RETURNING token",
    )
    .bind(tenant.as_str())
    .bind(fence)
    .bind(holder)
    .fetch_one(&mut **tx)
    .await?)
}

/// Longest resource name.
pub const MAX_RESOURCE: usize = 200;

/// Takes the lease on `resource` for `holder` for `ttl`, with the next fencing token of the resource
/// ([`take`], then [`issue`] in a transaction of its own); `None` while another holder has it. A holder
/// that has it already gets it again, with a new token (its older one is fenced).
pub async fn acquire(
    db: &Db,
    cache: &Cache,
    tenant: &TenantId,
    resource: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>> {
    let taken = take(cache, tenant, resource, holder, ttl).await?;
    if taken == Taken::Busy {
        return Ok(None);
    }
    let issued = async {
        let mut tx = db.tenant_tx(tenant).await?;
        let token = issue(&mut tx, tenant, resource, holder).await?;
        tx.commit().await?;
        Ok::<_, Error>(token)
    }
    .await;
    match issued {
        Ok(token) => Ok(Some(Lease {
            tenant: tenant.clone(),
            resource: resource.to_owned(),
            holder: holder.to_owned(),
            token,
            ttl,
        })),
        Err(e) => {
            // No token, no new lease: an entry this call made goes (one the holder had before stays).
            if taken == Taken::New {
                let _ = release_key(cache, &cache.key(tenant, kind::LEASE, resource), holder).await;
            }
            Err(e)
        }
    }
}

/// Extends the lease by its TTL from now; `false` if it is no longer this holder's (expired, lost, taken).
pub async fn renew(cache: &Cache, lease: &Lease) -> Result<bool> {
    let key = cache.key(&lease.tenant, kind::LEASE, &lease.resource);
    let ms = u64::try_from(lease.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let renewed: i64 = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
    )
    .key(&key)
    .arg(&lease.holder)
    .arg(ms)
    .invoke_async(&mut cache.connection())
    .await
    .map_err(redis_error)?;
    Ok(renewed == 1)
}

/// Who holds the lease on `resource` now (`None`: nobody — it expired, was released, or Redis lost it).
pub async fn holder(cache: &Cache, tenant: &TenantId, resource: &str) -> Result<Option<String>> {
    let key = cache.key(tenant, kind::LEASE, resource);
    redis::cmd("GET").arg(&key).query_async(&mut cache.connection()).await.map_err(redis_error)
}

/// Gives the lease up, if it is still this holder's.
pub async fn release(cache: &Cache, lease: &Lease) -> Result<()> {
    release_key(cache, &cache.key(&lease.tenant, kind::LEASE, &lease.resource), &lease.holder).await
}

async fn release_key(cache: &Cache, key: &str, holder: &str) -> Result<()> {
    let _: i64 = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
    .key(key)
    .arg(holder)
    .invoke_async(&mut cache.connection())
    .await
    .map_err(redis_error)?;
    Ok(())
}

/// `CONFLICT` unless `token` is the resource's latest, in the writer's transaction (under `tenant`). The
/// row stays share-locked until the writer commits, so no newer lease is issued in between: a write either
/// lands before the next lease or is refused.
pub async fn check(tx: &mut Tx, tenant: &TenantId, resource: &str, token: i64) -> Result<()> {
    let latest: Option<i64> =
        sqlx::query_scalar("SELECT token FROM fencing_tokens WHERE tenant_id = $1 AND resource = $2 FOR SHARE")
            .bind(tenant.as_str())
            .bind(resource)
            .fetch_optional(&mut **tx)
            .await?;
    match latest {
        Some(latest) if latest == token => Ok(()),
        Some(latest) => Err(Error::conflict(format!(
            "the lease on `{resource}` with fencing token {token} was superseded (the latest token is {latest})"
        ))
        .with("fencingToken", token)
        .with("latestToken", latest)),
        None => Err(Error::conflict(format!("no lease on `{resource}` was ever issued"))),
    }
}
