//! Durable timers: things a domain must do at a time — a step's timeout, a wait, a retry's backoff, a lease's
//! expiry check — kept in the domain's database, so they survive restarts and are fired once.
//!
//! A timer is keyed (tenant, subject, name, deadline) — for workflow, (instance, step, deadline) — and set in
//! the caller's transaction ([`set`]), so it exists exactly when the change that needed it committed;
//! setting it again is a no-op, and [`cancel`] drops a subject's timers. [`fire_due`] fires every timer
//! whose deadline is at or before the time it is given (the clock is the caller's: a worker passes
//! `Utc::now()`, a test steps time by passing a later one): each is claimed with `FOR UPDATE SKIP LOCKED`
//! (one replica fires a timer, the others skip it), handed to the domain's [`OnTimer`] in a [`Work`] under
//! the timer's tenant, and deleted in that same transaction. Its effects (the event it appends) and its
//! removal commit together; if the handler fails or the process dies first, nothing of it is kept and the
//! timer fires at a later pass.
//!
//! ```ignore
//! kernel::timers::set(&mut work, &tenant, &instance.to_string(), "timeout:draft", deadline, &json!({})).await?;
//! // …and in a worker's pass, every 250 ms:
//! kernel::timers::fire_due(&state.kernel.db, Utc::now(), 500, &Timeouts).await?;
//! ```

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::{self, Db, Tx};
use crate::envelope::EventMeta;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::work::Work;

/// The policy under which a firer reads every tenant's timers.
const FIRER: &str = "timers";

/// A timer as set.
#[derive(Clone, Debug, PartialEq)]
pub struct Timer {
    pub tenant: TenantId,
    /// What it is about (a workflow instance's id).
    pub subject: String,
    /// What it is for (`timeout:<step>`, `wait:<step>`).
    pub name: String,
    pub deadline: DateTime<Utc>,
    /// What the handler needs beside the key.
    pub payload: Value,
}

/// What a domain does when one of its timers fires, in the unit of work that deletes the timer.
#[async_trait::async_trait]
pub trait OnTimer: Send + Sync {
    async fn fire(&self, work: &mut Work, timer: &Timer) -> Result<()>;
}

/// Sets a timer in the caller's transaction (`tx` under `tenant`'s row-level security); the same key again
/// is one timer. `payload` must be a JSON object.
pub async fn set(
    tx: &mut Tx,
    tenant: &TenantId,
    subject: &str,
    name: &str,
    deadline: DateTime<Utc>,
    payload: &Value,
) -> Result<()> {
    if !payload.is_object() {
        return Err(Error::internal(anyhow::anyhow!("a timer's payload is a JSON object")));
    }
    sqlx::query(
        "INSERT INTO timers (tenant_id, subject, name, deadline, payload) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(name)
    .bind(deadline)
    .bind(payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops `subject`'s timers named `name` (every one of the subject's when `None`), in the caller's
/// transaction; how many there were. A timer a firer holds at this moment is skipped, not waited for —
/// waiting could deadlock with a handler that locks what the caller holds — so it still fires once the
/// caller commits: handlers must find a timer whose reason has passed and do nothing (workflow's check
/// that the step is still where the timer was set for).
pub async fn cancel(tx: &mut Tx, tenant: &TenantId, subject: &str, name: Option<&str>) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM timers WHERE (tenant_id, subject, name, deadline) IN ( \
            SELECT tenant_id, subject, name, deadline FROM timers \
             WHERE tenant_id = $1 AND subject = $2 AND ($3::text IS NULL OR name = $3) FOR UPDATE SKIP LOCKED)",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .bind(name)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// `tenant`'s timers about `subject`, soonest first.
pub async fn pending(tx: &mut Tx, tenant: &TenantId, subject: &str) -> Result<Vec<Timer>> {
    let rows: Vec<(String, String, DateTime<Utc>, Value)> = sqlx::query_as(
        "SELECT subject, name, deadline, payload FROM timers WHERE tenant_id = $1 AND subject = $2 \
         ORDER BY deadline, name",
    )
    .bind(tenant.as_str())
    .bind(subject)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(subject, name, deadline, payload)| Timer { tenant: tenant.clone(), subject, name, deadline, payload })
        .collect())
}

