//! Configuration every subgraph shares, from flags or environment variables (`--help` lists them all).

use secrecy::SecretString;

use crate::telemetry::LogFormat;

#[derive(clap::Args, Clone, Debug)]
pub struct KernelConfig {
    /// App-role connection URL: serves requests, subject to row-level security.
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

    /// Deepest selection a query may have.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,

    /// Largest complexity a query may have (each field counts 1; list fields multiply by their `first`).
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 5000)]
    pub max_complexity: usize,

    /// How often the outbox relay looks for pending events when idle, in milliseconds.
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 100)]
    pub outbox_poll_ms: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

fn secret(raw: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(raw))
}
