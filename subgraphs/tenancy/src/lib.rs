//! Tenancy subgraph: tenants, editions, subscriptions, feature flags and quotas.
//!
//! Each area is a folder: `mod.rs` its rules (functions taking `&mut Work`), `schema.rs` its share of the
//! roots (resolvers only), `store.rs` its SQL.
//!
//! | area | owns |
//! |---|---|
//! | `tenants/` | provisioning, the lifecycle (suspend, retire, legal hold), the `Tenant` entity, live events |
//! | `editions/` | editions (quota templates, feature sets) and tenants' subscriptions to them |
//! | `flags/` | feature-flag definitions and their evaluation (in process, cached in Redis) |
//! | `quotas/` | quota check-and-increment (Redis in front of PostgreSQL) |
//! | `schema.rs`, `model.rs`, `domain.rs` | merged roots, GraphQL types, lifecycle states and input rules |
//! | `loaders.rs`, `events.rs`, `consumers.rs` | DataLoaders, event payloads, the command and cache consumers |
//!
//! Everything else (serving, configuration, the relay, consumers' plumbing) is the kernel's: this file only
//! declares what is tenancy's own, through [`kernel::Subgraph`].

pub mod consumers;
pub mod domain;
pub mod editions;
pub mod events;
pub mod flags;
pub mod loaders;
pub mod model;
pub mod quotas;
pub mod schema;
pub mod tenants;

use std::sync::Arc;

use async_graphql::{Data, Schema, SchemaBuilder};
use kernel::consumer::RetryPolicy;
use kernel::context::RequestContext;
use kernel::service::{Connections, Consumer, Listener, NoCommand, NoConfig};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

use crate::flags::FlagCache;
use crate::loaders::TenancyLoader;
use crate::quotas::QuotaGate;
use crate::schema::{MutationRoot, QueryRoot, SubscriptionRoot};

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/tenancy");

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
    pub flags: FlagCache,
    pub quota: QuotaGate,
    /// Every tenancy event this replica hears from RabbitMQ, fanned out to live subscriptions.
    pub events: tokio::sync::broadcast::Sender<Arc<kernel::envelope::Envelope>>,
}

impl Subgraph for State {
    const NAME: &'static str = "tenancy";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = SubscriptionRoot;
    type Config = NoConfig;
    type Command = NoCommand;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
            .enable_federation()
            .enable_subscription_in_federation()
    }

    async fn build(conns: Connections, _: &NoConfig) -> anyhow::Result<Self> {
        let kernel = conns.kernel().await?;
        Ok(Self {
            flags: FlagCache::new(kernel.cache.clone()),
            quota: QuotaGate::default(),
            events: tokio::sync::broadcast::channel(1024).0,
            kernel,
        })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn per_request(&self, data: &mut Data, ctx: &RequestContext) {
        if let Ok(access) = kernel::Authorize::token_access(ctx) {
            data.insert(TenancyLoader::per_request(self.kernel.db.clone(), access));
        }
    }

    fn consumers(_: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![Consumer {
            spec: consumers::command_spec(retry.clone()),
            handler: Arc::new(consumers::ProvisionTenantHandler),
        }]
    }

    fn listeners(state: &Arc<Self>) -> Vec<Listener> {
        vec![Listener {
            bindings: consumers::listener_bindings(),
            on_notice: Arc::new(consumers::on_notice(state.clone())),
        }]
    }
}
