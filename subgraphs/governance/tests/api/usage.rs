//! Usage metering: records through `recordUsage`, `recordUsageLines` and `UsageRecorded` events, duplicates counted once,
//! late records within the window counted and later ones refused, queries over rollups and raw records,
//! and raw partitions past retention dropped while their rollups remain (unless under legal hold).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use governance::usage::{partitions, rollup};
use kernel::contracts::usage::UsageRecord;
use serde_json::{json, Value};

use crate::helpers::{code, spawn_app, spawn_app_tuned, TestApp};

const RECORD: &str = "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { accepted duplicates } }";
const USAGE: &str = "query($m: String!, $f: DateTime!, $t: DateTime!, $g: String) {
    usage(meter: $m, from: $f, to: $t, groupBy: $g) { quantity records closedUntil groups { value quantity records } } }";

fn recorder(app: &TestApp, tenant: &str) -> String {
    app.tenant_token(tenant, &["usage:record", "governance:read"])
}

fn rec(meter: &str, quantity: i64, at: DateTime<Utc>, key: &str, dims: Value) -> Value {
    json!({ "meter": meter, "quantity": quantity, "occurredAt": at, "idempotencyKey": key, "dimensions": dims })
}

async fn usage(
    app: &TestApp,
    token: &str,
    meter: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group: Option<&str>,
) -> Value {
    app.ok(token, USAGE, json!({ "m": meter, "f": from, "t": to, "g": group })).await["usage"].clone()
}

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap()
}

#[tokio::test]
async fn duplicates_are_counted_once_and_usage_groups_by_a_dimension() {
    let app = spawn_app().await;
    let token = recorder(&app, "acme");
    let now = Utc::now();
    let batch = json!([
        rec("api-calls", 3, now, "k1", json!({ "region": "eu" })),
        rec("api-calls", 4, now, "k2", json!({ "region": "us" })),
        rec("api-calls", 3, now, "k1", json!({ "region": "eu" })),
        rec("api-calls", 5, now, "k3", json!({})),
    ]);
    let v = app.ok(&token, RECORD, json!({ "r": batch })).await;
    assert_eq!(v["recordUsage"], json!({ "accepted": 3, "duplicates": 1 }));
    // The producer retries the whole batch: nothing new.
    let v = app.ok(&token, RECORD, json!({ "r": batch })).await;
    assert_eq!(v["recordUsage"], json!({ "accepted": 0, "duplicates": 4 }));

    let (from, to) = (hour(now), hour(now) + TimeDelta::hours(1));
    let u = usage(&app, &token, "api-calls", from, to, None).await;
    assert_eq!((u["quantity"].as_i64(), u["records"].as_i64()), (Some(12), Some(3)));
    assert_eq!(u["groups"], json!([]));
    let u = usage(&app, &token, "api-calls", from, to, Some("region")).await;
    assert_eq!(
        u["groups"],
        json!([
            { "value": null, "quantity": 5, "records": 1 },
            { "value": "us", "quantity": 4, "records": 1 },
            { "value": "eu", "quantity": 3, "records": 1 },
        ])
    );
    // The same key and time on another meter is another record (the key once left the meter out).
    let v = app.ok(&token, RECORD, json!({ "r": [rec("storage-gb", 9, now, "k1", json!({}))] })).await;
    assert_eq!(v["recordUsage"], json!({ "accepted": 1, "duplicates": 0 }));
    assert_eq!(usage(&app, &token, "storage-gb", from, to, None).await["quantity"], 9);
    // Another tenant sees none of it.
    let other = usage(&app, &recorder(&app, "globex"), "api-calls", from, to, None).await;
    assert_eq!((other["quantity"].as_i64(), other["records"].as_i64()), (Some(0), Some(0)));
    app.cleanup().await;
}

