//! Governance subgraph: Cedar policies and the decisions evaluated over them, approvals, integration
//! connections (secrets by reference only), model policies, the audit log and usage metering.
//!
//! Each area is a folder with the same parts — `mod.rs` (its types and rules), `schema.rs` (its share of
//! the query and mutation roots, merged below) and `store.rs` (its SQL, compile-time checked):
//!
//! | folder | owns |
//! |---|---|
//! | `policies/` | Cedar policy definitions, the control plane's Cedar schema (`cedar.rs`), compiled sets cached per tenant (`cache.rs`) |
//! | `decisions/` | evaluation and the append-only decisions, their retention |
//! | `approvals/` | approval requests and votes, the `RequestApproval` consumer, the expiry worker |
//! | `integrations/` | integration connections and their secret references |
//! | `models/` | model policies and their evaluation |
//! | `usage/` | usage metering: records from every domain's `UsageRecorded` events and `recordUsage`, deduplicated, in daily partitions (`partitions.rs`), rolled up hourly and daily behind a watermark (`rollup.rs`) |
//! | `audit/` | the audit log: an entry per event of every domain, hash-chained per tenant and a Merkle tree (`tree.rs`) with signed checkpoints (`checkpoint.rs`) and proofs; exports to blob storage (`export.rs`, checked offline by `src/bin/audit-verify.rs`); partitions and retention (`partitions.rs`) |
//! | `retention.rs` | what a pass of the audit and usage partition workers did, and its log lines |
//!
//! beside `commands.rs` (the commands governance accepts), `directory/`
//! (identity's role bindings and tenancy's legal holds, projected) and `events.rs` (everything published).

#![recursion_limit = "256"]

pub mod approvals;
pub mod audit;
pub mod commands;
pub mod decisions;
pub mod directory;
pub mod events;
pub mod ids;
pub mod integrations;
pub mod models;
pub mod policies;
pub mod retention;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};
use kernel::consumer::{Notice, RetryPolicy};
use kernel::secrets::Secrets;
use kernel::service::{Connections, Consumer, Listener, Worker};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/governance");

