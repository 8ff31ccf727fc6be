//! Usage metering: usage records from every domain, deduplicated, time-partitioned and rolled up.
//!
//! **In.** A record is a tenant's measurement of a meter: meter key, quantity (whole units of the meter),
//! when it happened, string dimensions to group by, and an idempotency key. Records arrive as
//! `UsageRecorded` events from any domain (`consumer.rs`, many per transaction) and in batches through the
//! `recordUsage` and `recordUsageLines` mutations (`schema.rs`: a list of input objects, or JSON Lines in one
//! string for high-volume producers); all end in [`ingest`], one `INSERT … SELECT FROM unnest(…) ON
//! CONFLICT DO NOTHING` per batch. A record is identified by (tenant, occurred-at, meter, idempotency key),
//! so a producer that sends the same record twice has it counted once, whichever path each copy took, and
//! two meters' records never collide.
//!
//! **Stored.** `usage_records` is partitioned by UTC day (`partitions.rs` creates them a week ahead and drops
//! those past the raw retention, 90 days by default, whole). `usage_rollups` holds hourly and daily sums per
//! meter and set of dimensions, kept seven years.
//!
//! **Late records.** The rollup worker (`rollup.rs`) closes each hour once the *late window* (2 hours by
//! default, `USAGE_LATE_WINDOW_SECS`, at most 7 days) has passed since its end by the database's clock
//! (never a caller's): it sums the hour's records into hourly
//! rollups and moves the hourly watermark past it, then closes whole days the same way from the hours. A
//! record for an hour not yet closed is accepted and counted when the hour closes, however late it comes
//! within the window; a record for a closed hour is refused with `BAD_USER_INPUT` (an event carrying one is
//! dead-lettered), never silently left out of the rollups. Ingest and the rollup take one advisory lock
//! (shared by ingests, exclusive by the rollup), so a record cannot slip into an hour while it closes.
//!
//! **Out.** [`plan`] splits a query's range into whole closed days (daily rollups), whole closed hours
//! (hourly rollups) and the rest (raw records: the open hours and any ends not on an hour).
//!
//! **Quotas.** Tenancy's quota counters (`consumeQuota`) *enforce* a limit per period; usage records
//! *measure*. They meet in exactly one place: when tenancy grants a consumption it publishes a
//! `UsageRecorded` for the quota's key, in the transaction that adds to the quota balance — so a quota's
//! `used` for a period and the usage recorded for that meter over the period are the same sum, and
//! reconcile (README: "Usage and quotas"). A domain that meters a quota-limited action therefore calls
//! `consumeQuota` and does not also publish its own `UsageRecorded` for that meter; meters without a quota
//! are published directly. Nothing is counted twice: each unit of usage enters through one of the two.

pub mod consumer;
pub mod partitions;
pub mod rollup;
pub mod schema;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use kernel::contracts::usage::UsageRecord;
use kernel::{Error, Result, TenantId};

/// Records per `recordUsage` or `recordUsageLines` call, at most.
pub const MAX_BATCH: usize = 10_000;
/// The largest quantity one record may carry (10^15: a petabyte in bytes). Rollups sum records; the cap
/// keeps honest sums far from `bigint`'s limit, and sums saturate there rather than fail the rollup of
/// every tenant.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000_000;
/// How far ahead of the clock a record may be (producers' clocks drift).
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);
const MAX_DIMENSIONS: usize = 16;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

/// A record checked and ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub meter: String,
    pub quantity: i64,
    pub occurred_at: DateTime<Utc>,
    /// The dimensions as a JSON object (its text).
    pub dimensions: String,
    pub idempotency_key: String,
}

/// Checks `r` (`at` names it in errors: `records[3]`), filling its time and key from the defaults.
pub fn validate(at: &str, r: UsageRecord, occurred_at: DateTime<Utc>, key: &str) -> Result<Record> {
    let field = |f: &str| format!("{at}.{f}");
    if !meter_ok(&r.meter) {
        return Err(Error::bad_input(
            field("meter"),
            format!(
                "meter `{}` must be 1 to 64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit",
                kernel::error::clip(&r.meter, 64)
            ),
        ));
    }
    if !(0..=MAX_QUANTITY).contains(&r.quantity) {
        return Err(Error::bad_input(field("quantity"), format!("quantity must be 0 to {MAX_QUANTITY}")));
    }
    let key = r.idempotency_key.as_deref().unwrap_or(key).trim();
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Error::bad_input(field("idempotencyKey"), format!("idempotency key must be 1 to {MAX_KEY} bytes")));
    }
    if r.dimensions.len() > MAX_DIMENSIONS {
        return Err(Error::bad_input(field("dimensions"), format!("at most {MAX_DIMENSIONS} dimensions")));
    }
    for (k, v) in &r.dimensions {
        if k.is_empty() || k.len() > 64 || v.len() > MAX_VALUE {
            return Err(Error::bad_input(
                field("dimensions"),
                format!(
                    "dimension `{}`: names are 1 to 64 bytes, values at most {MAX_VALUE}",
                    kernel::error::clip(k, 64)
                ),
            ));
        }
    }
    let occurred_at = r.occurred_at.unwrap_or(occurred_at);
    Ok(Record {
        meter: r.meter,
        quantity: r.quantity,
        // PostgreSQL keeps microseconds: a retry must compare equal to what was stored.
        occurred_at: occurred_at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(occurred_at),
        dimensions: serde_json::to_string(&r.dimensions).expect("a map of strings serializes"),
        idempotency_key: key.to_owned(),
    })
}

