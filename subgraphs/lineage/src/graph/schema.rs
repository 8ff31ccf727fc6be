//! The graph's share of the query root: `lineage(nodeId, depth, direction, kinds)`, Marquez's lineage
//! query for the whole control plane.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::permissions::lineage::READ;
use kernel::{Authorize, Error, Result};

use super::store::{self, NodeRow};
use super::{Direction, EdgeKind, NodeKind, DEFAULT_DEPTH, MAX_DEPTH};
use crate::artifacts::ArtifactVersion;
use crate::ids::ArtifactId;
use crate::state;

/// Most edges a `lineage` answer lists.
const MAX_EDGES: i64 = 50_000;

#[derive(Default)]
pub struct GraphQuery;

#[Object]
impl GraphQuery {
    /// The lineage around a node (`task:…`, `artifact:<id>@<version>`, `blueprint:…`,
    /// `deployment:<project>/<environment>@<version>`, `job:<namespace>/<name>`, `run:<runId>`,
    /// `dataset:<namespace>/<name>`): what it came from (`UPSTREAM`), what came from it (`DOWNSTREAM`), or
    /// both (the default), up to `depth` edges away (default 20, at most 100), nearest first, each node with
    /// a shortest path from this one; at most 10,000 nodes a direction (`truncated` says when more lay
    /// within the depth). `kinds` keeps only nodes of those kinds in `nodes` (the traversal still passes
    /// through the others): "what was produced from this blueprint" is `DOWNSTREAM` with `[ARTIFACT]`,
    /// "what reached prod from this task" `DOWNSTREAM` with `[DEPLOYMENT]` and `environment` on each.
    #[graphql(complexity = "100 + 10 * child_complexity")]
    async fn lineage(
        &self,
        ctx: &Context<'_>,
        node_id: ID,
        depth: Option<i32>,
        direction: Option<Direction>,
        kinds: Option<Vec<NodeKind>>,
    ) -> Result<LineageGraph> {
        let tenant = ctx.authorize(READ)?;
        super::node_id("nodeId", node_id.as_str())?;
        let depth = depth.unwrap_or(DEFAULT_DEPTH as i32);
        if !(1..=MAX_DEPTH as i32).contains(&depth) {
            return Err(Error::bad_input("depth", format!("depth is 1 to {MAX_DEPTH}")));
        }
        let dirs: &[Direction] = match direction {
            Some(Direction::Upstream) => &[Direction::Upstream],
            Some(Direction::Downstream) => &[Direction::Downstream],
            None => &[Direction::Upstream, Direction::Downstream],
        };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let mut hops = Vec::new();
        let mut truncated = false;
        for dir in dirs {
            let reach = super::traverse(&mut tx, tenant.tenant(), node_id.as_str(), *dir, depth as u32).await?;
            truncated |= reach.truncated;
            let parents = Arc::new(reach.parents());
            for h in reach.hops {
                let kind = NodeKind::parse(h.node.split(':').next().unwrap_or_default()).unwrap_or(NodeKind::Run);
                if kinds.as_ref().is_some_and(|k| !k.contains(&kind)) {
                    continue;
                }
                hops.push(LineageHop {
                    id: h.node,
                    kind,
                    depth: h.depth as i32,
                    direction: *dir,
                    start: node_id.to_string(),
                    parents: parents.clone(),
                });
            }
        }
        tx.commit().await?;
        kernel::server::charge_within(ctx, &["nodes"], hops.len())?;
        Ok(LineageGraph { root: node_id.to_string(), hops, truncated })
    }

    /// One node of the tenant's lineage graph, with what OpenLineage said of it (`facets`).
    async fn lineage_node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<LineageNode>> {
        ctx.authorize(READ)?;
        super::node_id("id", id.as_str())?;
        Ok(crate::loaders::loader(ctx)?.load_one(crate::loaders::NodeAt(id.to_string())).await?.map(LineageNode))
    }
}

/// What a `lineage` query reached.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LineageGraph {
    /// The node asked about.
    pub root: String,
    #[graphql(skip)]
    pub hops: Vec<LineageHop>,
    /// More nodes lay within the depth than a direction returns (10,000).
    pub truncated: bool,
}

#[ComplexObject]
impl LineageGraph {
    /// The nodes reached, upstream then downstream, each nearest first.
    async fn nodes(&self) -> &[LineageHop] {
        &self.hops
    }

    /// The edges among the root and the nodes reached (at most 50,000).
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<LineageEdge>> {
        let tenant = ctx.authorize(READ)?;
        let mut ids: Vec<String> = self.hops.iter().map(|h| h.id.clone()).collect();
        ids.push(self.root.clone());
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::edges_among(&mut tx, tenant.tenant(), &ids, MAX_EDGES).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, rows.len())?;
        Ok(rows
            .into_iter()
            .map(|r| LineageEdge { from: ID(r.from_node), to: ID(r.to_node), kind: r.kind, recorded_at: r.recorded_at })
            .collect())
    }
}

/// A node a traversal reached.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LineageHop {
    /// The node's id.
    pub id: String,
    pub kind: NodeKind,
    /// Edges from the root.
    pub depth: i32,
    /// Which way it lies from the root.
    pub direction: Direction,
    #[graphql(skip)]
    pub start: String,
    #[graphql(skip)]
    pub parents: Arc<HashMap<String, String>>,
}

#[ComplexObject]
impl LineageHop {
    /// Node ids from the root to this node (both included), along a shortest path.
    async fn path(&self) -> Vec<String> {
        kernel::graph::walk_back(&self.parents, &self.start, &self.id)
    }

    /// The node: its label and facets.
    async fn node(&self, ctx: &Context<'_>) -> Result<Option<LineageNode>> {
        Ok(crate::loaders::loader(ctx)?.load_one(crate::loaders::NodeAt(self.id.clone())).await?.map(LineageNode))
    }
}

/// An edge: `to` came from `from`.
#[derive(SimpleObject)]
pub struct LineageEdge {
    pub from: ID,
    pub to: ID,
    pub kind: EdgeKind,
    pub recorded_at: DateTime<Utc>,
}

/// A node of the lineage graph.
pub struct LineageNode(pub NodeRow);

#[Object]
impl LineageNode {
    async fn id(&self) -> ID {
        ID(self.0.node_id.clone())
    }
    async fn kind(&self) -> NodeKind {
        self.0.kind
    }
    /// For people: an artifact's id, a job's or dataset's name, an environment.
    async fn label(&self) -> Option<&str> {
        self.0.label.as_deref()
    }
    /// What OpenLineage said of it last, by facet name (a dataset's `schema` and `columnLineage`, a run's
    /// `state`, `eventTime` and run facets).
    async fn facets(&self) -> Json<serde_json::Value> {
        Json(self.0.facets.clone())
    }
    /// A deployment's environment.
    async fn environment(&self) -> Option<&str> {
        (self.0.kind == NodeKind::Deployment).then_some(self.0.label.as_deref()).flatten()
    }
    /// An artifact node's version (its sensitive fields redacted as everywhere).
    async fn artifact_version(&self, ctx: &Context<'_>) -> Result<Option<ArtifactVersion>> {
        let tenant = ctx.authorize(READ)?;
        let Some((id, version)) = (self.0.kind == NodeKind::Artifact)
            .then(|| self.0.node_id.strip_prefix("artifact:")?.rsplit_once('@'))
            .flatten()
        else {
            return Ok(None);
        };
        let Ok(id) = ArtifactId::parse("id", id) else { return Ok(None) };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let v = crate::artifacts::store::version(&mut tx, tenant.tenant(), &id, version).await?;
        tx.commit().await?;
        Ok(v)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