/// Governance's own settings (flags or environment variables of `governance serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Seconds between passes of the approval expiry worker.
    #[arg(long, env = "APPROVAL_EXPIRY_INTERVAL_SECS", default_value_t = 30)]
    pub approval_expiry_interval_secs: u64,
    /// Most audit entries one `verifyAudit` call walks (a longer range takes several calls).
    #[arg(long, env = "AUDIT_VERIFY_MAX_ENTRIES", default_value_t = 100_000)]
    pub audit_verify_max_entries: i64,
    /// Tenants whose compiled policy sets are kept in memory.
    #[arg(long, env = "POLICY_CACHE_CAPACITY", default_value_t = 10_000)]
    pub policy_cache_capacity: u64,
    /// Seconds a compiled policy set is used before it is recompiled, even without a change event.
    #[arg(long, env = "POLICY_CACHE_TTL_SECS", default_value_t = 300)]
    pub policy_cache_ttl_secs: u64,
    /// How policy sets are evaluated: `indexed` (the scope index; fast) or `authorizer` (Cedar's plain
    /// `Authorizer` over the whole set). Both decide alike (policies/cedar.rs).
    #[arg(long, env = "POLICY_ENGINE", value_enum, default_value_t = policies::cedar::Engine::Indexed)]
    pub policy_engine: policies::cedar::Engine,
    /// Integration secrets by `env:` must name variables starting with this, then the tenant in upper case
    /// (`-` as `_`), then `__`: `CP_SECRET_ACME__GITHUB_TOKEN` for tenant `acme`, `CP_SECRET_ACME_CORP__…`
    /// for `acme-corp` (no tenant's prefix is a prefix of another's).
    #[arg(long, env = "INTEGRATION_SECRET_ENV_PREFIX", default_value = "CP_SECRET_")]
    pub integration_secret_env_prefix: String,
    /// Integration secrets by `file:` must lie under `<this>/<tenant>/`.
    #[arg(long, env = "INTEGRATION_SECRET_DIR", default_value = "/run/secrets/tenants")]
    pub integration_secret_dir: String,
    /// Where the audit checkpoint signing key is (a `configRef`: `env:VAR` or `file:/path`), a signed-note
    /// Ed25519 signer key as `governance audit-keygen` writes it. Without one, checkpoints are UNAVAILABLE
    /// (the log, its chain and its proofs are not).
    #[arg(long, env = "AUDIT_CHECKPOINT_KEY")]
    pub audit_checkpoint_key: Option<String>,
    /// The folder audit exports are written to (created if missing), unless they go to Azure Blob.
    #[arg(long, env = "AUDIT_EXPORT_DIR", default_value = "audit-exports")]
    pub audit_export_dir: String,
    /// Export to this Azure Blob container instead of the folder (it must exist).
    #[arg(long, env = "AUDIT_EXPORT_AZURE_CONTAINER")]
    pub audit_export_azure_container: Option<String>,
    /// The Azure storage account (with AUDIT_EXPORT_AZURE_CONTAINER).
    #[arg(long, env = "AUDIT_EXPORT_AZURE_ACCOUNT")]
    pub audit_export_azure_account: Option<String>,
    /// The account's access key, by `configRef` (`env:VAR`, `file:/path`).
    #[arg(long, env = "AUDIT_EXPORT_AZURE_KEY")]
    pub audit_export_azure_key: Option<String>,
    /// The blob endpoint, when not `https://<account>.blob.core.windows.net` (Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`; plain http only when named here).
    #[arg(long, env = "AUDIT_EXPORT_AZURE_ENDPOINT")]
    pub audit_export_azure_endpoint: Option<String>,
    /// Entries per exported object.
    #[arg(long, env = "AUDIT_EXPORT_RANGE", default_value_t = 10_000)]
    pub audit_export_range: i64,
    /// Seconds between passes of the export worker (each exports every full range); 0 turns it off
    /// (`exportAuditLog` still exports on demand).
    #[arg(long, env = "AUDIT_EXPORT_INTERVAL_SECS", default_value_t = 300)]
    pub audit_export_interval_secs: u64,
    /// Months an audit entry is kept after its month ends (at least 84, seven years), then its partition is dropped —
    /// unless a tenant in it is under legal hold or has entries in it not exported yet.
    #[arg(long, env = "AUDIT_RETENTION_MONTHS", default_value_t = 84)]
    pub audit_retention_months: i32,
    /// Seconds after an hour ends during which records for it are still accepted (and counted); then the
    /// rollup worker closes it. 60 to 604800 (a week).
    #[arg(long, env = "USAGE_LATE_WINDOW_SECS", default_value_t = 7200)]
    pub usage_late_window_secs: u64,
    /// Seconds between passes of the usage rollup worker; 0 turns it off (nothing closes).
    #[arg(long, env = "USAGE_ROLLUP_INTERVAL_SECS", default_value_t = 60)]
    pub usage_rollup_interval_secs: u64,
    /// Days raw usage records are kept after their day ends (at least 90), then their partition is dropped
    /// (rollups stay) — unless a tenant in it is under legal hold. More than the late window.
    #[arg(long, env = "USAGE_RAW_RETENTION_DAYS", default_value_t = 90)]
    pub usage_raw_retention_days: i32,
    /// Years usage rollups are kept, at least 7 (a tenant under legal hold keeps its own longer).
    #[arg(long, env = "USAGE_ROLLUP_RETENTION_YEARS", default_value_t = 7)]
    pub usage_rollup_retention_years: i32,
}

/// The seed's retention rules, as floors a configuration may raise but never lower.
pub const MIN_AUDIT_RETENTION_MONTHS: i32 = 84;
pub const MIN_USAGE_RAW_RETENTION_DAYS: i32 = 90;
pub const MIN_USAGE_ROLLUP_RETENTION_YEARS: i32 = 7;