pub fn meter_ok(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 64
        && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && m.as_bytes()[0].is_ascii_alphanumeric()
}

/// The dimensions of a record from the API: a JSON object of strings.
pub fn dimensions(at: &str, v: Option<serde_json::Value>) -> Result<BTreeMap<String, String>> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                _ => Err(Error::bad_input(
                    format!("{at}.dimensions"),
                    format!("dimension `{}` must be a string", kernel::error::clip(&k, 64)),
                )),
            })
            .collect(),
        Some(_) => Err(Error::bad_input(format!("{at}.dimensions"), "dimensions must be a JSON object of strings")),
    }
}

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Records stored.
    pub accepted: u64,
    /// Records already stored (same tenant, time and key), dropped.
    pub duplicates: u64,
}

/// Stores `records` for `tenant` in `tx` (under the tenant's row-level security), dropping duplicates.
/// Refuses the whole batch, storing nothing, if any record is for an hour already closed or more than
/// [`MAX_SKEW`] ahead of `now`; `fields` names each record in the error (`records[i]`).
pub async fn ingest(
    tx: &mut kernel::db::Tx,
    tenant: &TenantId,
    records: &[Record],
    fields: impl Fn(usize) -> String,
) -> Result<Ingested> {
    if records.is_empty() {
        return Ok(Ingested::default());
    }
    let (closed, now) = store::open_for_ingest(tx).await?;
    for (i, r) in records.iter().enumerate() {
        if r.occurred_at < closed {
            return Err(Error::bad_input(
                format!("{}.occurredAt", fields(i)),
                format!(
                    "usage before {} is closed (rolled up): {} is later than the late window allows",
                    closed.to_rfc3339(),
                    r.occurred_at.to_rfc3339()
                ),
            )
            .with("reason", "USAGE_PERIOD_CLOSED")
            .with("closedUntil", closed));
        }
        if r.occurred_at > now + MAX_SKEW {
            return Err(Error::bad_input(
                format!("{}.occurredAt", fields(i)),
                format!("{} is in the future", r.occurred_at.to_rfc3339()),
            ));
        }
    }
    let accepted = store::insert(tx, tenant, records).await?;
    Ok(Ingested { accepted, duplicates: records.len() as u64 - accepted })
}

/// A half-open range of time; empty when `from >= to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Span {
    fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self { from, to: to.max(from) }
    }
    pub fn is_empty(&self) -> bool {
        self.from >= self.to
    }
}

/// Where each part of a query's range is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Whole closed days, from daily rollups.
    pub days: Span,
    /// Whole closed hours around the days, from hourly rollups.
    pub hours: [Span; 2],
    /// The rest — ends not on an hour, and hours not closed yet — from raw records.
    pub raw: [Span; 2],
}

fn floor(t: DateTime<Utc>, unit: Duration) -> DateTime<Utc> {
    t.duration_trunc(unit).unwrap_or(t)
}

fn ceil(t: DateTime<Utc>, unit: Duration) -> DateTime<Utc> {
    let f = floor(t, unit);
    if f == t {
        t
    } else {
        f + unit
    }
}

