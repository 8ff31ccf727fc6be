//! The audit log: hash-chained appends across 100 tenants, and chain verification.
//!
//!     cargo bench -p governance --bench audit_log     (PostgreSQL and RabbitMQ as for the tests)
//!
//! **Appends.** Into a throwaway database (provisioned and migrated like the service's), 100 tenants, each
//! event a ~300-byte canonical entry. In the same run:
//!
//! - **the consumer**: the events waiting on a queue of the bench's own, drained by the audit consumer
//!   (`kernel::consumer::run` with `audit::consumer::Audit`: up to 256 waiting messages of any tenants per
//!   transaction, their inbox rows, then the heads of the batch's tenants locked in one statement and every
//!   tenant's entries, tree hashes and heads written in one statement each, one acknowledgement) — the
//!   service's path, timed from the consumer's start to the last entry;
//! - **the same consumer one message per transaction** (batch size 1), for what batching buys;
//! - **`audit::append` direct**, 8 concurrent writers, 256 events per call, no broker;
//! - **bare**: the same rows with precomputed hashes `INSERT`ed 256 per statement by 8 writers — no chain,
//!   no tree, no head lock, no inbox.
//!
//! Target: at least 5,000 appends/s through the consumer.
//!
//! **Verification.** `audit::verify` over 1,000,000 entries in memory (what `verifyAudit` runs on each
//! chunk it reads), beside the bare baseline of hashing the same bytes with `sha2` and nothing else.
//! Target: at least 1,000,000 entries/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use governance::audit::{self, consumer::Audit};
use kernel::broker::{Broker, EXCHANGE};
use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::db::Db;
use kernel::envelope::{Envelope, EventMeta};
use kernel::{TenantId, Work};
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TENANTS: usize = 100;
const EVENTS: usize = 40_000;

kernel::events! {
    domain = "catalogue";
    /// A stand-in for any domain's event, about the size of a real one.
    ModuleVersionPublished { project_id: String, module_id: String, version: String, digest: String, notes: String }
}

fn event(tenant: &TenantId, i: usize) -> Envelope {
    let meta = EventMeta {
        trace_id: format!("{:032x}", i),
        correlation_id: format!("corr-{i}"),
        causation_id: Some(format!("evt-{}", Uuid::now_v7())),
        actor: Some(format!("user-{}", i % 50)),
    };
    let payload = ModuleVersionPublished {
        project_id: Uuid::new_v4().to_string(),
        module_id: Uuid::new_v4().to_string(),
        version: format!("1.{}.{}", i / 100, i % 100),
        digest: hex::encode(Sha256::digest(i.to_le_bytes())),
        notes: "bench".into(),
    };
    Envelope::new(tenant, &meta, &payload)
}

fn tenants() -> Vec<TenantId> {
    (0..TENANTS).map(|i| TenantId::parse(&format!("bench-{i:03}")).unwrap()).collect()
}

/// Every tenant's log size, summed.
async fn appended(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT sum(size)::bigint FROM audit_heads")
        .fetch_one(pool)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// The audit consumer, one message per transaction.
struct Unbatched;

#[async_trait::async_trait]
impl Handler for Unbatched {
    fn name(&self) -> &'static str {
        "governance.audit"
    }
    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> Result<(), Failure> {
        Audit.handle(work, envelope).await
    }
}

/// Publishes `events` to a queue of the bench's own, then drains it with `handler`: appends/s.
async fn through_consumer<H: Handler>(name: &str, handler: H, events: &[Envelope]) -> f64 {
    let id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let db = test_support::TestDb::create("governance", &format!("bench{id}"), &governance::MIGRATIONS).await;
    let pool = kernel::db::connect(&db.app_url.clone().into(), 16).await.expect("pool");
    let admin = db.admin_pool().await;
    let broker = Arc::new(Broker::new(test_support::AMQP_URL.to_owned().into()));
    let spec = ConsumerSpec {
        queue: format!("bench-{id}.audit"),
        bindings: vec![format!("bench-{id}.#")],
        retry: RetryPolicy::default(),
        prefetch: 512,
    };
    let _queues =
        test_support::Queues { queues: test_support::Queues::of(&spec), exchanges: vec![spec.republish_exchange()] };
    let ch = broker.channel().await.unwrap();
    spec.declare(&ch).await.unwrap();
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(events.len());
    for e in events {
        let body = serde_json::to_vec(e).unwrap();
        let key = format!("bench-{id}.catalogue.ModuleVersionPublished");
        let props = BasicProperties::default().with_delivery_mode(2);
        confirms.push(ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap());
    }
    for c in confirms {
        c.await.unwrap();
    }
    eprintln!("  {name}: {} events published in {:.1} s", events.len(), started.elapsed().as_secs_f64());

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    tokio::spawn(kernel::consumer::run(
        broker.clone(),
        Db::new(pool.clone()),
        spec,
        Arc::new(handler),
        shutdown.clone(),
    ));
    while appended(&admin).await < events.len() as i64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    pool.close().await;
    rate
}

