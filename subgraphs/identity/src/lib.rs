//! Identity subgraph: who is calling and what they may do, and the issuer every subgraph trusts.
//!
//! Each area is a folder: `mod.rs` its types and rules (functions taking `&mut Work`), `schema.rs` its share
//! of the roots (resolvers only), `store.rs` its SQL.
//!
//! | area | owns |
//! |---|---|
//! | `principals/` | people and integrations, the `Principal` entity, the caller (`me`) |
//! | `roles/` | roles, role bindings, the permission names roles and scopes may carry |
//! | `clients/` | OAuth clients of service principals, their ids and secrets |
//! | `tokens/` | API tokens: creation, revocation, validation for the kernel, last-used tracking |
//! | `oauth/` | the token service (client credentials, JWKS, introspection, revocation) and signing keys |
//! | `bootstrap.rs` | the first platform operator, once |
//! | `schema.rs`, `loaders.rs`, `events.rs`, `ids.rs` | merged roots, DataLoaders, event payloads, ids |

pub mod bootstrap;
pub use bootstrap::bootstrap;
pub mod clients;
pub mod events;
pub mod ids;
pub mod loaders;
pub mod oauth;
pub mod principals;
pub mod roles;
pub mod schema;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, EmptySubscription, Schema, SchemaBuilder};
use kernel::auth::{Authenticator, JwksSource, JwtVerifier};
use kernel::context::RequestContext;
use kernel::secrets::Secrets;
use kernel::service::{Background, Connections, ServeArgs};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::loaders::IdentityLoader;
use crate::oauth::keys::SigningKeys;
use crate::schema::{MutationRoot, QueryRoot};

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/identity");

pub struct State {
    pub kernel: Kernel,
    pub keys: SigningKeys,
    /// `iss` of the tokens identity issues (its public base URL).
    pub issuer: String,
    pub audience: String,
    /// How long the access tokens `/oauth/token` issues live.
    pub access_token_ttl: std::time::Duration,
}

/// Identity's own settings.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Signing keys as configRefs (`env:NAME`, `file:/path`; base64 Ed25519 PKCS#8), comma-separated: the
    /// first signs, the rest only verify until their tokens have expired.
    #[arg(long, env = "SIGNING_KEYS", value_delimiter = ',', required = true)]
    pub signing_keys: Vec<String>,
    /// Lifetime of the access tokens the token endpoint issues, in seconds (5 to 86,400; clients fetch a
    /// new one before it ends).
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub access_token_ttl_seconds: u64,
}

impl Config {
    /// Signing with `signing_keys`, everything else as by default.
    pub fn with_keys(signing_keys: Vec<String>) -> Self {
        Self { signing_keys, access_token_ttl_seconds: 900 }
    }
}

/// Identity's commands beside `serve | print-schema | provision`.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Create the first platform operator on an empty system and print its API token, once.
    Bootstrap(Box<ServeArgs<Config>>),
}

impl Subgraph for State {
    const NAME: &'static str = "identity";
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

    /// Identity is the issuer: it verifies JWTs with its own keys and API tokens against its own database.
    async fn build(conns: Connections, cfg: &Config) -> anyhow::Result<Self> {
        let keys = SigningKeys::load(&Secrets::default(), &cfg.signing_keys).await?;
        let k = &conns.config;
        let jwt = JwtVerifier::new(&k.jwt_issuer, &k.jwt_audience, JwksSource::Static(keys.jwks().to_string()));
        jwt.preload().await?;
        let tokens = Arc::new(tokens::LocalTokens { db: conns.db.clone(), cache: conns.cache.clone() });
        let auth = Arc::new(Authenticator::new(jwt, Some(tokens), Some(conns.cache.clone()), k));
        let (issuer, audience) = (k.jwt_issuer.clone(), k.jwt_audience.clone());
        let access_token_ttl = std::time::Duration::from_secs(cfg.access_token_ttl_seconds);
        Ok(State { kernel: conns.kernel_with(auth), keys, issuer, audience, access_token_ttl })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn per_request(&self, data: &mut Data, ctx: &RequestContext) {
        data.insert(IdentityLoader::per_request(self.kernel.db.clone(), ctx));
    }

    /// Flushes API-token last-used times from Redis to PostgreSQL every 30 seconds, and once more at
    /// shutdown.
    fn tasks(state: &Arc<Self>, background: &Background) {
        let (db, cache, shutdown) = (state.kernel.db.clone(), state.kernel.cache.clone(), background.shutdown());
        background.spawn(async move {
            let flush = || async {
                let n = tokens::flush_last_used(&db, &cache).await?;
                if n > 0 {
                    tracing::debug!(tokens = n, "API token last-used times flushed");
                }
                Ok(())
            };
            kernel::periodic::every("API token last-used flush", Duration::from_secs(30), shutdown, flush).await;
            if let Err(e) = tokens::flush_last_used(&db, &cache).await {
                tracing::warn!(error = format!("{e:#}"), "could not flush API token last-used times at shutdown");
            }
        });
    }

    fn routes(state: &Arc<Self>) -> axum::Router {
        oauth::routes(state.clone())
    }

    async fn command(command: Command) -> anyhow::Result<()> {
        match command {
            Command::Bootstrap(args) => {
                kernel::telemetry::init(args.kernel.log_format);
                let shutdown = CancellationToken::new();
                let running =
                    kernel::service::start::<State>(args.kernel, &args.own, &Default::default(), shutdown.clone())
                        .await?;
                let token = bootstrap(&running.state).await;
                shutdown.cancel();
                let token = token?;
                eprintln!("The first platform operator exists. Its API token (30 days), shown this once:");
                println!("{token}");
                Ok(())
            }
        }
    }
}
