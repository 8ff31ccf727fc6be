//! Configuration every subgraph shares, from flags or environment variables (`--help` lists them all).

use secrecy::SecretString;

use crate::telemetry::LogFormat;

#[derive(clap::Args, Clone, Debug)]
pub struct KernelConfig {
    /// App-role connection URL: serves requests, subject to row-level security. Like `MIGRATE_DATABASE_URL`,
    /// `REDIS_URL` and `AMQP_URL`, it may be given as a `configRef` (`file:/run/secrets/…`, `env:NAME`).
    #[arg(long, env = "DATABASE_URL", value_parser = secret)]
    pub database_url: SecretString,

    /// Owner-role connection URL, used only to run migrations at start-up. Without it, no migrations run.
    #[arg(long, env = "MIGRATE_DATABASE_URL", value_parser = secret)]
    pub migrate_database_url: Option<SecretString>,

    /// Largest number of pooled database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Redis URL (caches, counters, leases; never the system of record).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", value_parser = secret)]
    pub redis_url: SecretString,

    /// First segment of every Redis key; deployments sharing a Redis need different ones.
    #[arg(long, env = "REDIS_NAMESPACE", default_value = "cp")]
    pub redis_namespace: String,

    /// RabbitMQ URL for publishing and consuming events.
    #[arg(long, env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", value_parser = secret)]
    pub amqp_url: SecretString,

    /// Shared secret the router sends in `x-cp-router-secret`; requests without it are refused, so the
    /// subgraph's port is no way around the router.
    #[arg(long, env = "ROUTER_SECRET", value_parser = secret)]
    pub router_secret: SecretString,

    /// Issuer (`iss`) that bearer tokens must carry.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: String,

    /// Audience (`aud`) that bearer tokens must carry.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "control-plane")]
    pub jwt_audience: String,

    /// JWKS with the issuer's public keys: a file path or an http(s) URL (identity's
    /// `/.well-known/jwks.json`). Refetched on unknown key ids. Required by every subgraph but identity,
    /// which verifies with its own keys.
    #[arg(long, env = "JWKS")]
    pub jwks: Option<String>,

    /// Identity subgraph's base URL, for validating API tokens (`cpt_…`) through its introspection endpoint.
    /// Without it, only JWTs are accepted.
    #[arg(long, env = "IDENTITY_URL")]
    pub identity_url: Option<String>,

    /// Credential the subgraphs present to identity's introspection endpoint (and identity checks), at
    /// least 32 bytes; also keys the MAC on API-token validations cached in Redis. Not the router secret.
    #[arg(long, env = "INTERNAL_SECRET", value_parser = secret)]
    pub internal_secret: Option<SecretString>,

    /// Largest request body `/graphql` (and identity's token service) reads, in bytes; larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Whether introspection (`__schema`, `__type`) is answered. On for development; turn it off in
    /// production (`GRAPHQL_INTROSPECTION=false`), where the router serves the composed schema anyway.
    #[arg(long, env = "GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Most field selections an operation may have once its fragments are expanded (aliases count, so
    /// alias bombs and fragment "billion laughs" are refused before any resolver runs).
    #[arg(long, env = "GRAPHQL_MAX_SELECTIONS", default_value_t = 2000)]
    pub max_selections: usize,

    /// Most directives an operation may use.
    #[arg(long, env = "GRAPHQL_MAX_DIRECTIVES", default_value_t = 50)]
    pub max_directives: usize,

    /// Most entries kept in each in-process cache (API-token validations).
    #[arg(long, env = "TOKEN_CACHE_CAPACITY", default_value_t = 10_000)]
    pub token_cache_capacity: u64,

    /// Seconds a WebSocket connection may take to send `connection_init`.
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Seconds between the pings the server sends on each WebSocket connection (keep-alive through proxies
    /// and load balancers that close idle connections).
    #[arg(long, env = "WS_PING_SECS", default_value_t = 15)]
    pub ws_ping_secs: u64,

    /// Milliseconds the outbox relay waits for the broker to confirm a batch while its rows are locked;
    /// beyond it the batch is rolled back and retried.
    #[arg(long, env = "OUTBOX_PUBLISH_TIMEOUT_MS", default_value_t = 10_000)]
    pub outbox_publish_timeout_ms: u64,

    /// Most concurrent subscriptions on one WebSocket connection. The router carries all of one
    /// credential's subscriptions to a subgraph on one connection, so this is above what the edge lets one
    /// token hold (`EDGE_MAX_SUBSCRIPTIONS_PER_TOKEN`, 500), with room for a second edge replica.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 1_000)]
    pub ws_max_subscriptions: usize,

    /// Deepest selection a query may have.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,

    /// Largest complexity a query may have (each field counts 1; list fields multiply by their `first`).
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,

    /// Most objects an answer may hold from lists whose length is known only once they are read (a
    /// module's dependencies, a transitive traversal, a build order): each such list charges its rows ×
    /// the fields selected under it, across the whole answer ([`crate::server::limits::charge`]).
    #[arg(long, env = "GRAPHQL_MAX_OBJECTS", default_value_t = 50_000)]
    pub max_objects: usize,

    /// How often the outbox relay looks for pending events when idle, in milliseconds.
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 100)]
    pub outbox_poll_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Shortest secret the kernel accepts: 32 bytes, the strength of a 256-bit key.
pub const MIN_SECRET_BYTES: usize = 32;