/// 8 writers, 256 events per call: appends/s. `one` appends a batch of one tenant's events.
async fn writers<F, Fut>(events: &[Envelope], one: F) -> f64
where
    F: Fn(Vec<Envelope>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    // Batches of one tenant's events, dealt to the writers round-robin.
    let mut by_tenant: std::collections::BTreeMap<String, Vec<Envelope>> = Default::default();
    for e in events {
        by_tenant.entry(e.tenant_id.to_string()).or_default().push(e.clone());
    }
    let batches: Vec<Vec<Envelope>> =
        by_tenant.into_values().flat_map(|v| v.chunks(256).map(<[_]>::to_vec).collect::<Vec<_>>()).collect();
    let mut lanes: Vec<Vec<Vec<Envelope>>> = vec![Vec::new(); 8];
    for (i, b) in batches.into_iter().enumerate() {
        lanes[i % 8].push(b);
    }
    let started = Instant::now();
    let handles: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let one = one.clone();
            tokio::spawn(async move {
                for b in lane {
                    one(b).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

/// `audit::append` by 8 writers into a fresh database: appends/s. `sequence_trigger: false` switches off
/// the trigger that keeps `(tenant, seq)` unique across partitions (migration 1016), to show its cost.
async fn append_direct(events: &[Envelope], sequence_trigger: bool) -> (f64, test_support::TestDb, sqlx::PgPool) {
    let id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let db = test_support::TestDb::create("governance", &format!("bench{id}"), &governance::MIGRATIONS).await;
    if !sequence_trigger {
        let admin = db.admin_pool().await;
        sqlx::query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_in_sequence")
            .execute(&admin)
            .await
            .unwrap();
    }
    let pool = kernel::db::connect(&db.app_url.clone().into(), 16).await.expect("pool");
    let kdb = Db::new(pool.clone());
    let appended = writers(events, move |batch: Vec<Envelope>| {
        let kdb = kdb.clone();
        async move {
            let tenant = batch[0].tenant_id.clone();
            let mut tx = kdb.tenant_tx(&tenant).await.unwrap();
            audit::append(&mut tx, &tenant, batch).await.unwrap();
            tx.commit().await.unwrap();
        }
    })
    .await;
    (appended, db, pool)
}

async fn direct(events: &[Envelope]) -> (f64, f64, f64) {
    let (unsequenced, _, _) = append_direct(events, false).await;
    let (appended, _db, pool) = append_direct(events, true).await;
    // Bare: the same rows (hashes precomputed off the clock), numbered after the append's, no chain work.
    let rows: Arc<std::collections::HashMap<String, Vec<audit::NewEntry>>> = Arc::new({
        let mut by_tenant: std::collections::HashMap<String, Vec<Envelope>> = Default::default();
        for e in events {
            by_tenant.entry(e.tenant_id.to_string()).or_default().push(e.clone());
        }
        by_tenant
            .into_iter()
            // After the entries the append wrote: the sequence trigger admits only the next numbers.
            .map(|(t, envs)| (t, audit::chain_after(envs.len() as i64, audit::GENESIS, envs).unwrap()))
            .collect()
    });
    let cursor = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, usize>::new()));
    let bare = writers(events, move |batch: Vec<Envelope>| {
        let (pool, rows, cursor) = (pool.clone(), rows.clone(), cursor.clone());
        async move {
            let tenant = batch[0].tenant_id.clone();
            let mut tx = kernel::db::tenant_tx(&pool, &tenant).await.unwrap();
            // One writer per tenant at a time, numbering after the last (the sequence trigger admits only the
            // next numbers): the head's row lock, as the append takes it, but no chain or tree work.
            sqlx::query("SELECT 1 FROM audit_heads WHERE tenant_id = $1 FOR UPDATE")
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .unwrap();
            let from = {
                let mut c = cursor.lock().unwrap();
                let at = c.entry(tenant.to_string()).or_default();
                let from = *at;
                *at += batch.len();
                from
            };
            let entries = &rows[tenant.as_str()][from..from + batch.len()];
            audit::store::insert(&mut tx, entries).await.unwrap();
            tx.commit().await.unwrap();
        }
    })
    .await;
    (appended, bare, unsequenced)
}

/// `audit::verify` over `n` in-memory entries, and bare sha256 over the same bytes: entries/s each.
fn verification(n: usize) -> (f64, f64) {
    let tenant = TenantId::parse("bench-verify").unwrap();
    let entries = audit::chain_after(0, audit::GENESIS, (0..n).map(|i| event(&tenant, i)).collect()).unwrap();
    let mean = entries.iter().map(|e| e.entry.len()).sum::<usize>() / n;
    let links: Vec<audit::Link> =
        entries.iter().map(|e| audit::Link { seq: e.seq, entry: e.entry.clone(), hash: e.hash.to_vec() }).collect();
    drop(entries);
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let started = Instant::now();
        let mut prev = [0u8; 32];
        for l in &links {
            let mut h = Sha256::new();
            h.update(prev);
            h.update(&l.entry);
            prev = h.finalize().into();
        }
        std::hint::black_box(prev);
        best.1 = best.1.max(n as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let v = audit::verify(1, audit::GENESIS, &links);
        assert!(v.ok && v.verified == n as i64);
        best.0 = best.0.max(n as f64 / started.elapsed().as_secs_f64());
    }
    eprintln!("  verification: {n} entries of {mean} bytes on average");
    best
}

#[tokio::main]
async fn main() {
    let tenants = tenants();
    let events: Vec<Envelope> = (0..EVENTS).map(|i| event(&tenants[i % TENANTS], i)).collect();
    let mean = events.iter().map(|e| audit::canonical(e, 1).unwrap().len()).sum::<usize>() / EVENTS;
    eprintln!("{EVENTS} events over {TENANTS} tenants, canonical entries of {mean} bytes on average");

    let consumer = through_consumer("the consumer", Audit, &events).await;
    let unbatched = through_consumer("the consumer, one per transaction", Unbatched, &events[..EVENTS / 4]).await;
    let (direct, bare, unsequenced) = direct(&events).await;
    let (verify, sha) = tokio::task::block_in_place(|| verification(1_000_000));

    println!("\n### Audit appends, {EVENTS} events over {TENANTS} tenants (appends/s)\n");
    println!("| path | appends/s |");
    println!("|---|---|");
    println!("| the audit consumer (batches of up to 256 waiting messages per transaction) | {consumer:.0} |");
    println!("| the audit consumer, one message per transaction ({} events) | {unbatched:.0} |", EVENTS / 4);
    println!("| `audit::append` direct, 8 writers × 256 events per call | {direct:.0} |");
    println!("| the same, without the `(tenant, seq)` sequence trigger (migration 1016) | {unsequenced:.0} |");
    println!(
        "| bare: the same rows `INSERT`ed 256 per statement by 8 writers under the head's lock, no chain, tree or inbox | {bare:.0} |"
    );
    println!("\n### Chain verification (entries/s)\n");
    println!("| path | entries/s |");
    println!("|---|---|");
    println!("| `audit::verify`, 1,000,000 entries in memory | {verify:.0} |");
    println!("| bare: sha256(prev ‖ entry) over the same bytes | {sha:.0} |");
    println!("\ntargets:");
    let verdict = |ok: bool, what: String| if ok { format!("met ({what})") } else { format!("MISSED ({what})") };
    println!("  ≥ 5,000 appends/s through the consumer: {}", verdict(consumer >= 5_000.0, format!("{consumer:.0}/s")));
    println!("  ≥ 1,000,000 entries/s verified: {}", verdict(verify >= 1_000_000.0, format!("{verify:.0}/s")));
}
