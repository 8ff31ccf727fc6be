//! Lineage subgraph: artifacts and their versions — what agents and builds produce, where each body is
//! stored, and where each version stands.
//!
//! | folder | owns |
//! |---|---|
//! | `artifacts/` | artifacts, their versions (semver, content hash, status chain, publication), their storage references; agent tasks' outputs from workflow (`consumer.rs`) |
//!
//! beside `events.rs` (everything published), `ids.rs` and `loaders.rs` (the per-request DataLoader).

pub mod artifacts;
pub mod events;
pub mod ids;
pub mod loaders;

use std::sync::Arc;

use async_graphql::{Data, EmptySubscription, MergedObject, Schema, SchemaBuilder};
use kernel::consumer::RetryPolicy;
use kernel::context::RequestContext;
use kernel::db::Access;
use kernel::service::{Connections, Consumer, NoCommand, NoConfig};
use kernel::{Kernel, Subgraph};
use sqlx::migrate::Migrator;

/// This subgraph's state, in a resolver.
pub fn state<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a State {
    kernel::context::state(ctx)
}

pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/lineage");

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(artifacts::schema::ArtifactQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(artifacts::schema::ArtifactMutation);

/// Everything a resolver can reach.
pub struct State {
    pub kernel: Kernel,
}

impl Subgraph for State {
    const NAME: &'static str = "lineage";
    type Query = QueryRoot;
    type Mutation = MutationRoot;
    type Subscription = EmptySubscription;
    type Config = NoConfig;
    type Command = NoCommand;

    fn migrations() -> &'static Migrator {
        &MIGRATIONS
    }

    fn schema() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
        Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).enable_federation()
    }

    async fn build(conns: Connections, _: &NoConfig) -> anyhow::Result<Self> {
        Ok(Self { kernel: conns.kernel().await? })
    }

    fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    fn per_request(&self, data: &mut Data, ctx: &RequestContext) {
        if let Ok(Access::Tenant(tenant)) = kernel::Authorize::token_access(ctx) {
            data.insert(loaders::LineageLoader::per_request(self.kernel.db.clone(), tenant));
        }
    }

    fn consumers(_: &Arc<Self>, retry: &RetryPolicy) -> Vec<Consumer> {
        vec![Consumer {
            spec: artifacts::consumer::spec(retry.clone()),
            handler: Arc::new(artifacts::consumer::AgentOutputs),
        }]
    }
}