impl Config {
    /// Refuses a configuration governance must not start with, naming the setting to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.policy_cache_ttl_secs >= 1, "POLICY_CACHE_TTL_SECS must be at least 1");
        // The seed's retention rules are floors: a deployment may keep longer, never shorter.
        anyhow::ensure!(
            self.audit_retention_months >= MIN_AUDIT_RETENTION_MONTHS,
            "AUDIT_RETENTION_MONTHS must be at least {MIN_AUDIT_RETENTION_MONTHS} (audit entries are kept seven years)"
        );
        anyhow::ensure!(
            self.usage_raw_retention_days >= MIN_USAGE_RAW_RETENTION_DAYS,
            "USAGE_RAW_RETENTION_DAYS must be at least {MIN_USAGE_RAW_RETENTION_DAYS}"
        );
        anyhow::ensure!(
            (60..=7 * 86_400).contains(&self.usage_late_window_secs),
            "USAGE_LATE_WINDOW_SECS must be 60 to 604800"
        );
        anyhow::ensure!(
            i64::from(self.usage_raw_retention_days) * 86_400 > self.usage_late_window_secs as i64 + 86_400,
            "USAGE_RAW_RETENTION_DAYS must be more than a day longer than the late window"
        );
        anyhow::ensure!(
            self.usage_rollup_retention_years >= MIN_USAGE_ROLLUP_RETENTION_YEARS,
            "USAGE_ROLLUP_RETENTION_YEARS must be at least {MIN_USAGE_ROLLUP_RETENTION_YEARS} (usage rollups are kept seven years)"
        );
        anyhow::ensure!(
            !self.integration_secret_env_prefix.is_empty() && self.integration_secret_dir.starts_with('/'),
            "INTEGRATION_SECRET_ENV_PREFIX must not be empty and INTEGRATION_SECRET_DIR must be an absolute path"
        );
        Ok(())
    }

    pub fn secret_scope(&self) -> integrations::SecretScope {
        integrations::SecretScope {
            env_prefix: self.integration_secret_env_prefix.clone(),
            dir: self.integration_secret_dir.clone(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let scope = integrations::SecretScope::default();
        Self {
            approval_expiry_interval_secs: 30,
            audit_verify_max_entries: 100_000,
            policy_cache_capacity: 10_000,
            policy_cache_ttl_secs: 300,
            policy_engine: policies::cedar::Engine::Indexed,
            integration_secret_env_prefix: scope.env_prefix,
            integration_secret_dir: scope.dir,
            audit_checkpoint_key: None,
            audit_export_dir: "audit-exports".into(),
            audit_export_azure_container: None,
            audit_export_azure_account: None,
            audit_export_azure_key: None,
            audit_export_azure_endpoint: None,
            audit_export_range: 10_000,
            audit_export_interval_secs: 300,
            audit_retention_months: 84,
            usage_late_window_secs: 7200,
            usage_rollup_interval_secs: 60,
            usage_raw_retention_days: 90,
            usage_rollup_retention_years: 7,
        }
    }
}

/// `governance`'s commands beside `serve | print-schema | provision`.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Writes a new audit checkpoint signing key (a signed-note Ed25519 signer key) to `--out`, readable
    /// by its owner only, and prints its verifier key. Refuses to overwrite a key.
    AuditKeygen {
        /// The key's name: each tenant's log origin is `<name>/<tenant>`.
        #[arg(long, default_value = "control-plane.local/audit")]
        name: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    policies::schema::PolicyQuery,
    decisions::schema::DecisionQuery,
    approvals::schema::ApprovalQuery,
    integrations::schema::IntegrationQuery,
    models::schema::ModelQuery,
    audit::schema::AuditQuery,
    usage::schema::UsageQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    policies::schema::PolicyMutation,
    approvals::schema::ApprovalMutation,
    integrations::schema::IntegrationMutation,
    models::schema::ModelMutation,
    audit::schema::AuditMutation,
    usage::schema::UsageMutation,
);

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    pub config: Config,
    pub policies: policies::cache::PolicyCache,
    /// Appends the API's decisions, many evaluations per commit.
    pub decisions: decisions::writer::DecisionWriter,
    /// Resolves `configRef`s (`env:` and `file:` here; Key Vault and Vault backends register their schemes).
    pub secrets: Secrets,
    /// Signs audit checkpoints (when a key is configured).
    pub checkpoints: Option<Arc<audit::checkpoint::CheckpointSigner>>,
    /// Where audit exports go.
    pub exports: Option<audit::export::Exporter>,
}

