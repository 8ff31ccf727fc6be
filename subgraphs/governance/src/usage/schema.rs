//! Usage metering's share of the roots: `recordUsage` and `recordUsageLines` (a batch of records as a list
//! or as JSON Lines, `usage:record`) and `usage` (a meter's usage over a time range, optionally grouped by a
//! dimension, `governance:read`).

use crate::state;
use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::contracts::usage::UsageRecord;
use kernel::permissions::governance::READ;
use kernel::permissions::governance::USAGE_RECORD;
use kernel::Authorize;
use kernel::{Error, Result, TenantId};
use serde::Deserialize;
use serde_json::Value;

use super::{plan, store, MAX_BATCH};

/// One usage record.
// Also a line of `recordUsageLines`: the same fields in JSON, no others.
#[derive(InputObject, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRecordInput {
    /// The meter: 1 to 64 of a-z, 0-9, `.`, `_`, `-`.
    pub meter: String,
    /// How much, in whole units of the meter (at least 0).
    pub quantity: i64,
    /// When it happened. With the key it identifies the record: a retry sends both unchanged (so there is
    /// no default — a time filled in on arrival would differ between a call and its retry). Hours close
    /// once the late window has passed after their end.
    pub occurred_at: DateTime<Utc>,
    /// Dimensions to group by: a JSON object of strings, at most 16.
    #[serde(default)]
    pub dimensions: Option<Json<Value>>,
    /// Unique to this usage among the tenant's records at the same time: a retry sends the same key and
    /// time, and the record counts once.
    pub idempotency_key: String,
}

impl UsageRecordInput {
    /// The record checked (`at` names it in errors: `records[3]`, `lines[3]`).
    fn check(self, at: &str, now: DateTime<Utc>) -> Result<super::Record> {
        let raw = UsageRecord {
            dimensions: super::dimensions(at, self.dimensions.map(|j| j.0))?,
            meter: self.meter,
            quantity: self.quantity,
            occurred_at: Some(self.occurred_at),
            idempotency_key: Some(self.idempotency_key),
        };
        super::validate(at, raw, now, "")
    }
}

/// A batch of no records or more than `MAX_BATCH`, refused on `field`.
fn batch_size(field: &str) -> Error {
    Error::bad_input(field, format!("send 1 to {MAX_BATCH} records"))
}

/// What `recordUsage` did.
#[derive(SimpleObject)]
pub struct RecordUsagePayload {
    /// Records stored.
    pub accepted: u64,
    /// Records already stored (or repeated in the batch), counted once.
    pub duplicates: u64,
}

/// Usage of one value of the grouping dimension.
#[derive(SimpleObject)]
pub struct UsageGroup {
    /// The dimension's value; null for records without the dimension.
    pub value: Option<String>,
    pub quantity: i64,
    pub records: i64,
}

/// A meter's usage over `[from, to)`.
#[derive(SimpleObject)]
pub struct UsageReport {
    pub meter: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The sum of the quantities.
    pub quantity: i64,
    /// The records summed.
    pub records: i64,
    /// Per value of `groupBy`, largest first (empty without `groupBy`).
    pub groups: Vec<UsageGroup>,
    /// Usage before this is closed (rolled up, late records no longer accepted); after it, it may still grow.
    pub closed_until: DateTime<Utc>,
}

