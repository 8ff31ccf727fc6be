//! Shared kernel of the control-plane subgraphs.
//!
//! Every domain subgraph (identity, tenancy, catalogue, workflow, governance, lineage) is an async-graphql
//! service on axum that owns one PostgreSQL database. What they have in common lives here, so a domain crate
//! holds only its own schema, SQL and events:
//!
//! | module | owns |
//! |---|---|
//! | [`service`] | the [`service::Subgraph`] trait and the one entry point every subgraph runs through |
//! | [`work`] | the one write path: a unit of work (tenant transaction → store calls → `emit` → commit) |
//! | [`access`] | the one access check (`ctx.authorize(PERMISSION)`) and the [`access::Authorized`] proof every write takes |
//! | [`ids`] | [`TenantId`], the slug every row, key and event carries |
//! | [`contracts`] | event types one domain publishes and another crate reads |
//! | [`permissions`] | every permission of every domain |
//! | [`error`] | the one error type and its `extensions.code`; nothing internal reaches a client |
//! | [`api_token`] | API token format (prefix, checksum) and hashing |
//! | [`secrets`] | secrets by `configRef` (`env:`, `file:`; pluggable for Key Vault or Vault) |
//! | [`auth`] | bearer tokens, one file per concern: `jwt` (JWKS, verifier), `api_tokens` (sources, introspection), `authenticator` (caches, revocation), `revocation` (the listener), `signer` (local key) |
//! | [`context`] | the per-request [`RequestContext`]: caller, tenant, scopes, trace and correlation ids |
//! | [`db`] | pools, tenant-scoped transactions (`SET LOCAL` for row-level security), migrations, provisioning |
//! | [`envelope`] | the canonical event envelope and the [`envelope::Event`] trait for payloads |
//! | [`group_commit`] | many concurrent callers' writes in one transaction, each answered after its commit |
//! | [`outbox`] | writing events in the caller's transaction, and the relay that publishes them to RabbitMQ |
//! | [`broker`] | the RabbitMQ connection and topology (topic exchange, retry and dead-letter queues) |
//! | [`consumer`] | idempotent consumers: inbox, retries with backoff, dead-letter; per-replica listeners |
//! | [`cache`] | Redis helpers with tenant-first keys; never the system of record |
//! | [`pagination`] | Relay cursor connections |
//! | [`periodic`] | periodic workers (upkeep, retention, rollups, exports): a pass at start and every interval |
//! | [`server`] | the axum app: `/graphql` and its guards and limits, health, metrics, graceful shutdown |
//! | [`config`], [`telemetry`], [`metrics`] | clap/env config, tracing, Prometheus |

pub mod access;
pub mod api_token;
pub mod auth;
pub mod blob;
pub mod broker;
pub mod cache;
pub mod config;
pub mod consumer;
pub mod context;
pub mod contracts;
pub mod db;
pub mod envelope;
pub mod error;
pub mod graph;
pub mod group_commit;
pub mod ids;
pub mod leases;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod periodic;
pub mod permissions;
pub mod secrets;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod timers;
pub mod work;

pub use access::{Authorize, Authorized};
pub use context::RequestContext;
pub use error::{Code, Error, Result};
pub use ids::{PrincipalId, PrincipalRef, TenantId};

#[doc(hidden)]
pub mod __private {
    pub use async_graphql;
    pub use uuid;
}
pub use service::{Kernel, Subgraph};
pub use work::Work;
