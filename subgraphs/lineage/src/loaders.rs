//! The per-request DataLoader: a field asked of many objects (each agent task's output artifacts, when the
//! router resolves a list of tasks) batches into one query per request and key type. Built for one request
//! and the caller's tenant, so its cache is never shared between requests or tenants.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Context;
use kernel::db::Db;
use kernel::error::LoadError;
use kernel::{Error, Result, TenantId};

use crate::artifacts::{store, Artifact, ArtifactVersion};
use crate::bodies::BodyRow;
use crate::ids::ArtifactId;

pub struct LineageLoader {
    pub db: Db,
    pub tenant: TenantId,
}

impl LineageLoader {
    pub fn per_request(db: Db, tenant: TenantId) -> DataLoader<Self> {
        // Batches run in the span of the request that triggered them, so their SQL is logged under its trace.
        DataLoader::new(Self { db, tenant }, |batch| tokio::spawn(tracing::Instrument::in_current_span(batch)))
    }
}

/// The request's loader; absent when the caller has no tenant.
pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a DataLoader<LineageLoader>> {
    ctx.data_opt::<DataLoader<LineageLoader>>().ok_or_else(|| Error::forbidden("this operation needs a tenant's token"))
}

/// The versions a workflow agent task produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputsOf(pub uuid::Uuid);

impl Loader<OutputsOf> for LineageLoader {
    type Value = Vec<ArtifactVersion>;
    type Error = LoadError;

    async fn load(&self, keys: &[OutputsOf]) -> Result<HashMap<OutputsOf, Vec<ArtifactVersion>>, LoadError> {
        let tasks: Vec<uuid::Uuid> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.db.tenant_tx(&self.tenant).await?;
        let rows = store::of_tasks(&mut tx, &self.tenant, &tasks).await?;
        tx.commit().await?;
        let mut out: HashMap<OutputsOf, Vec<ArtifactVersion>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for v in rows {
            if let Some(task) = v.produced_by_task_id {
                out.entry(OutputsOf(task)).or_default().push(v);
            }
        }
        Ok(out)
    }
}

/// An artifact of the tenant (its classification decides what a version shows).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactOf(pub ArtifactId);

impl Loader<ArtifactOf> for LineageLoader {
    type Value = Artifact;
    type Error = LoadError;

    async fn load(&self, keys: &[ArtifactOf]) -> Result<HashMap<ArtifactOf, Artifact>, LoadError> {
        let ids: Vec<ArtifactId> = keys.iter().map(|k| k.0.clone()).collect();
        let mut tx = self.db.tenant_tx(&self.tenant).await?;
        let rows = store::get_many(&mut tx, &self.tenant, &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|a| (ArtifactOf(a.artifact_id.clone()), a)).collect())
    }
}

/// The body row at a storage reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BodyAt(pub String);

impl Loader<BodyAt> for LineageLoader {
    type Value = BodyRow;
    type Error = LoadError;

    async fn load(&self, keys: &[BodyAt]) -> Result<HashMap<BodyAt, BodyRow>, LoadError> {
        let refs: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut tx = self.db.tenant_tx(&self.tenant).await?;
        let rows = crate::bodies::store::of_refs(&mut tx, &self.tenant, &refs).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|b| (BodyAt(b.storage_ref.clone()), b)).collect())
    }
}

/// A node of the lineage graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAt(pub String);

impl Loader<NodeAt> for LineageLoader {
    type Value = crate::graph::store::NodeRow;
    type Error = LoadError;

    async fn load(&self, keys: &[NodeAt]) -> Result<HashMap<NodeAt, crate::graph::store::NodeRow>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let mut tx = self.db.tenant_tx(&self.tenant).await?;
        let rows = crate::graph::store::nodes(&mut tx, &self.tenant, &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|n| (NodeAt(n.node_id.clone()), n)).collect())
    }
}
