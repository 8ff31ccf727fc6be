//! Usage ingest through the batch path, beside a raw `COPY` of the same rows into the same table.
//!
//!     cargo bench -p governance --bench usage_ingest     (PostgreSQL, Redis and RabbitMQ as for the tests)
//!
//! 400,000 records (10 tenants, 5 meters, two dimensions), in batches of 1,000 (request bodies of about
//! 170 KB as a list and 190 KB as lines, under the 256 KiB body limit) — one transaction each — by 2
//! concurrent writers, into a throwaway governance database. In the same run, in this order (each path
//! under tenants of its own, so nothing conflicts; the table grows from one path to the next, so `COPY`,
//! first, has it smallest, and the lines mutation comes after the list):
//!
//! - **raw `COPY`**: the rows `COPY … FROM STDIN` in the same batches and transactions, as a superuser
//!   (`COPY FROM` is not allowed under row-level security) — no validation, no deduplication check, no lock;
//! - **`recordUsage`** and **`recordUsageLines`**: the GraphQL mutations through the service's HTTP stack
//!   as started in production (its axum router in process: router-secret and token checks, body limit, JSON
//!   parsing, GraphQL validation and input coercion, the records' checks, the watermark check, the insert),
//!   with the records as a list of input objects and as one JSON Lines string — the request bodies are
//!   encoded before the clock starts, as a client elsewhere would;
//! - **`usage::ingest`**: what both mutations and the `UsageRecorded` consumer call, direct — the watermark
//!   lock and check, one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` per batch, under the
//!   tenant's row-level security.
//!
//! Target: at least 100,000 records/s through the batch path, at least 0.7× the raw `COPY`.

use std::sync::Arc;
use std::time::Instant;

use axum::http::Request;
use chrono::{DateTime, TimeDelta, Utc};
use governance::usage::{self, Record};
use kernel::db::Db;
use kernel::TenantId;
use secrecy::ExposeSecret;
use serde_json::json;

const RECORDS: usize = 400_000;
const BATCH: usize = 1_000;
const WRITERS: usize = 2;
const TENANTS: usize = 10;

fn records(now: DateTime<Utc>) -> Vec<(usize, Record)> {
    (0..RECORDS)
        .map(|i| {
            let region = ["eu", "us", "ap"][i % 3];
            let dims = json!({ "region": region, "project": format!("p-{}", i % 40) });
            let record = Record {
                meter: ["api-calls", "model-tokens", "workflow-runs", "storage-gb", "egress-bytes"][i % 5].into(),
                quantity: (i % 1000) as i64 + 1,
                occurred_at: now - TimeDelta::milliseconds((RECORDS - i) as i64),
                dimensions: dims.to_string(),
                idempotency_key: format!("rec-{i:09}"),
            };
            (i % TENANTS, record)
        })
        .collect()
}

/// Batches of one tenant's records, `BATCH` each.
fn batches(rows: &[(usize, Record)]) -> Vec<(usize, Vec<Record>)> {
    let mut per: Vec<Vec<Record>> = vec![Vec::new(); TENANTS];
    for (t, r) in rows {
        per[*t].push(r.clone());
    }
    per.into_iter()
        .enumerate()
        .flat_map(|(t, rs)| rs.chunks(BATCH).map(|c| (t, c.to_vec())).collect::<Vec<_>>())
        .collect()
}