#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// The caller's tenant's usage of `meter` over `[from, to)`, from rollups where they cover the range and
    /// raw records otherwise. With `groupBy`, summed per value of that dimension. Raw records are kept 90
    /// days: older ranges are answered from rollups, in whole hours.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        meter: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: Option<String>,
    ) -> Result<UsageReport> {
        let tenant = ctx.authorize(READ)?;
        if !super::meter_ok(&meter) {
            return Err(Error::bad_input("meter", format!("`{}` is not a meter key", kernel::error::clip(&meter, 64))));
        }
        if from >= to {
            return Err(Error::bad_input("to", "`to` must be after `from`"));
        }
        if group_by.as_ref().is_some_and(|g| g.is_empty() || g.len() > 64) {
            return Err(Error::bad_input("groupBy", "a dimension name is 1 to 64 bytes"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let (hours, days) = store::watermarks(&mut tx).await?;
        let sums = store::sums(&mut tx, &tenant, &meter, &plan(from, to, hours, days), group_by.as_deref()).await?;
        tx.commit().await?;
        let (quantity, records) =
            sums.iter().fold((0i64, 0i64), |(q, n), s| (q.saturating_add(s.quantity), n + s.records));
        let groups = match group_by {
            None => Vec::new(),
            Some(_) => sums
                .into_iter()
                .map(|s| UsageGroup { value: s.value, quantity: s.quantity, records: s.records })
                .collect(),
        };
        Ok(UsageReport { meter, from, to, quantity, records, groups, closed_until: hours })
    }
}

#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Stores up to 10,000 usage records of the caller's tenant (`usage:record`) in one transaction: all of
    /// them or, if any is invalid or for an hour already closed, none (the error names the record). Records
    /// already stored with the same time and idempotency key count once.
    async fn record_usage(&self, ctx: &Context<'_>, records: Vec<UsageRecordInput>) -> Result<RecordUsagePayload> {
        let tenant = ctx.authorize(USAGE_RECORD)?;
        if records.is_empty() || records.len() > MAX_BATCH {
            return Err(batch_size("records"));
        }
        let now = Utc::now();
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.check(&format!("records[{i}]"), now))
            .collect::<Result<Vec<_>>>()?;
        store_batch(ctx, &tenant, &records, |i| format!("records[{i}]")).await
    }

    /// `recordUsage` for high-volume producers: the same records as JSON Lines — one JSON object per line
    /// with the fields of `UsageRecordInput` (`meter`, `quantity`, `occurredAt`, `idempotencyKey`, and
    /// optionally `dimensions`), no others; blank lines are skipped. Up to 10,000 records, stored as
    /// `recordUsage` stores them (all or none, duplicates counted once, whichever mutation sent each copy);
    /// an error's `field` names the line as `lines[i]` (`i` from 0, blank lines counted), and a line that is
    /// not a record's JSON is also named by its line number (from 1) and column in the message. For large
    /// batches it costs the service less per record than the list (BENCHMARKS.md).
    async fn record_usage_lines(&self, ctx: &Context<'_>, lines: String) -> Result<RecordUsagePayload> {
        let tenant = ctx.authorize(USAGE_RECORD)?;
        let now = Utc::now();
        // The line of each record (blank lines skipped), to name it in errors.
        let (mut records, mut line_of) = (Vec::new(), Vec::new());
        for (n, line) in lines.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if records.len() == MAX_BATCH {
                return Err(batch_size("lines"));
            }
            let at = format!("lines[{n}]");
            let r: UsageRecordInput = serde_json::from_str(line).map_err(|e| {
                Error::bad_input(&at, format!("{at} (line {}), column {}: {}", n + 1, e.column(), serde_message(&e)))
            })?;
            records.push(r.check(&at, now)?);
            line_of.push(n);
        }
        if records.is_empty() {
            return Err(batch_size("lines"));
        }
        store_batch(ctx, &tenant, &records, |i| format!("lines[{}]", line_of[i])).await
    }
}

/// serde_json's message without the position it appends (the caller reports the line's own), clipped: it
/// may quote the caller's value.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => &text[..i],
        _ => &text,
    };
    kernel::error::clip(text, 300)
}

/// Stores a checked batch for `tenant` in one transaction.
async fn store_batch(
    ctx: &Context<'_>,
    tenant: &TenantId,
    records: &[super::Record],
    fields: impl Fn(usize) -> String,
) -> Result<RecordUsagePayload> {
    let mut tx = state(ctx).kernel.db.tenant_tx(tenant).await?;
    let done = super::ingest(&mut tx, tenant, records, fields).await?;
    tx.commit().await?;
    Ok(RecordUsagePayload { accepted: done.accepted, duplicates: done.duplicates })
}
