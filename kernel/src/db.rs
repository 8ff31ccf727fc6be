//! PostgreSQL: pools, tenant-scoped transactions, migrations and provisioning.
//!
//! Row-level security keys on `current_setting('app.tenant_id')`. [`tenant_tx`] sets it with `set_config(…,
//! true)` — the `SET LOCAL` form — so it ends with the transaction and a pooled connection never carries a
//! tenant into the next request. Platform operators and the outbox relay get their own flags
//! (`app.platform`, `app.system`), which only the policies that name them honour.
//!
//! Each subgraph has one database and two login roles: `<db>_owner` owns the schema and runs migrations;
//! `<db>_app` serves requests, owns nothing, has no `BYPASSRLS` and can connect to its own database only.
//! Migrations grant the app role what it needs through `cp_grant_app(…)`, which reads the role's name from
//! the database setting `cp.app_role` that [`provision`] writes, so migrations never hard-code a role.

use std::borrow::Cow;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

use crate::error::Result;
use crate::ids::TenantId;

pub type Tx = Transaction<'static, Postgres>;

/// Migrations every subgraph database gets: outbox, inbox, and the grant helper. Versions below 1000.
pub static KERNEL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/kernel");

/// The kernel's migrations followed by a domain's (whose versions start at 1000).
pub fn migrator(domain: &Migrator) -> Migrator {
    let mut all: Vec<_> = KERNEL_MIGRATIONS.iter().chain(domain.iter()).cloned().collect();
    all.sort_by_key(|m| m.version);
    Migrator { migrations: Cow::Owned(all), ..Migrator::DEFAULT }
}

pub async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = url.expose_secret().parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts.log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
        .await?;
    Ok(pool)
}

/// Runs the kernel's and the domain's migrations as the database owner.
pub async fn migrate(owner_url: &SecretString, domain: &Migrator) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(owner_url.expose_secret()).await?;
    migrator(domain).run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// A domain's migrations read from `dir` at run time (tools use this; services embed theirs).
pub async fn domain_migrations(dir: &std::path::Path) -> anyhow::Result<Migrator> {
    Ok(Migrator::new(dir).await?)
}

/// A subgraph's database, reached by tenant.
///
/// Every transaction entry point names whose rows it is for, and the pool is found from that: today every
/// tenant shares one pool, and routing a `dedicated`-isolation tenant to a database of its own is a change
/// here only (platform-wide work — operators' listings, the relay — keeps using the shared pool).
#[derive(Clone, Debug)]
pub struct Db {
    shared: PgPool,
}

impl Db {
    pub fn new(shared: PgPool) -> Self {
        Self { shared }
    }

    /// The pool holding `tenant`'s rows.
    pub fn pool_for(&self, _tenant: &TenantId) -> &PgPool {
        &self.shared
    }

    /// The shared pool: platform-wide reads and writes, the outbox relay, health checks.
    pub fn shared(&self) -> &PgPool {
        &self.shared
    }

    /// A transaction in which row-level security shows `tenant`'s rows only.
    pub async fn tenant_tx(&self, tenant: &TenantId) -> Result<Tx> {
        tenant_tx(self.pool_for(tenant), tenant).await
    }

    /// A platform operator's transaction (policies that name `app.platform` let it through).
    pub async fn platform_tx(&self) -> Result<Tx> {
        platform_tx(&self.shared).await
    }

    pub async fn begin(&self, access: &Access) -> Result<Tx> {
        match access {
            Access::Tenant(t) => self.tenant_tx(t).await,
            Access::Platform => self.platform_tx().await,
        }
    }

    pub async fn close(&self) {
        self.shared.close().await;
    }
}

/// Moves an open transaction's row-level security to `tenant` (a batch that writes several tenants' rows,
/// each under its own tenant).
pub async fn set_tenant(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant.as_str()).execute(&mut **tx).await?;
    Ok(())
}

/// Whether a [`lock`] excludes every other holder or only [`Lock::Exclusive`] ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Exclusive,
    /// Many shared holders at once; an exclusive one waits for them all (and they for it).
    Shared,
}

/// Serialises transactions on `key` until this one ends (a transaction-scoped advisory lock; no table).
/// Keys are names under the domain — `catalogue.graph:<tenant>` — hashed with `hashtextextended(key, 0)`,
/// which SQL functions that take the same lock must use too.
pub async fn lock(tx: &mut Tx, key: &str, mode: Lock) -> Result<()> {
    let sql = match mode {
        Lock::Exclusive => "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        Lock::Shared => "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
    };
    sqlx::query(sql).bind(key).execute(&mut **tx).await?;
    Ok(())
}