impl KernelConfig {
    /// The configuration with its connection strings read where they are given by `configRef`
    /// (`DATABASE_URL=file:/run/secrets/db-url`, `AMQP_URL=env:CP_AMQP_URL`, a Key Vault or Vault
    /// reference with a backend registered in `secrets`), as every other secret is; a plain URL is kept.
    pub async fn resolved(mut self, secrets: &crate::secrets::Secrets) -> anyhow::Result<Self> {
        async fn read(secrets: &crate::secrets::Secrets, name: &str, v: SecretString) -> anyhow::Result<SecretString> {
            use secrecy::ExposeSecret;
            let raw = v.expose_secret().trim();
            if raw.contains("://") {
                return Ok(v);
            }
            match crate::secrets::ConfigRef::parse(raw) {
                // A file's trailing newline is no part of a URL.
                Ok(r) => match secrets.resolve_ref(&r).await {
                    Ok(url) => Ok(url.expose_secret().trim().to_owned().into()),
                    Err(e) => Err(anyhow::anyhow!("{name}: {e}")),
                },
                // Neither a URL nor a reference: left for the connection to refuse, with its own words.
                Err(_) => Ok(v),
            }
        }
        self.database_url = read(secrets, "DATABASE_URL", self.database_url).await?;
        if let Some(owner) = self.migrate_database_url.take() {
            self.migrate_database_url = Some(read(secrets, "MIGRATE_DATABASE_URL", owner).await?);
        }
        self.redis_url = read(secrets, "REDIS_URL", self.redis_url).await?;
        self.amqp_url = read(secrets, "AMQP_URL", self.amqp_url).await?;
        Ok(self)
    }

    /// Refuses a configuration the subgraph must not start with, saying what to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        let strong = |name: &str, s: &SecretString| {
            anyhow::ensure!(
                s.expose_secret().len() >= MIN_SECRET_BYTES,
                "{name} must be at least {MIN_SECRET_BYTES} bytes (it is {}); generate one with `openssl rand -hex 32`",
                s.expose_secret().len()
            );
            Ok(())
        };
        strong("ROUTER_SECRET", &self.router_secret)?;
        if let Some(s) = &self.internal_secret {
            strong("INTERNAL_SECRET", s)?;
            anyhow::ensure!(
                s.expose_secret() != self.router_secret.expose_secret(),
                "INTERNAL_SECRET must differ from ROUTER_SECRET"
            );
        }
        anyhow::ensure!(
            self.identity_url.is_none() || self.internal_secret.is_some(),
            "IDENTITY_URL is set but INTERNAL_SECRET is not: introspection needs the internal credential"
        );
        anyhow::ensure!(self.max_body_bytes >= 1024, "MAX_BODY_BYTES must be at least 1024");
        Ok(())
    }
}

/// Reads a secret setting (clap's value parser), so it is never printed by `Debug`.
pub fn secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw))
}

/// A configuration for unit tests: required settings filled with placeholders.
#[cfg(test)]
pub(crate) fn test_config() -> crate::config::KernelConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        k: crate::config::KernelConfig,
    }
    Wrap::parse_from([
        "t",
        "--database-url=postgres://x@localhost/x",
        "--router-secret=0123456789abcdef0123456789abcdef",
        "--jwt-issuer=iss",
    ])
    .k
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        k: super::KernelConfig,
    }

    fn config(router: &str, internal: Option<&str>) -> super::KernelConfig {
        let mut args = vec![
            "t".to_owned(),
            "--database-url=x".into(),
            format!("--router-secret={router}"),
            "--jwt-issuer=i".into(),
        ];
        if let Some(i) = internal {
            args.push(format!("--internal-secret={i}"));
        }
        Wrap::parse_from(args).k
    }

    #[test]
    fn short_empty_or_shared_secrets_stop_the_subgraph() {
        let strong = "0123456789abcdef0123456789abcdef";
        assert!(config(strong, None).validate().is_ok());
        let err = config("short", None).validate().unwrap_err().to_string();
        assert!(err.contains("ROUTER_SECRET must be at least 32 bytes"), "{err}");
        assert!(config("", None).validate().is_err());
        assert!(config(strong, Some("short")).validate().is_err());
        assert!(config(strong, Some(strong)).validate().unwrap_err().to_string().contains("differ"));
        let mut c = config(strong, None);
        c.identity_url = Some("http://identity".into());
        assert!(c.validate().unwrap_err().to_string().contains("INTERNAL_SECRET"));
    }

    #[tokio::test]
    async fn connection_strings_may_be_given_by_config_ref() {
        use secrecy::ExposeSecret;
        let dir = std::env::temp_dir().join(format!("cp-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("db-url"), "postgres://app@db:5432/cp_x\n").unwrap();
        let var = format!("CP_TEST_AMQP_{}", uuid::Uuid::new_v4().simple());
        // SAFETY: this test alone reads its uniquely named variable.
        unsafe { std::env::set_var(&var, "amqp://cp_x:pw@mq:5672/%2f") };
        let mut c = config("0123456789abcdef0123456789abcdef", None);
        c.database_url = format!("file:{}", dir.join("db-url").display()).into();
        c.amqp_url = format!("env:{var}").into();
        let c = c.resolved(&crate::secrets::Secrets::default()).await.unwrap();
        assert_eq!(c.database_url.expose_secret(), "postgres://app@db:5432/cp_x");
        assert_eq!(c.amqp_url.expose_secret(), "amqp://cp_x:pw@mq:5672/%2f");
        assert_eq!(c.redis_url.expose_secret(), "redis://127.0.0.1:6379", "a plain URL is kept");
        // A reference that does not resolve stops the subgraph, naming the setting, not the value.
        let mut c = config("0123456789abcdef0123456789abcdef", None);
        c.redis_url = "env:CP_TEST_NOT_SET_ANYWHERE".to_owned().into();
        let e = c.resolved(&crate::secrets::Secrets::default()).await.unwrap_err().to_string();
        assert!(e.starts_with("REDIS_URL:"), "{e}");
        unsafe { std::env::remove_var(&var) };
        let _ = std::fs::remove_dir_all(&dir);
    }
}