#[tokio::test]
async fn a_bad_batch_is_refused_whole_with_the_record_named() {
    let app = spawn_app().await;
    let token = recorder(&app, "acme");
    let now = Utc::now();
    let cases = [
        (rec("API calls", 1, now, "b", json!({})), "records[1].meter"),
        (rec("api-calls", -1, now, "b", json!({})), "records[1].quantity"),
        (rec("api-calls", governance::usage::MAX_QUANTITY + 1, now, "b", json!({})), "records[1].quantity"),
        (rec("api-calls", 1, now, "", json!({})), "records[1].idempotencyKey"),
        (rec("api-calls", 1, now, "b", json!({ "n": 1 })), "records[1].dimensions"),
        (rec("api-calls", 1, now + TimeDelta::hours(1), "b", json!({})), "records[1].occurredAt"),
        (rec("api-calls", 1, now - TimeDelta::days(3), "b", json!({})), "records[1].occurredAt"),
    ];
    for (bad, field) in cases {
        let v = app.gql(&token, RECORD, json!({ "r": [rec("api-calls", 1, now, "a", json!({})), bad] })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v:#}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v:#}");
    }
    // Nothing of any refused batch was stored.
    let u = usage(&app, &token, "api-calls", now - TimeDelta::hours(1), now + TimeDelta::hours(1), None).await;
    assert_eq!(u["records"], 0);
    // Recording takes usage:record; reading takes governance:read.
    let reader = app.tenant_token("acme", &["governance:read"]);
    let v = app.gql(&reader, RECORD, json!({ "r": [rec("api-calls", 1, now, "a", json!({}))] })).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v:#}");
    app.cleanup().await;
}

const LINES: &str = "mutation($l: String!) { recordUsageLines(lines: $l) { accepted duplicates } }";

/// `records` as JSON Lines, with a blank line and a CRLF line end among them.
fn lines(records: &[Value]) -> String {
    let mut text: Vec<String> = records.iter().map(Value::to_string).collect();
    text.insert(1.min(text.len()), String::new());
    text.join("\r\n") + "\n"
}

#[tokio::test]
async fn json_lines_are_the_same_records_as_the_list() {
    // A body large enough for more than the most records a call takes.
    let app = spawn_app_tuned(|c| c.max_body_bytes = 4 * 1024 * 1024).await;
    let token = recorder(&app, "acme");
    let now = Utc::now();
    let a = rec("api-calls", 3, now, "k1", json!({ "region": "eu" }));
    let b = rec("api-calls", 4, now, "k2", json!({ "region": "us" }));
    let mut no_dims = rec("api-calls", 5, now, "k3", json!(null));
    no_dims.as_object_mut().unwrap().remove("dimensions");
    let v = app.ok(&token, LINES, json!({ "l": lines(&[a.clone(), b.clone(), a.clone(), no_dims]) })).await;
    assert_eq!(v["recordUsageLines"], json!({ "accepted": 3, "duplicates": 1 }));
    // The same usage through the list mutation is a duplicate, whichever mutation sent it first.
    let v = app.ok(&token, RECORD, json!({ "r": [a, b, rec("api-calls", 6, now, "k4", json!({}))] })).await;
    assert_eq!(v["recordUsage"], json!({ "accepted": 1, "duplicates": 2 }));
    let u = usage(&app, &token, "api-calls", hour(now), hour(now) + TimeDelta::hours(1), Some("region")).await;
    assert_eq!((u["quantity"].as_i64(), u["records"].as_i64()), (Some(18), Some(4)));
    assert_eq!(u["groups"][0], json!({ "value": null, "quantity": 11, "records": 2 }));

    // A bad line refuses the whole batch; the error names the line (blank lines count: line 3 is `lines[2]`).
    let good = rec("api-calls", 1, now, "new", json!({}));
    let mut extra = good.clone();
    extra["unit"] = json!("ms");
    let mut late = good.clone();
    late["occurredAt"] = json!(now - TimeDelta::days(3));
    let cases = [
        (lines(&[good.clone(), rec("API", 1, now, "b", json!({}))]), "lines[2].meter", "meter `API`"),
        (lines(&[good.clone(), json!({ "meter": "m", "quantity": 1 })]), "lines[2]", "lines[2] (line 3), column"),
        (lines(&[good.clone(), extra]), "lines[2]", "unknown field `unit`"),
        (
            lines(&[good.clone(), rec("m", 1, now, "b", json!({ "n": 1 }))]),
            "lines[2].dimensions",
            "`n` must be a string",
        ),
        (format!("{good}\n{{\"meter\": "), "lines[1]", "lines[1] (line 2), column"),
        (lines(&[good.clone(), late]), "lines[2].occurredAt", "is closed"),
        ("\n \n".into(), "lines", "send 1 to 10000 records"),
    ];
    for (text, field, says) in cases {
        let v = app.gql(&token, LINES, json!({ "l": text })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v:#}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v:#}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains(says), "{v:#}");
    }
    // A message quoting the caller's value is clipped.
    let mut long = good.clone();
    long["quantity"] = json!("9".repeat(5_000));
    let v = app.gql(&token, LINES, json!({ "l": lines(&[good.clone(), long]) })).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "lines[2]", "{v:#}");
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("invalid type: string") && message.len() < 400, "{message}");
    // At most 10,000 records a call, and exactly that many are taken.
    let mut many: Vec<Value> =
        (0..=governance::usage::MAX_BATCH).map(|i| rec("m", 1, now, &format!("x{i}"), json!({}))).collect();
    let v = app.gql(&token, LINES, json!({ "l": lines(&many) })).await;
    assert_eq!(v["errors"][0]["extensions"]["field"], "lines", "{v:#}");
    many.pop();
    let v = app.ok(&token, LINES, json!({ "l": lines(&many) })).await;
    assert_eq!(v["recordUsageLines"]["accepted"], governance::usage::MAX_BATCH);
    // Nothing of a refused batch was stored, another tenant sees none of it, and recording takes usage:record.
    let (from, to) = (hour(now), hour(now) + TimeDelta::hours(1));
    assert_eq!(usage(&app, &token, "api-calls", from, to, None).await["records"], 4);
    assert_eq!(usage(&app, &recorder(&app, "globex"), "m", from, to, None).await["records"], 0);
    let reader = app.tenant_token("acme", &["governance:read"]);
    assert_eq!(code(&app.gql(&reader, LINES, json!({ "l": lines(&[good]) })).await), "FORBIDDEN");
    app.cleanup().await;
}