impl Subgraph for State {
    const NAME: &'static str = "governance";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = EmptySubscription;
    type Config = Config;
    type Command = Command;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).enable_federation()
    }

    async fn build(conns: Connections, config: &Config) -> anyhow::Result<Self> {
        config.validate()?;
        let secrets = Secrets::default();
        let checkpoints = match &config.audit_checkpoint_key {
            None => {
                tracing::warn!("AUDIT_CHECKPOINT_KEY is not set: audit checkpoints cannot be signed");
                None
            }
            Some(r) => {
                use secrecy::ExposeSecret;
                let key = secrets.resolve(r).await.map_err(|e| anyhow::anyhow!("AUDIT_CHECKPOINT_KEY ({r}): {e}"))?;
                Some(Arc::new(audit::checkpoint::CheckpointSigner::new(key.expose_secret())?))
            }
        };
        let exports = Some(audit::export::Exporter::from_config(config, &secrets).await?);
        let kernel = conns.kernel().await?;
        Ok(Self {
            decisions: decisions::writer::start(kernel.db.clone()),
            kernel,
            config: config.clone(),
            policies: policies::cache::PolicyCache::new(
                config.policy_cache_capacity,
                Duration::from_secs(config.policy_cache_ttl_secs),
                config.policy_engine,
            ),
            secrets,
            checkpoints,
            exports,
        })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn consumers(state: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![
            Consumer { spec: commands::spec(retry.clone()), handler: Arc::new(commands::Commands(state.clone())) },
            Consumer {
                spec: approvals::requests::spec(retry.clone()),
                handler: Arc::new(approvals::requests::ApprovalRequests),
            },
            Consumer { spec: directory::spec(retry.clone()), handler: Arc::new(directory::Directory) },
            Consumer { spec: audit::consumer::spec(retry.clone()), handler: Arc::new(audit::consumer::Audit) },
            Consumer { spec: usage::consumer::spec(retry.clone()), handler: Arc::new(usage::consumer::Usage) },
        ]
    }

    fn listeners(state: &Arc<Self>) -> Vec<Listener> {
        let state = state.clone();
        vec![Listener {
            bindings: policies::cache::invalidation_bindings(),
            on_notice: Arc::new(move |notice| match notice {
                // Events may have been missed: every set may be stale.
                Notice::Reset => state.policies.clear(),
                Notice::Event(envelope) => state.policies.invalidate(&envelope.tenant_id),
            }),
        }]
    }

    async fn command(command: Command) -> anyhow::Result<()> {
        match command {
            Command::AuditKeygen { name, out } => {
                let (signer, verifier) = audit::checkpoint::CheckpointSigner::generate(&name)?;
                audit::checkpoint::write_key(&out, &signer)?;
                println!("{verifier}");
                Ok(())
            }
        }
    }

    fn workers(state: &Arc<Self>) -> Vec<Worker<Self>> {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        let c = &state.config;
        let mut workers = vec![
            Worker {
                name: "approval expiry",
                every: secs(c.approval_expiry_interval_secs),
                pass: |s| Box::pin(approvals::expiry::pass(s)),
            },
            Worker {
                name: "decision retention",
                every: decisions::retention::INTERVAL,
                pass: |s| Box::pin(decisions::retention::pass(s)),
            },
            Worker {
                name: "audit partitions",
                every: audit::partitions::INTERVAL,
                pass: |s| Box::pin(audit::partitions::pass(s)),
            },
            Worker {
                name: "usage partitions",
                every: usage::partitions::INTERVAL,
                pass: |s| Box::pin(usage::partitions::pass(s)),
            },
        ];
        if c.usage_rollup_interval_secs > 0 {
            let every = secs(c.usage_rollup_interval_secs);
            workers.push(Worker { name: "usage rollup", every, pass: |s| Box::pin(usage::rollup::pass(s)) });
        }
        if c.audit_export_interval_secs > 0 {
            let every = secs(c.audit_export_interval_secs);
            workers.push(Worker { name: "audit export", every, pass: |s| Box::pin(audit::export::worker_pass(s)) });
        }
        workers
    }
}
