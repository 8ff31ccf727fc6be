//! Durable timers: things a domain must do at a time — a step's timeout, a wait, a retry's backoff, a lease's
//! expiry check — kept in the domain's database, so they survive restarts and are fired once.
//!
//! A timer is keyed (tenant, subject, name, deadline) — for workflow, (instance, step, deadline) — and set in
//! the caller's transaction ([`set`]), so it exists exactly when the change that needed it committed;
//! setting it again is a no-op, and [`cancel`] drops a subject's timers. [`fire_due`] fires every timer
//! whose deadline is at or before the time it is given (the clock is the caller's: a worker passes
//! `Utc::now()`, a test steps time by passing a later one): timers are claimed in batches with `FOR UPDATE
//! SKIP LOCKED` (one replica fires a timer, the others skip it), each handed to the domain's [`OnTimer`] in
//! a [`Work`] under the timer's tenant and a savepoint of its own, and deleted in that same transaction. Its
//! effects (the event it appends) and its removal commit together; if the handler fails, its savepoint
//! rolls back alone, and if the process dies first, nothing of the batch is kept and its timers fire at a
//! later pass.
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
/// Back to the firer's view (no tenant).
const FIRER_VIEW: &str = "SELECT set_config('app.system', $1, true), set_config('app.tenant_id', '', true)";

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

/// Timers claimed (and fired) per transaction.
const CLAIM: i64 = 100;

/// Fires the timers due at `now`, up to `limit` firings, soonest first: up to [`CLAIM`] at a time are
/// claimed in one transaction (other replicas skip what this one holds), and each is fired under a savepoint
/// of its own (its tenant set, its handler run, the timer deleted): a handler's failure rolls back that
/// timer's work alone, which is logged and kept, not claimed again before a backoff (1 s, 2 s, 4 s … at most
/// 5 minutes, on the same clock), so it neither spins nor holds back the timers due after it. The batch
/// commits together: a crash before the commit fires its timers again at a later pass.
pub async fn fire_due(db: &Db, now: DateTime<Utc>, limit: usize, handler: &dyn OnTimer) -> Result<Fired> {
    let mut done = Fired::default();
    while done.fired + done.failed < limit {
        let mut tx = db::system_tx(db.shared(), FIRER).await?;
        let want = CLAIM.min(i64::try_from(limit - done.fired - done.failed).unwrap_or(CLAIM));
        let claimed: Vec<(String, String, String, DateTime<Utc>, Value, i32)> = sqlx::query_as(
            "SELECT tenant_id, subject, name, deadline, payload, attempts FROM timers \
              WHERE deadline <= $1 AND (not_before IS NULL OR not_before <= $1) \
              ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(want)
        .fetch_all(&mut *tx)
        .await?;
        if claimed.is_empty() {
            break;
        }
        for (tenant, subject, name, deadline, payload, attempts) in claimed {
            // The firer's own view first (the timer before may have left its tenant's), so a rollback to the
            // savepoint comes back to it: the failure's bookkeeping below runs as the firer.
            sqlx::query(FIRER_VIEW).bind(FIRER).execute(&mut *tx).await?;
            sqlx::query("SAVEPOINT timer").execute(&mut *tx).await?;
            let outcome = match TenantId::try_from(tenant.clone()) {
                Ok(t) => {
                    let timer = Timer { tenant: t, subject: subject.clone(), name: name.clone(), deadline, payload };
                    let (back, outcome) = fire_one(tx, &timer, handler).await;
                    tx = back;
                    outcome
                }
                Err(_) => Err(Error::internal(anyhow::anyhow!("the timer's tenant `{tenant}` is not a tenant id"))),
            };
            match outcome {
                Ok(()) => {
                    sqlx::query("RELEASE SAVEPOINT timer").execute(&mut *tx).await?;
                    done.fired += 1;
                }
                Err(e) => {
                    // Everything the handler did goes, and the firer's own view comes back with it.
                    sqlx::query("ROLLBACK TO SAVEPOINT timer").execute(&mut *tx).await?;
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
                    sqlx::query("RELEASE SAVEPOINT timer").execute(&mut *tx).await?;
                    done.failed += 1;
                }
            }
        }
        tx.commit().await?;
    }
    Ok(done)
}

/// Fires one claimed timer inside the batch's transaction (under its savepoint): the transaction becomes
/// the timer's tenant's alone — the handler sees no other tenant's timers or rows — then the timer is
/// deleted. Hands the transaction back, whatever happened.
async fn fire_one(tx: Tx, timer: &Timer, handler: &dyn OnTimer) -> (Tx, Result<()>) {
    let meta = EventMeta::system(format!("timer:{}", timer.subject), "timer");
    let mut work = Work::from_tx(tx, meta);
    let outcome = async {
        sqlx::query("SELECT set_config('app.system', '', true)").execute(&mut **work).await?;
        db::set_tenant(&mut work, &timer.tenant).await?;
        handler.fire(&mut work, timer).await?;
        sqlx::query("DELETE FROM timers WHERE tenant_id = $1 AND subject = $2 AND name = $3 AND deadline = $4")
            .bind(timer.tenant.as_str())
            .bind(&timer.subject)
            .bind(&timer.name)
            .bind(timer.deadline)
            .execute(&mut **work)
            .await?;
        Ok::<_, Error>(())
    }
    .await;
    (work.into_tx(), outcome)
}