#[tokio::test]
async fn usage_events_from_any_domain_are_metered_once() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.usage", app.command_prefix())).await;
    let now = Utc::now().duration_trunc(TimeDelta::microseconds(1)).unwrap();
    let record = |key: Option<&str>, q: i64| UsageRecorded {
        record: UsageRecord {
            meter: "workflow-runs".into(),
            quantity: q,
            occurred_at: Some(now),
            dimensions: BTreeMap::from([("workflow".to_owned(), "deploy".to_owned())]),
            idempotency_key: key.map(Into::into),
        },
    };
    // The same event delivered twice, and the same usage re-sent as a new event with the same key.
    let first = app.publish("acme", "workflow.UsageRecorded", &record(Some("run-1"), 2)).await;
    app.publish_envelope("workflow.UsageRecorded", &first).await;
    app.publish("acme", "catalogue.UsageRecorded", &record(Some("run-1"), 2)).await;
    // A new usage without a key: the event's id is its key.
    app.publish("acme", "workflow.UsageRecorded", &record(None, 5)).await;

    let token = recorder(&app, "acme");
    let (from, to) = (hour(now), hour(now) + TimeDelta::hours(1));
    test_support::eventually("both usages to be recorded", Duration::from_secs(15), || async {
        usage(&app, &token, "workflow-runs", from, to, None).await["records"] == 2
    })
    .await;
    // Give a wrongly counted copy time to show, then check the sums.
    let admin = app.admin_pool().await;
    test_support::eventually("the queue to drain", Duration::from_secs(15), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE handler = 'governance.usage'")
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 3
    })
    .await;
    let u = usage(&app, &token, "workflow-runs", from, to, Some("workflow")).await;
    assert_eq!(u["groups"], json!([{ "value": "deploy", "quantity": 7, "records": 2 }]));
    app.cleanup().await;
}

