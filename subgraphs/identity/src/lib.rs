//! Identity subgraph: who is calling and what they may do, and the issuer every subgraph trusts.
//!
//! | file | owns |
//! |---|---|
//! | `schema.rs` | query and mutation roots, the `Principal` entity, who may manage what |
//! | `oauth.rs` | token service: client credentials, JWKS, introspection, revocation |
//! | `tokens.rs` | client secrets, API-token validation against the database, last-used tracking |
//! | `keys.rs` | signing keys by `configRef` (current signs, older ones still verify) |
//! | `model.rs`, `store.rs`, `events.rs` | GraphQL types, all SQL, event payloads |

pub mod events;
pub mod keys;
pub mod model;
pub mod oauth;
pub mod schema;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};
use kernel::auth::{Authenticator, JwksSource, JwtVerifier};
use kernel::broker::Broker;
use kernel::cache::Cache;
use kernel::config::KernelConfig;
use kernel::outbox::Relay;
use kernel::secrets::Secrets;
use kernel::server::{self, Kernel, PerRequest};
use kernel::{api_token, db, outbox, TenantId};
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::events::DOMAIN;
use crate::keys::SigningKeys;
use crate::schema::{MutationRoot, QueryRoot};

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/identity");

pub type IdentitySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub struct State {
    pub kernel: Kernel,
    pub keys: SigningKeys,
    /// `iss` of the tokens identity issues (its public base URL).
    pub issuer: String,
    pub audience: String,
}

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on (GraphQL and the token service).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:4001")]
    pub listen: SocketAddr,
    /// Signing keys as configRefs (`env:NAME`, `file:/path`; base64 Ed25519 PKCS#8), comma-separated: the
    /// first signs, the rest only verify until their tokens have expired.
    #[arg(long, env = "SIGNING_KEYS", value_delimiter = ',', required = true)]
    pub signing_keys: Vec<String>,
    #[command(flatten)]
    pub kernel: KernelConfig,
}

pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription).enable_federation()
}

pub fn app(state: Arc<State>, max_depth: usize, max_complexity: usize) -> axum::Router {
    let schema = schema_builder().data(state.clone()).limit_depth(max_depth).limit_complexity(max_complexity).finish();
    let per_request: PerRequest = Arc::new(|_, _| {});
    server::app(schema, state.kernel.clone(), per_request).merge(oauth::routes(state))
}

pub async fn connect(cfg: &Config) -> anyhow::Result<Arc<State>> {
    let k = &cfg.kernel;
    if let Some(owner) = &k.migrate_database_url {
        db::migrate(owner, &MIGRATIONS).await?;
    }
    let pool = db::connect(&k.database_url, k.database_max_connections).await?;
    let cache = Cache::connect(&k.redis_url, &k.redis_namespace).await?;
    let keys = SigningKeys::load(&Secrets::default(), &cfg.signing_keys).await?;
    let jwt = JwtVerifier::new(&k.jwt_issuer, &k.jwt_audience, JwksSource::Static(keys.jwks().to_string()));
    jwt.preload().await?;
    let tokens = Arc::new(tokens::LocalTokens { pool: pool.clone(), cache: cache.clone() });
    let auth = Arc::new(Authenticator::new(jwt, Some(tokens), Some(cache.clone())));
    let broker = Arc::new(Broker::new(k.amqp_url.clone()));
    let kernel = Kernel { pool, cache, broker, auth, router_secret: k.router_secret.clone() };
    Ok(Arc::new(State { kernel, keys, issuer: k.jwt_issuer.clone(), audience: k.jwt_audience.clone() }))
}

/// The outbox relay, the revocation listener and the last-used flusher.
pub fn spawn_background(state: &Arc<State>, poll: Duration, shutdown: &CancellationToken) {
    let k = &state.kernel;
    tokio::spawn(Relay::new(k.pool.clone(), k.broker.clone(), poll).run(shutdown.clone()));
    server::spawn_revocation_listener(k, shutdown);
    let (pool, cache, shutdown) = (k.pool.clone(), k.cache.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            if let Err(e) = tokens::flush_last_used(&pool, &cache).await {
                tracing::warn!(error = format!("{e:#}"), "could not flush API token last-used times");
            }
        }
    });
}

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    kernel::telemetry::init(cfg.kernel.log_format);
    let state = connect(&cfg).await?;
    let shutdown = CancellationToken::new();
    server::cancel_on_signal(shutdown.clone());
    spawn_background(&state, Duration::from_millis(cfg.kernel.outbox_poll_ms), &shutdown);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %cfg.listen, "identity subgraph listening");
    server::serve(listener, app(state, cfg.kernel.max_depth, cfg.kernel.max_complexity), shutdown).await
}

/// Creates the first platform operator on an empty system and returns its API token (shown once).
pub async fn bootstrap(state: &State) -> anyhow::Result<String> {
    let platform = TenantId::platform();
    let meta = kernel::envelope::EventMeta {
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        correlation_id: "bootstrap".into(),
        causation_id: None,
    };
    let mut tx = db::tenant_tx(&state.kernel.pool, &platform).await?;
    store::bootstrap_lock(&mut tx).await?;
    anyhow::ensure!(
        !store::any_principal(&mut tx).await?,
        "the platform already has principals: bootstrap runs once, on an empty system"
    );
    let perms: Vec<String> = ["platform:admin", "identity:read", "identity:write"].map(String::from).to_vec();
    store::upsert_role(&mut tx, &platform, "platform-admin", "Platform operators", &perms).await?;
    let p = store::insert_principal(&mut tx, &platform, "User", "Platform operator", None).await?;
    store::bind_role(&mut tx, &platform, p.id, "platform-admin").await?;
    let token = api_token::generate();
    let expires_at = chrono::Utc::now() + chrono::Duration::days(30);
    let t =
        store::insert_api_token(&mut tx, &platform, p.id, "bootstrap", &api_token::hash(&token), &perms, expires_at)
            .await?;
    outbox::enqueue(
        &mut tx,
        DOMAIN,
        &platform,
        &meta,
        &events::PrincipalCreated {
            principal_id: p.id.to_string(),
            kind: "User".into(),
            display_name: p.display_name.clone(),
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        DOMAIN,
        &platform,
        &meta,
        &events::RoleBound { principal_id: p.id.to_string(), role_key: "platform-admin".into() },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        DOMAIN,
        &platform,
        &meta,
        &events::ApiTokenCreated {
            token_id: t.id.to_string(),
            principal_id: p.id.to_string(),
            scopes: perms,
            expires_at: expires_at.timestamp(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}
