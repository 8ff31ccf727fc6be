//! Usage metering's SQL: a batch of records in one statement, the watermarks, reads over rollups and raw
//! records, and the owner's functions (`migrations/governance/1010_usage.sql`) that roll up, create and
//! drop partitions.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

use super::{Plan, Record};

/// The lock ingest holds shared and the rollup (`governance_usage_rollup`) exclusively.
const WATERMARK_LOCK: &str = "governance.usage-watermark";

/// Takes the ingest side of the watermark lock, then reads the hourly watermark (records before it are
/// refused) and the database's clock. Two statements: the read must see a rollup that committed while
/// this waited for the lock.
pub async fn open_for_ingest(tx: &mut Tx) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    kernel::db::lock(tx, WATERMARK_LOCK, kernel::db::Lock::Shared).await?;
    let row =
        sqlx::query!(r#"SELECT rolled_to AS "closed!", now() AS "now!" FROM usage_watermarks WHERE grain = 'hour'"#)
            .fetch_one(&mut **tx)
            .await?;
    Ok((row.closed, row.now))
}

/// Inserts `records` (duplicates of stored ones, or of each other, are dropped); returns how many were new.
pub async fn insert(tx: &mut Tx, tenant: &TenantId, records: &[Record]) -> Result<u64> {
    let n = records.len();
    let (mut at, mut keys, mut meters, mut quantities, mut dims) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in records {
        at.push(r.occurred_at);
        keys.push(r.idempotency_key.as_str());
        meters.push(r.meter.as_str());
        quantities.push(r.quantity);
        dims.push(r.dimensions.as_str());
    }
    let done = sqlx::query!(
        "INSERT INTO usage_records (tenant_id, occurred_at, idempotency_key, meter, quantity, dimensions)
         SELECT $1, t, k, m, q, d::jsonb
         FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::int8[], $6::text[]) AS r (t, k, m, q, d)
         ON CONFLICT DO NOTHING",
        tenant.as_str(),
        &at,
        &keys as &[&str],
        &meters as &[&str],
        &quantities,
        &dims as &[&str],
    )
    .execute(&mut **tx)
    .await
    .map_err(|e| match &e {
        // The partition worker keeps a week of partitions ahead; this only happens if it has stopped.
        sqlx::Error::Database(d) if d.message().starts_with("no partition of relation") => kernel::Error::unavailable(
            "usage storage for that day is not ready (the partition worker is behind); retry later",
        ),
        _ => e.into(),
    })?;
    Ok(done.rows_affected())
}

/// The hourly and daily watermarks: every hour (day) before them is rolled up.
pub async fn watermarks(tx: &mut Tx) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let row = sqlx::query!(
        r#"SELECT (SELECT rolled_to FROM usage_watermarks WHERE grain = 'hour') AS "hour!",
                  (SELECT rolled_to FROM usage_watermarks WHERE grain = 'day') AS "day!""#
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((row.hour, row.day))
}

/// A group's sums: `value` is the dimension's value (`None`: records without it, or no grouping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sum {
    pub value: Option<String>,
    pub quantity: i64,
    pub records: i64,
}

/// `tenant`'s usage of `meter` over the plan's spans, summed per value of the dimension `group_by` (one
/// group when `None`), largest first.
pub async fn sums(
    tx: &mut Tx,
    tenant: &TenantId,
    meter: &str,
    plan: &Plan,
    group_by: Option<&str>,
) -> Result<Vec<Sum>> {
    let rows = sqlx::query!(
        r#"SELECT g AS value, LEAST(sum(q), 9223372036854775807)::int8 AS "quantity!", sum(n)::int8 AS "records!" FROM (
               SELECT dimensions ->> $3 AS g, quantity AS q, records AS n FROM usage_rollups
               WHERE tenant_id = $1 AND meter = $2 AND grain = 'day' AND bucket_start >= $4 AND bucket_start < $5
               UNION ALL
               SELECT dimensions ->> $3, quantity, records FROM usage_rollups
               WHERE tenant_id = $1 AND meter = $2 AND grain = 'hour'
                 AND ((bucket_start >= $6 AND bucket_start < $7) OR (bucket_start >= $8 AND bucket_start < $9))
               UNION ALL
               SELECT dimensions ->> $3, quantity, 1 FROM usage_records
               WHERE tenant_id = $1 AND meter = $2
                 AND ((occurred_at >= $10 AND occurred_at < $11) OR (occurred_at >= $12 AND occurred_at < $13))
           ) s GROUP BY g ORDER BY 2 DESC, 1 NULLS LAST"#,
        tenant.as_str(),
        meter,
        group_by,
        plan.days.from,
        plan.days.to,
        plan.hours[0].from,
        plan.hours[0].to,
        plan.hours[1].from,
        plan.hours[1].to,
        plan.raw[0].from,
        plan.raw[0].to,
        plan.raw[1].from,
        plan.raw[1].to,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| Sum { value: r.value, quantity: r.quantity, records: r.records }).collect())
}

/// One grain's watermark after a rollup pass, and the rollup rows the pass wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rolled {
    pub grain: String,
    pub rolled_to: DateTime<Utc>,
    pub rows: i64,
}

/// Closes every hour before the database's `now() - late_window` and the days that completes (the owner's
/// function).
pub async fn rollup(tx: &mut Tx, late_window: std::time::Duration) -> Result<Vec<Rolled>> {
    let window = sqlx::postgres::types::PgInterval::try_from(late_window)
        .map_err(|e| kernel::Error::internal(anyhow::anyhow!("{e}")))?;
    let rows = sqlx::query!(
        r#"SELECT grain AS "grain!", rolled_to AS "rolled_to!", rows_written AS "rows!"
           FROM governance_usage_rollup($1)"#,
        window,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| Rolled { grain: r.grain, rolled_to: r.rolled_to, rows: r.rows }).collect())
}

/// Creates the missing daily partitions up to `days_ahead` days ahead; returns how many.
pub async fn ensure_partitions(tx: &mut Tx, days_ahead: i32, keep_days: i32) -> Result<i32> {
    Ok(sqlx::query_scalar!(r#"SELECT governance_usage_partitions($1, $2) AS "n!""#, days_ahead, keep_days)
        .fetch_one(&mut **tx)
        .await?)
}

/// Drops raw partitions past `raw_days` that may go and deletes rollups past `rollup_years`; returns each
/// raw partition past retention, whether it was dropped, and why not.
pub async fn expire(tx: &mut Tx, raw_days: i32, rollup_years: i32) -> Result<Vec<(String, bool, Option<String>)>> {
    let rows = sqlx::query!(
        r#"SELECT partition_name AS "name!", dropped AS "dropped!", reason FROM governance_usage_expire($1, $2)"#,
        raw_days,
        rollup_years
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.dropped, r.reason)).collect())
}