/// Splits `[from, to)` given the hourly and daily watermarks (every hour before `hours_closed` and every day
/// before `days_closed` is rolled up; `days_closed <= hours_closed`).
pub fn plan(from: DateTime<Utc>, to: DateTime<Utc>, hours_closed: DateTime<Utc>, days_closed: DateTime<Utc>) -> Plan {
    let (hour, day) = (Duration::hours(1), Duration::days(1));
    let h_from = ceil(from, hour);
    let h_to = floor(to.min(hours_closed), hour);
    if h_from >= h_to {
        let none = Span::new(from, from);
        return Plan { days: none, hours: [none, none], raw: [Span::new(from, to), none] };
    }
    let d_from = ceil(from, day);
    let d_to = floor(to.min(days_closed).min(h_to), day);
    let (days, hours) = if d_from < d_to {
        (Span::new(d_from, d_to), [Span::new(h_from, d_from), Span::new(d_to, h_to)])
    } else {
        (Span::new(h_from, h_from), [Span::new(h_from, h_to), Span::new(h_to, h_to)])
    };
    Plan { days, hours, raw: [Span::new(from, h_from), Span::new(h_to, to)] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The spans of a plan, non-empty, in time order: they must tile the range exactly.
    fn tiles(p: &Plan) -> Vec<Span> {
        let mut all: Vec<Span> =
            [p.days, p.hours[0], p.hours[1], p.raw[0], p.raw[1]].into_iter().filter(|s| !s.is_empty()).collect();
        all.sort_by_key(|s| s.from);
        all
    }

    fn assert_tiles(p: &Plan, from: DateTime<Utc>, to: DateTime<Utc>) {
        let spans = tiles(p);
        assert_eq!(spans.first().unwrap().from, from, "{p:?}");
        assert_eq!(spans.last().unwrap().to, to, "{p:?}");
        for w in spans.windows(2) {
            assert_eq!(w[0].to, w[1].from, "gap or overlap in {p:?}");
        }
    }

    #[test]
    fn plans_read_days_then_hours_then_raw() {
        let (from, to) = (t("2026-11-01T10:30:00Z"), t("2026-11-05T12:15:00Z"));
        let p = plan(from, to, t("2026-11-04T06:00:00Z"), t("2026-11-04T00:00:00Z"));
        assert_eq!(p.days, Span::new(t("2026-11-02T00:00:00Z"), t("2026-11-04T00:00:00Z")));
        assert_eq!(p.hours[0], Span::new(t("2026-11-01T11:00:00Z"), t("2026-11-02T00:00:00Z")));
        assert_eq!(p.hours[1], Span::new(t("2026-11-04T00:00:00Z"), t("2026-11-04T06:00:00Z")));
        assert_eq!(p.raw[0], Span::new(from, t("2026-11-01T11:00:00Z")));
        assert_eq!(p.raw[1], Span::new(t("2026-11-04T06:00:00Z"), to));
        assert_tiles(&p, from, to);
    }

    #[test]
    fn plans_tile_every_range() {
        let base = t("2026-11-01T00:00:00Z");
        let wm = [(0, 0), (5, 0), (30, 24), (50, 48), (200, 192)];
        for from_min in [0i64, 1, 59, 60, 61, 1439, 1440, 1500] {
            for len_min in [1i64, 59, 60, 61, 1440, 3000, 10_000] {
                for (h, d) in wm {
                    let (from, to) = (base + Duration::minutes(from_min), base + Duration::minutes(from_min + len_min));
                    let p = plan(from, to, base + Duration::hours(h), base + Duration::hours(d));
                    assert_tiles(&p, from, to);
                    // Nothing after the watermarks is read from rollups.
                    assert!(p.days.is_empty() || p.days.to <= base + Duration::hours(d), "{p:?}");
                    for s in p.hours {
                        assert!(s.is_empty() || s.to <= base + Duration::hours(h), "{p:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn open_ranges_are_read_raw() {
        let (from, to) = (t("2026-11-04T07:00:00Z"), t("2026-11-04T09:00:00Z"));
        let p = plan(from, to, t("2026-11-04T06:00:00Z"), t("2026-11-04T00:00:00Z"));
        assert_eq!(p.raw[0], Span::new(from, to));
        assert!(p.days.is_empty() && p.hours.iter().all(Span::is_empty));
    }

    #[test]
    fn records_are_checked() {
        let now = Utc::now();
        let r = |meter: &str, q: i64| UsageRecord {
            meter: meter.into(),
            quantity: q,
            occurred_at: None,
            dimensions: BTreeMap::new(),
            idempotency_key: None,
        };
        assert!(validate("r", r("api-calls", 1), now, "k").is_ok());
        for bad in ["", "API", "-x", "a b", &"x".repeat(65)] {
            let e = validate("records[2]", r(bad, 1), now, "k").unwrap_err();
            assert!(matches!(&e, Error::BadInput { field: Some(f), .. } if f == "records[2].meter"), "{e:?}");
        }
        assert!(validate("r", r("m", -1), now, "k").is_err());
        assert!(validate("r", r("m", 1), now, " ").is_err());
        let mut many = r("m", 1);
        many.dimensions = (0..17).map(|i| (format!("d{i}"), "v".into())).collect();
        assert!(validate("r", many, now, "k").is_err());
        let ok = validate("r", r("m", 1), t("2026-11-04T07:00:00.123456789Z"), "k").unwrap();
        assert_eq!(ok.occurred_at, t("2026-11-04T07:00:00.123456Z"));
        assert_eq!(ok.dimensions, "{}");
    }
}
