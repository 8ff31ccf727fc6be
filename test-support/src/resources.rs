//! Throwaway resources, removed on drop (also when a test panics).

use std::future::Future;

use kernel::db::Roles;
use sqlx::migrate::Migrator;

/// Runs cleanup on a thread of its own (a drop may run inside or outside a runtime, or while unwinding).
fn run_detached<F: Future<Output = ()> + Send + 'static>(f: F) {
    let joined = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("cleanup runtime");
        rt.block_on(f);
    })
    .join();
    if joined.is_err() {
        eprintln!("test cleanup panicked");
    }
}

/// A database provisioned with the domain's real roles and migrated, dropped on drop.
pub struct TestDb {
    pub name: String,
    pub roles: Roles,
    /// App-role URL (row-level security applies).
    pub app_url: String,
    /// Owner-role URL (migrations).
    pub owner_url: String,
}

impl TestDb {
    /// `cp_t_<domain>_<id>`, provisioned for `domain` and migrated with `migrations`.
    pub async fn create(domain: &str, id: &str, migrations: &Migrator) -> TestDb {
        sweep_stale_databases().await;
        let admin = crate::admin_url();
        let name = format!("cp_t_{domain}_{id}");
        let roles = kernel::db::provision_and_migrate(&admin, domain, &name, migrations).await.expect("provision");
        let app_url = kernel::db::url_for(&admin, &roles.app, &name).unwrap();
        let owner_url = kernel::db::url_for(&admin, &roles.owner, &name).unwrap();
        TestDb { name, roles, app_url, owner_url }
    }

    /// A superuser pool on this database, for looking behind the API.
    pub async fn admin_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&kernel::db::url_for(&crate::admin_url(), "postgres", &self.name).unwrap()).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        run_detached(async move {
            if let Err(e) = kernel::db::drop_database(&crate::admin_url(), &name).await {
                eprintln!("could not drop test database {name}: {e:#}");
            }
        });
    }
}

/// Drops test databases a killed earlier run left behind (older than two hours), once per process.
async fn sweep_stale_databases() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(pool) = sqlx::PgPool::connect(&crate::admin_url()).await else { return };
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'cp\\_t\\_%' \
                 AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '2 hours'",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            for db in stale {
                let _ = kernel::db::drop_database(&crate::admin_url(), &db).await;
            }
        })
        .await;
}

/// A Redis namespace of one test's own; every key under it is deleted on drop (never `FLUSHALL`).
pub struct RedisNamespace(pub String);

impl RedisNamespace {
    pub fn new(id: &str) -> Self {
        Self(format!("cp-t-{id}"))
    }

    /// Keys under this namespace right now.
    pub async fn keys(&self) -> Vec<String> {
        scan_namespace(&self.0).await.expect("redis")
    }
}

async fn scan_namespace(ns: &str) -> redis::RedisResult<Vec<String>> {
    let client = redis::Client::open(crate::REDIS_URL)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut scan = redis::AsyncCommands::scan_match::<_, String>(&mut conn, format!("{ns}:*")).await?;
    let mut keys = Vec::new();
    while let Some(k) = scan.next_item().await {
        keys.push(k);
    }
    Ok(keys)
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let ns = self.0.clone();
        run_detached(async move {
            let found = scan_namespace(&ns).await.unwrap_or_default();
            if found.is_empty() {
                return;
            }
            let Ok(client) = redis::Client::open(crate::REDIS_URL) else { return };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return };
            for chunk in found.chunks(500) {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
            }
        });
    }
}

/// Durable queues and exchanges a test declared (its consumers' queues, retry and dead-letter queues and
/// their republish exchange, its relay's unrouted queue), deleted on drop.
#[derive(Default)]
pub struct Queues {
    pub queues: Vec<String>,
    pub exchanges: Vec<String>,
}

impl Queues {
    /// The queue, its retry queues and its dead-letter queue.
    pub fn of(spec: &kernel::consumer::ConsumerSpec) -> Vec<String> {
        let mut names = vec![spec.queue.clone(), spec.dead_letter_queue()];
        names.extend((1..=spec.retry.retries).map(|n| spec.retry_queue(n)));
        names
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        let (queues, exchanges) = (std::mem::take(&mut self.queues), std::mem::take(&mut self.exchanges));
        if queues.is_empty() && exchanges.is_empty() {
            return;
        }
        run_detached(async move {
            let broker = kernel::broker::Broker::new(crate::AMQP_URL.to_owned().into());
            let Ok(ch) = broker.channel().await else { return };
            for q in queues {
                let _ = ch.queue_delete(&q, lapin::options::QueueDeleteOptions::default()).await;
            }
            for x in exchanges {
                let _ = ch.exchange_delete(&x, lapin::options::ExchangeDeleteOptions::default()).await;
            }
        });
    }
}