/// Runs `work` over `items` (holding `records` records in all) with `WRITERS` concurrent writers; records/s.
async fn timed<T, F, Fut>(items: Vec<T>, records: usize, work: F) -> f64
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let queue = Arc::new(std::sync::Mutex::new(items));
    let work = Arc::new(work);
    let started = Instant::now();
    let handles: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (queue, work) = (queue.clone(), work.clone());
            tokio::spawn(async move {
                loop {
                    let Some(item) = queue.lock().unwrap().pop() else { return };
                    work(item).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    records as f64 / started.elapsed().as_secs_f64()
}

fn copy_text(tenant: &str, rows: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 160);
    for r in rows {
        // COPY text format: tab-separated, backslash escapes (the dimensions' JSON has none to escape here).
        out.extend_from_slice(
            format!(
                "{tenant}\t{}\t{}\t{}\t{}\t{}\n",
                r.occurred_at.to_rfc3339(),
                r.idempotency_key,
                r.meter,
                r.quantity,
                r.dimensions
            )
            .as_bytes(),
        );
    }
    out
}

/// A request body: the tenant, its records and the encoded request.
type Body = (usize, usize, String);

/// Sends `bodies` to the service's `/graphql` as `WRITERS` concurrent clients; records/s of `field`.
async fn mutation(
    app: &Arc<test_support::TestApp<governance::State>>,
    tokens: Arc<Vec<String>>,
    bodies: Vec<Body>,
    field: &'static str,
) -> f64 {
    let app = app.clone();
    timed(bodies, RECORDS, move |(t, n, body)| {
        let (app, tokens) = (app.clone(), tokens.clone());
        async move {
            let req = Request::post("/graphql")
                .header("content-type", "application/json")
                .header(kernel::server::ROUTER_SECRET_HEADER, app.config.router_secret.expose_secret())
                .header("authorization", format!("Bearer {}", tokens[t]))
                .body(axum::body::Body::from(body))
                .unwrap();
            let (status, bytes) = app.call_raw(req).await;
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!((status, &v["data"][field]["accepted"]), (200, &json!(n)), "{v}");
        }
    })
    .await
}

#[tokio::main]
async fn main() {
    let now = Utc::now();
    let rows = records(now);

    // The service, as in production (no workers that would compete).
    let config =
        governance::Config { audit_export_interval_secs: 0, usage_rollup_interval_secs: 0, ..Default::default() };
    let app = Arc::new(test_support::TestApp::<governance::State>::start(&config).await);
    // The tenants of each path differ, so no path's rows conflict with another's.
    let tokens = |path: &str| -> Arc<Vec<String>> {
        Arc::new((0..TENANTS).map(|t| app.tenant_token(&format!("{path}-{t:03}"), &["usage:record"])).collect())
    };
    let (list_tokens, lines_tokens) = (tokens("list"), tokens("lines"));
    // The requests' bodies are built before the clock starts: a client's JSON encoding is not the service's
    // work (the bench's client shares the machine's two cores with the service).
    let as_input = |r: &Record| {
        json!({ "meter": r.meter, "quantity": r.quantity, "occurredAt": r.occurred_at,
                "idempotencyKey": r.idempotency_key,
                "dimensions": serde_json::from_str::<serde_json::Value>(&r.dimensions).unwrap() })
    };
    let list_bodies: Vec<Body> = batches(&rows)
        .into_iter()
        .map(|(t, batch)| {
            let body = json!({
                "query": "mutation($r: [UsageRecordInput!]!) { recordUsage(records: $r) { accepted } }",
                "variables": { "r": batch.iter().map(as_input).collect::<Vec<_>>() },
            });
            (t, batch.len(), body.to_string())
        })
        .collect();
    let lines_bodies: Vec<Body> = batches(&rows)
        .into_iter()
        .map(|(t, batch)| {
            let lines: Vec<String> = batch.iter().map(|r| as_input(r).to_string()).collect();
            let body = json!({
                "query": "mutation($l: String!) { recordUsageLines(lines: $l) { accepted } }",
                "variables": { "l": lines.join("\n") },
            });
            (t, batch.len(), body.to_string())
        })
        .collect();

    // Bytes of request body per record: a record as an input object, and as a JSON line escaped in a string.
    let per_record = |bodies: &[Body]| bodies.iter().map(|(_, _, b)| b.len()).sum::<usize>() / RECORDS;
    let (list_size, lines_size) = (per_record(&list_bodies), per_record(&lines_bodies));

    // Raw COPY first: the table is at its smallest, so the ratios below are, if anything, conservative.
    let admin = app.admin_pool().await;
    let copy = timed(batches(&rows), RECORDS, move |(t, batch): (usize, Vec<Record>)| {
        let admin = admin.clone();
        async move {
            let mut tx = admin.begin().await.unwrap();
            let mut copy = tx
                .copy_in_raw(
                    "COPY usage_records (tenant_id, occurred_at, idempotency_key, meter, quantity, dimensions) FROM STDIN",
                )
                .await
                .unwrap();
            copy.send(copy_text(&format!("copy-{t:03}"), &batch)).await.unwrap();
            assert_eq!(copy.finish().await.unwrap() as usize, batch.len());
            tx.commit().await.unwrap();
        }
    })
    .await;
    // The list before the lines: the lines mutation meets the larger table, so it is not favoured.
    let list = mutation(&app, list_tokens, list_bodies, "recordUsage").await;
    let lines = mutation(&app, lines_tokens, lines_bodies, "recordUsageLines").await;

    let pool = kernel::db::connect(&app.config.database_url, 8).await.expect("pool");
    let kdb = Db::new(pool);
    let direct = timed(batches(&rows), RECORDS, move |(t, batch)| {
        let kdb = kdb.clone();
        async move {
            let tenant = TenantId::parse(&format!("direct-{t:03}")).unwrap();
            let mut tx = kdb.tenant_tx(&tenant).await.unwrap();
            let done = usage::ingest(&mut tx, &tenant, &batch, |i| format!("records[{i}]")).await.unwrap();
            assert_eq!(done.accepted as usize, batch.len());
            tx.commit().await.unwrap();
        }
    })
    .await;

    let check = app.admin_pool().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_records").fetch_one(&check).await.unwrap();
    assert_eq!(stored as usize, 4 * RECORDS);

    println!(
        "usage ingest: {RECORDS} records ({list_size} / {lines_size} bytes of request body each as a list / as lines), \
         {TENANTS} tenants, batches of {BATCH}, {WRITERS} writers"
    );
    println!("  recordUsageLines (JSON Lines, HTTP stack) {lines:>10.0} records/s   {:.2}x raw COPY", lines / copy);
    println!("  recordUsage (input list, HTTP stack)      {list:>10.0} records/s   {:.2}x raw COPY", list / copy);
    println!("  usage::ingest (direct)                    {direct:>10.0} records/s   {:.2}x raw COPY", direct / copy);
    println!("  raw COPY (bare)                           {copy:>10.0} records/s");
    match Arc::try_unwrap(app) {
        Ok(app) => app.cleanup().await,
        Err(_) => eprintln!("the app is still shared; its database is swept later"),
    }
}