/// Begins a transaction in which row-level security shows `tenant`'s rows only.
pub async fn tenant_tx(pool: &PgPool, tenant: &TenantId) -> Result<Tx> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant.as_str()).execute(&mut *tx).await?;
    Ok(tx)
}

/// Begins a transaction for a platform operator: policies that name `app.platform` let it through.
pub async fn platform_tx(pool: &PgPool) -> Result<Tx> {
    let mut tx = pool.begin().await?;
    tx.execute("SELECT set_config('app.platform', 'on', true)").await?;
    Ok(tx)
}

/// Begins a transaction for the outbox relay, the only reader of every tenant's outbox rows.
pub async fn relay_tx(pool: &PgPool) -> Result<Tx> {
    system_tx(pool, "relay").await
}

/// Begins a transaction for a platform-wide system task named `role`: only the policies that name it
/// (`current_setting('app.system', true) = '<role>'`) let it through.
pub async fn system_tx(pool: &PgPool, role: &'static str) -> Result<Tx> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.system', $1, true)").bind(role).execute(&mut *tx).await?;
    Ok(tx)
}

/// Names of a subgraph database's roles.
#[derive(Clone, Debug)]
pub struct Roles {
    pub owner: String,
    pub app: String,
}

impl Roles {
    /// `cp_tenancy` → `cp_tenancy_owner`, `cp_tenancy_app`. Test databases share their domain's roles.
    pub fn for_domain(domain: &str) -> Self {
        Self { owner: format!("cp_{domain}_owner"), app: format!("cp_{domain}_app") }
    }
}

/// Creates (if missing) a subgraph's roles and database, locks the database to them, and records the app
/// role for migrations. Idempotent; safe to run concurrently. `admin_url` is a superuser connection.
pub async fn provision(admin_url: &str, domain: &str, database: &str) -> anyhow::Result<Roles> {
    let roles = Roles::for_domain(domain);
    let mut admin = PgConnection::connect(admin_url).await?;
    for role in [&roles.owner, &roles.app] {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut admin)
            .await?;
        if !exists {
            ignore_duplicate(admin.execute(format!("CREATE ROLE {}", ident(role)).as_str()).await)?;
        }
        // Converge the attributes, so a role made by an older provisioning gets today's.
        let current: bool = sqlx::query_scalar(
            "SELECT rolcanlogin AND rolinherit AND NOT (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication \
             OR rolbypassrls) FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_one(&mut admin)
        .await?;
        if !current {
            let attributes = "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
            ignore_duplicate(admin.execute(format!("ALTER ROLE {} {attributes}", ident(role)).as_str()).await)?;
        }
    }
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let create = format!("CREATE DATABASE {} OWNER {}", ident(database), ident(&roles.owner));
        ignore_duplicate(admin.execute(create.as_str()).await)?;
    }
    let db = ident(database);
    for stmt in [
        format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
        format!("GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {}, {}", ident(&roles.owner), ident(&roles.app)),
        format!("ALTER DATABASE {db} SET cp.app_role = '{}'", roles.app.replace('\'', "")),
    ] {
        admin.execute(stmt.as_str()).await?;
    }
    admin.close().await?;
    mark_leakproof(admin_url, database).await?;
    Ok(roles)
}

/// Built-in functions behind operators that the subgraphs' indexed searches use — `jsonb @> jsonb` (GIN
/// `jsonb_path_ops`), `array @> array` (GIN tags) and `ILIKE` (GIN trigrams) — marked `LEAKPROOF` in each
/// domain database at provisioning.
///
/// Why: with row-level security PostgreSQL evaluates a query's own condition before the tenant policy —
/// as an index condition, or with its column statistics — only if the condition's function is leakproof.
/// These are not by default, so under RLS every such search walked the tenant's rows in some index order and
/// filtered them one by one (a 100,000-module tenant: 48 ms for a containment nothing matches, 1 ms with the
/// index; BENCHMARKS.md). Why it is safe here: `LEAKPROOF` guards rows against someone who *writes the SQL*
/// (a function that raises an error quoting its argument reveals a row the policy would hide). The app role
/// runs only the subgraphs' own compiled statements, which compare a column with a parameter; none of these
/// functions reports row data in an error (they fail only on resource limits, or — `ILIKE` — on a malformed
/// pattern, which is the parameter). The attribute is a per-database catalogue entry, so nothing outside the
/// domain databases changes. Setting it needs a superuser; without one, provisioning warns and the searches
/// stay correct but read the tenant's rows.
pub const LEAKPROOF_BUILTINS: &[&str] =
    &["jsonb_contains(jsonb, jsonb)", "arraycontains(anyarray, anyarray)", "texticlike(text, text)"];

