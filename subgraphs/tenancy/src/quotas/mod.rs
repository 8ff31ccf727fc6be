//! Quota enforcement: an atomic check-and-increment in Redis in front of PostgreSQL, the system of record.
//!
//! [`consume`] first asks Redis (one Lua script: "add n unless that passes the limit") so over-limit callers
//! are turned away without touching PostgreSQL; then it records the consumption in `quota_balances` with a
//! conditional upsert that enforces the same limit, so PostgreSQL never goes over even if Redis did. If the
//! PostgreSQL write fails, the Redis increment is refunded. When Redis has lost a counter (restart,
//! `FLUSHALL`, eviction) the script says so and the counter is reseeded from PostgreSQL with `SET NX`; when
//! Redis is down altogether, PostgreSQL alone enforces the limit.
//!
//! A granted consumption also publishes `UsageRecorded` (meter = the quota's key, dimension
//! `source: quota`) in the transaction that adds to the balance: governance meters it, and the quota's
//! `used` for a period equals the usage recorded for that meter over the period.

pub mod schema;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::cache::Cache;
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::{Authorized, Error, Result, TenantId, Work};
use redis::aio::ConnectionManager;

use crate::domain::Period;
use crate::events::{UsageRecord, UsageRecorded};
use crate::model::{Quota, QuotaDefinition};

/// KEYS[1] counter; ARGV[1] amount; ARGV[2] limit. Returns the new count, -1 if the counter is missing,
/// -2 if the amount would pass the limit.
const CHECK_AND_INCREMENT: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
local amount = tonumber(ARGV[1])
if tonumber(current) + amount > tonumber(ARGV[2]) then return -2 end
return redis.call('INCRBY', KEYS[1], amount)
";

#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Granted(i64),
    Exceeded,
    /// Redis has no counter: seed it from PostgreSQL and ask again.
    Missing,
}

/// The Redis side of quota enforcement.
#[derive(Clone)]
pub struct QuotaGate {
    script: redis::Script,
}

impl Default for QuotaGate {
    fn default() -> Self {
        Self { script: redis::Script::new(CHECK_AND_INCREMENT) }
    }
}

impl QuotaGate {
    pub fn counter_key(cache: &Cache, tenant: &TenantId, quota: &str, period_start: DateTime<Utc>) -> String {
        cache.key(tenant, kernel::cache::kind::QUOTA_COUNTER, &format!("{quota}:{}", period_start.timestamp()))
    }

    pub async fn check_and_increment(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        amount: i64,
        limit: i64,
    ) -> redis::RedisResult<Gate> {
        let n: i64 = self.script.key(key).arg(amount).arg(limit).invoke_async(conn).await?;
        Ok(match n {
            -1 => Gate::Missing,
            -2 => Gate::Exceeded,
            n => Gate::Granted(n),
        })
    }

    /// Seeds a lost counter with PostgreSQL's figure, unless another request got there first.
    pub async fn seed(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        used: i64,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        redis::cmd("SET").arg(key).arg(used).arg("NX").arg("EX").arg(ttl.as_secs().max(1)).query_async(conn).await
    }

    pub async fn refund(&self, conn: &mut ConnectionManager, key: &str, amount: i64) -> redis::RedisResult<()> {
        redis::cmd("DECRBY").arg(key).arg(amount).query_async(conn).await
    }
}

/// How long a counter lives: to the end of its period plus a day, or 30 days for lifetime quotas (after
/// which it is simply reseeded from PostgreSQL).
fn counter_ttl(period: Period, now: DateTime<Utc>) -> Duration {
    match period.end(now) {
        Some(end) => (end - now).to_std().unwrap_or_default() + Duration::from_secs(86_400),
        None => Duration::from_secs(30 * 86_400),
    }
}

/// Consumes `amount` of `tenant`'s quota `def`, or fails with `QUOTA_EXCEEDED`. Returns the new balance.
pub async fn consume(
    db: &Db,
    meta: EventMeta,
    cache: &Cache,
    gate: &QuotaGate,
    tenant: &Authorized,
    def: &QuotaDefinition,
    amount: i64,
) -> Result<Quota> {
    if amount < 1 {
        return Err(Error::bad_input("amount", "amount must be at least 1"));
    }
    let now = Utc::now();
    let period_start = def.period.start(now);
    let key = QuotaGate::counter_key(cache, tenant, &def.key, period_start);
    let exceeded = || Error::QuotaExceeded(format!("quota `{}` would exceed its limit of {}", def.key, def.limit));
    let mut conn = cache.connection();

    // Redis first. `granted` records whether Redis counted this request, so it can be refunded.
    let mut granted = false;
    for _ in 0..2 {
        match gate.check_and_increment(&mut conn, &key, amount, def.limit).await {
            Ok(Gate::Granted(_)) => {
                granted = true;
                break;
            }
            Ok(Gate::Exceeded) => return Err(exceeded()),
            Ok(Gate::Missing) => {
                let mut tx = db.tenant_tx(tenant).await?;
                let used = crate::quotas::store::quota_used(&mut tx, tenant, &def.key, period_start).await?;
                tx.commit().await?;
                if let Err(e) = gate.seed(&mut conn, &key, used, counter_ttl(def.period, now)).await {
                    tracing::warn!(error = %e, "could not seed quota counter; PostgreSQL enforces alone");
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis unavailable; PostgreSQL enforces the quota alone");
                break;
            }
        }
    }

    let recorded = async {
        let mut work = Work::tenant(db, tenant, meta).await?;
        let used = crate::quotas::store::add_usage(&mut work, tenant, &def.key, period_start, amount).await?;
        if used.is_some() {
            let record = UsageRecord {
                meter: def.key.clone(),
                quantity: amount,
                occurred_at: Some(now),
                dimensions: [("source".to_owned(), "quota".to_owned())].into(),
                idempotency_key: None,
            };
            work.emit(tenant, &UsageRecorded { record }).await?;
        }
        work.commit().await?;
        Ok::<_, Error>(used)
    }
    .await;
    let failure = match recorded {
        Ok(Some(used)) => return Ok(def.with_usage(used, now)),
        Ok(None) => exceeded(),
        Err(e) => e,
    };
    if granted {
        if let Err(e) = gate.refund(&mut conn, &key, amount).await {
            // The counter now runs ahead of PostgreSQL until it expires: it can only refuse early, never let
            // a tenant past its limit.
            tracing::warn!(error = %e, "could not refund quota counter");
        }
    }
    Err(failure)
}