/// What a [`fire_due`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    pub fired: usize,
    /// Timers whose handler failed: kept, to fire again after a backoff.
    pub failed: usize,
}

/// The longest a failing timer waits before its next attempt.
const MAX_RETRY_WAIT: chrono::Duration = chrono::Duration::minutes(5);

/// Fires the timers due at `now`, up to `limit` firings, soonest first, each in a transaction of its own
/// (claim, handler, delete, commit); other replicas skip what this one holds. A handler's failure is logged
/// and its timer kept, not claimed again before a backoff (1 s, 2 s, 4 s … at most 5 minutes, on the same
/// clock), so it neither spins nor holds back the timers due after it.
pub async fn fire_due(db: &Db, now: DateTime<Utc>, limit: usize, handler: &dyn OnTimer) -> Result<Fired> {
    let mut done = Fired::default();
    while done.fired + done.failed < limit {
        let mut tx = db::system_tx(db.shared(), FIRER).await?;
        let claimed: Option<(String, String, String, DateTime<Utc>, Value, i32)> = sqlx::query_as(
            "SELECT tenant_id, subject, name, deadline, payload, attempts FROM timers \
              WHERE deadline <= $1 AND (not_before IS NULL OR not_before <= $1) \
              ORDER BY deadline LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((tenant, subject, name, deadline, payload, attempts)) = claimed else {
            break;
        };
        let outcome = match TenantId::try_from(tenant.clone()) {
            Ok(tenant) => {
                let timer = Timer { tenant, subject: subject.clone(), name: name.clone(), deadline, payload };
                fire_one(tx, &timer, handler).await
            }
            Err(_) => {
                drop(tx);
                Err(Error::internal(anyhow::anyhow!("the timer's tenant `{tenant}` is not a tenant id")))
            }
        };
        match outcome {
            Ok(()) => done.fired += 1,
            Err(e) => {
                let wait = MAX_RETRY_WAIT.min(chrono::Duration::seconds(1i64 << attempts.clamp(0, 20)));
                tracing::warn!(
                    tenant,
                    subject,
                    name,
                    attempts = attempts + 1,
                    retry_in_s = wait.num_seconds(),
                    error = e.describe(),
                    "a timer's handler failed; it fires again after a backoff"
                );
                let mut tx = db::system_tx(db.shared(), FIRER).await?;
                sqlx::query(
                    "UPDATE timers SET attempts = attempts + 1, not_before = $5 \
                      WHERE tenant_id = $1 AND subject = $2 AND name = $3 AND deadline = $4",
                )
                .bind(&tenant)
                .bind(&subject)
                .bind(&name)
                .bind(deadline)
                .bind(now + wait)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                done.failed += 1;
            }
        }
    }
    Ok(done)
}

async fn fire_one(mut tx: Tx, timer: &Timer, handler: &dyn OnTimer) -> Result<()> {
    // The claim is held (its row lock); from here on the transaction is the timer's tenant's alone — the
    // handler sees no other tenant's timers or rows.
    sqlx::query("SELECT set_config('app.system', '', true)").execute(&mut *tx).await?;
    db::set_tenant(&mut tx, &timer.tenant).await?;
    let meta = EventMeta::system(format!("timer:{}", timer.subject), "timer");
    let mut work = Work::from_tx(tx, meta);
    handler.fire(&mut work, timer).await?;
    sqlx::query("DELETE FROM timers WHERE tenant_id = $1 AND subject = $2 AND name = $3 AND deadline = $4")
        .bind(timer.tenant.as_str())
        .bind(&timer.subject)
        .bind(&timer.name)
        .bind(timer.deadline)
        .execute(&mut **work)
        .await?;
    work.commit().await
}