async fn mark_leakproof(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(admin_url)?;
    url.set_path(database);
    let mut db = PgConnection::connect(url.as_str()).await?;
    for f in LEAKPROOF_BUILTINS {
        match db.execute(format!("ALTER FUNCTION pg_catalog.{f} LEAKPROOF").as_str()).await {
            // XX000: a concurrent provisioning made the same change.
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("XX000") => {}
            // 42501: not a superuser (a managed server's admin role, say).
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                tracing::warn!(
                    database,
                    function = f,
                    "not a superuser, so not marked LEAKPROOF: indexed searches will read the tenant's rows"
                );
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    db.close().await?;
    Ok(())
}

/// Provisions a subgraph's database and roles, then runs its migrations as the owner: the one-shot init job
/// (`<subgraph> provision`), and what tests do for their fresh databases. Returns the roles.
pub async fn provision_and_migrate(
    admin_url: &str,
    domain: &str,
    database: &str,
    migrations: &Migrator,
) -> anyhow::Result<Roles> {
    let roles = provision(admin_url, domain, database).await?;
    migrate(&url_for(admin_url, &roles.owner, database)?.into(), migrations).await?;
    Ok(roles)
}

/// Drops a database (tests clean up after themselves with it).
pub async fn drop_database(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    admin.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(database)).as_str()).await?;
    admin.close().await?;
    Ok(())
}

/// Replaces the user and database of a connection URL, keeping host, port and options.
pub fn url_for(base: &str, user: &str, database: &str) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(base)?;
    url.set_username(user).map_err(|_| anyhow::anyhow!("cannot set user on {base}"))?;
    url.set_password(None).map_err(|_| anyhow::anyhow!("cannot clear password on {base}"))?;
    url.set_path(database);
    Ok(url.to_string())
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Concurrent provisioning races on `CREATE ROLE`/`CREATE DATABASE`/`ALTER ROLE`; the loser's error means
/// "already there" (XX000 is PostgreSQL's "tuple concurrently updated": the other side made the same change).
fn ignore_duplicate<T>(r: std::result::Result<T, sqlx::Error>) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42710" | "42P04" | "23505" | "XX000")) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Whose rows a transaction may touch: one tenant's, or (for platform operators) every tenant's through the
/// policies that allow operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Tenant(TenantId),
    Platform,
}

impl Access {
    pub async fn begin(&self, db: &Db) -> Result<Tx> {
        db.begin(self).await
    }
}

/// A lifecycle or kind enum stored as `text`: declares the enum with each variant's stored text, its
/// `as_str`, `parse` and `ALL`, and sqlx's `Type`/`Encode`/`Decode` through them. Avoids PostgreSQL enum
/// types, whose changes need migrations that lock tables.
///
/// ```ignore
/// kernel::text_enum! {
///     #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum ApprovalStatus { Pending = "Pending", Approved = "Approved" }
/// }
/// ```
///
/// `text_enum!(Type)` alone implements the sqlx traits for a type that has `as_str` and `parse` already.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        $vis enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and published) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose stored text is `s`.
            pub fn parse(s: &str) -> ::std::option::Option<Self> {
                match s {
                    $($text => ::std::option::Option::Some($name::$variant),)+
                    _ => ::std::option::Option::None,
                }
            }
        }

        $crate::text_enum!($name);
    };
    ($ty:ty) => {
        impl ::sqlx::Type<::sqlx::Postgres> for $ty {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                <str as ::sqlx::Type<::sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <str as ::sqlx::Type<::sqlx::Postgres>>::compatible(ty)
            }
        }
        impl<'q> ::sqlx::Encode<'q, ::sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut ::sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> ::sqlx::Decode<'r, ::sqlx::Postgres> for $ty {
            fn decode(
                value: ::sqlx::postgres::PgValueRef<'r>,
            ) -> ::std::result::Result<Self, ::sqlx::error::BoxDynError> {
                let s = <&str as ::sqlx::Decode<'r, ::sqlx::Postgres>>::decode(value)?;
                <$ty>::parse(s).ok_or_else(|| format!("unexpected {} value {s:?}", stringify!($ty)).into())
            }
        }
    };
}