kernel::events! {
    domain = "workflow";
    UsageRecorded { #[serde(flatten)] record: UsageRecord }
}

#[tokio::test]
async fn late_records_within_the_window_count_and_later_ones_are_refused() {
    let app = spawn_app().await;
    let db = &app.state.kernel.db;
    let token = recorder(&app, "acme");
    let admin = app.admin_pool().await;
    // The rollup closes hours by the database's clock, so the test's hour, `h`, is three hours ago by that
    // clock, and nothing is closed from three hours before it on.
    let h: DateTime<Utc> = sqlx::query_scalar("SELECT date_trunc('hour', now() - interval '3 hours', 'UTC')")
        .fetch_one(&admin)
        .await
        .unwrap();
    let h_end = h + TimeDelta::hours(1);
    sqlx::query("UPDATE usage_watermarks SET rolled_to = date_trunc(grain, $1, 'UTC')")
        .bind(h - TimeDelta::hours(3))
        .execute(&admin)
        .await
        .unwrap();
    // The watermark now reaches back to before today (between midnight and 03:00 UTC `h` is yesterday's):
    // the partition pass makes the days from the watermark's on, as it had before the watermark got here.
    governance::usage::partitions::run_once(db, 7, 90).await.unwrap();
    let at = h + TimeDelta::minutes(30);

    let v = app.ok(&token, RECORD, json!({ "r": [rec("tokens", 10, at, "a", json!({ "model": "m1" }))] })).await;
    assert_eq!(v["recordUsage"]["accepted"], 1);
    // Two hours after the hour ended the rollup runs with a 3-hour late window: the hour is still inside it.
    let rolled = rollup::run_once(db, Duration::from_secs(3 * 3600)).await.unwrap();
    assert_eq!(rolled[0].rolled_to, h);
    // A late record for the hour is accepted…
    let v = app.ok(&token, RECORD, json!({ "r": [rec("tokens", 5, at, "b", json!({ "model": "m2" }))] })).await;
    assert_eq!(v["recordUsage"]["accepted"], 1);
    // …and counted when the window (now 2 hours) has passed and the hour closes.
    let rolled = rollup::run_once(db, Duration::from_secs(2 * 3600)).await.unwrap();
    assert_eq!(rolled[0].rolled_to, h_end);
    assert_eq!(rolled[0].rows, 2);
    let hourly: (i64, i64) = sqlx::query_as(
        "SELECT sum(quantity)::int8, sum(records)::int8 FROM usage_rollups
         WHERE tenant_id = 'acme' AND meter = 'tokens' AND grain = 'hour' AND bucket_start = $1",
    )
    .bind(h)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(hourly, (15, 2));
    // A record for the closed hour is refused, with what to do about it.
    let v = app.gql(&token, RECORD, json!({ "r": [rec("tokens", 7, at, "c", json!({}))] })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v:#}");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("is closed"), "{v:#}");
    // What the producer can act on: why, and from when records are open.
    let ext = &v["errors"][0]["extensions"];
    assert_eq!(ext["reason"], "USAGE_PERIOD_CLOSED", "{v:#}");
    assert_eq!(ext["closedUntil"].as_str().map(|s| s.parse::<DateTime<Utc>>().unwrap()), Some(h_end), "{v:#}");

    // The closed hour is read from its rollups (the raw records could be gone); grouping still works.
    let u = usage(&app, &token, "tokens", h, h_end, Some("model")).await;
    assert_eq!(u["quantity"], 15);
    assert_eq!(u["closedUntil"].as_str().map(|s| s.parse::<DateTime<Utc>>().unwrap()), Some(h_end));
    assert_eq!(
        u["groups"],
        json!([{ "value": "m1", "quantity": 10, "records": 1 }, { "value": "m2", "quantity": 5, "records": 1 }])
    );
    // Proof it came from the rollups: change the hourly rollup as its owner would, and the answer follows.
    sqlx::query("UPDATE usage_rollups SET quantity = quantity + 100 WHERE tenant_id = 'acme' AND grain = 'hour'")
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(usage(&app, &token, "tokens", h, h_end, None).await["quantity"], 215);
    // No window closes an hour that has not ended by the database's clock, and none is beyond 7 days.
    let rolled = rollup::run_once(db, Duration::ZERO).await.unwrap();
    assert!(rolled[0].rolled_to <= Utc::now(), "{rolled:?}");
    assert!(rollup::run_once(db, Duration::from_secs(8 * 86_400)).await.is_err());
    app.cleanup().await;
}

#[tokio::test]
async fn raw_partitions_past_retention_are_dropped_while_rollups_remain() {
    let app = spawn_app().await;
    let db = &app.state.kernel.db;
    let admin = app.admin_pool().await;
    // Pretend the system has been metering for 100 days: nothing rolled up yet, partitions since then.
    sqlx::query("UPDATE usage_watermarks SET rolled_to = date_trunc('day', now() - interval '100 days', 'UTC')")
        .execute(&admin)
        .await
        .unwrap();
    partitions::run_once(db, 120, 7).await.unwrap();
    let day = (Utc::now() - TimeDelta::days(95)).duration_trunc(TimeDelta::days(1)).unwrap();
    let at = day + TimeDelta::hours(10);
    for tenant in ["acme", "held"] {
        let v =
            app.ok(&recorder(&app, tenant), RECORD, json!({ "r": [rec("storage-gb", 7, at, "old", json!({}))] })).await;
        assert_eq!(v["recordUsage"]["accepted"], 1);
    }
    rollup::run_once(db, Duration::from_secs(7200)).await.unwrap();
    let part = format!("usage_records_{}", day.format("%Y%m%d"));

    // `held` is under legal hold: its partition is kept whole, and the pass says why.
    sqlx::query("INSERT INTO legal_holds (tenant_id, on_hold) VALUES ('held', true)").execute(&admin).await.unwrap();
    let pass = partitions::run_once(db, 90, 7).await.unwrap();
    assert!(pass.kept.contains(&(part.clone(), "tenant held is under legal hold".into())), "{pass:?}");
    assert!(!pass.dropped.contains(&part));

    sqlx::query("UPDATE legal_holds SET on_hold = false WHERE tenant_id = 'held'").execute(&admin).await.unwrap();
    let pass = partitions::run_once(db, 90, 7).await.unwrap();
    assert!(pass.dropped.contains(&part), "{pass:?}");
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass($1)::text").bind(&part).fetch_one(&admin).await.unwrap();
    assert_eq!(exists, None);
    let raw: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_records WHERE occurred_at < now() - interval '90 days'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(raw, 0);
    // The day's usage is still answered, from its daily rollup.
    let token = recorder(&app, "acme");
    let u = usage(&app, &token, "storage-gb", day, day + TimeDelta::days(1), None).await;
    assert_eq!((u["quantity"].as_i64(), u["records"].as_i64()), (Some(7), Some(1)));
    let daily: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM usage_rollups WHERE tenant_id = 'acme' AND grain = 'day' AND bucket_start = $1",
    )
    .bind(day)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(daily, 1);
    app.cleanup().await;
}

/// The seed keeps usage rollups seven years: a configuration may keep them longer, never shorter, and the
/// default pass keeps a rollup of six years and eleven months while it deletes one past seven years.
#[tokio::test]
async fn rollups_are_kept_seven_years_and_no_configuration_keeps_them_less() {
    let defaults = governance::Config::default();
    assert_eq!(defaults.usage_rollup_retention_years, governance::MIN_USAGE_ROLLUP_RETENTION_YEARS);
    assert_eq!(governance::MIN_USAGE_ROLLUP_RETENTION_YEARS, 7);
    let app = spawn_app().await;
    let admin = app.admin_pool().await;
    for (tenant, age) in [("kept", "6 years 11 months"), ("gone", "7 years 1 month")] {
        sqlx::query(
            "INSERT INTO usage_rollups (tenant_id, meter, grain, bucket_start, dimensions, quantity, records)
             VALUES ($1, 'api-calls', 'day', date_trunc('day', now() - $2::interval, 'UTC'), '{}', 5, 1)",
        )
        .bind(tenant)
        .bind(age)
        .execute(&admin)
        .await
        .unwrap();
    }
    partitions::run_once(
        &app.state.kernel.db,
        defaults.usage_raw_retention_days,
        defaults.usage_rollup_retention_years,
    )
    .await
    .unwrap();
    let left: Vec<String> =
        sqlx::query_scalar("SELECT tenant_id FROM usage_rollups ORDER BY tenant_id").fetch_all(&admin).await.unwrap();
    assert_eq!(left, ["kept"]);
    // Shorter retentions are refused at start-up (`build` validates), each naming its floor.
    assert!(defaults.validate().is_ok());
    for (config, name) in [
        (governance::Config { usage_rollup_retention_years: 6, ..defaults.clone() }, "USAGE_ROLLUP_RETENTION_YEARS"),
        (governance::Config { usage_raw_retention_days: 89, ..defaults.clone() }, "USAGE_RAW_RETENTION_DAYS"),
        (governance::Config { audit_retention_months: 83, ..defaults.clone() }, "AUDIT_RETENTION_MONTHS"),
    ] {
        let e = config.validate().err().unwrap_or_else(|| panic!("{name} below the floor was accepted"));
        assert!(format!("{e:#}").contains(name), "{e:#}");
    }
    app.cleanup().await;
}
