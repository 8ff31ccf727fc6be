//! The lineage graph: what came from what, across domains — workflow tasks, artifact versions, catalogue
//! blueprints and deployments, and OpenLineage jobs, runs and datasets.
//!
//! A node is named `<kind>:<key>` ([`NodeRef`]); an edge from → to says `to` came from `from`, with its
//! [`EdgeKind`] and when it was recorded. Edges are recorded idempotently ([`record`]: a reported edge
//! again changes nothing and publishes nothing), each new one with `LineageEdgeRecorded`, from:
//!
//! | source | edges |
//! |---|---|
//! | a recorded artifact version (`recordArtifactVersion`, workflow's `AgentTaskCompleted` outputs) | task → version (PRODUCED), blueprint → version (BLUEPRINT), each `derivedFrom` input version → version (DERIVED) |
//! | catalogue's `EnvironmentChanged` ([`consumer`]) | each artifact version its config names under `artifacts` → the deployment (DEPLOYED) |
//! | OpenLineage events (`crate::openlineage`) | job → run (RUN), input dataset → run (INPUT), run → output dataset (OUTPUT) |
//!
//! Traversals ([`traverse`]) go upstream or downstream from any node, breadth-first on the kernel's engine
//! (`kernel::graph`: one statement per layer, each node once, with its depth and a shortest path; cycles
//! end), to a depth of 20 by default (as Marquez) and at most [`MAX_DEPTH`], at most [`MAX_NODES`] nodes a
//! direction.

pub mod consumer;
pub mod schema;
pub mod store;

use kernel::graph::{Bounds, Reach};
use kernel::{Error, Result, TenantId, Work};

use crate::events::LineageEdgeRecorded;
use crate::ids::{ArtifactId, ProjectId};

/// The deepest a traversal goes.
pub const MAX_DEPTH: u32 = 100;
/// The default depth (Marquez's).
pub const DEFAULT_DEPTH: u32 = 20;
/// Most nodes a traversal returns in each direction.
pub const MAX_NODES: usize = 10_000;
/// The longest node id.
pub const MAX_NODE_ID: usize = 1_100;

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[graphql(name = "LineageNodeKind")]
    pub enum NodeKind {
        /// A workflow agent task (`task:<uuid>`).
        Task = "task",
        /// An artifact version (`artifact:<artifactId>@<version>`).
        Artifact = "artifact",
        /// A catalogue blueprint (`blueprint:<uuid>`).
        Blueprint = "blueprint",
        /// An environment's configuration version (`deployment:<projectId>/<environment>@<version>`).
        Deployment = "deployment",
        /// An OpenLineage job (`job:<namespace>/<name>`, `%` and `/` in the name as `%25` and `%2F`).
        Job = "job",
        /// An OpenLineage run (`run:<runId>`).
        Run = "run",
        /// An OpenLineage dataset (`dataset:<namespace>/<name>`, the name escaped as a job's).
        Dataset = "dataset",
    }
}

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    #[graphql(name = "LineageEdgeKind")]
    pub enum EdgeKind {
        /// task → the artifact version it produced.
        Produced = "PRODUCED",
        /// blueprint → an artifact version generated from it.
        Blueprint = "BLUEPRINT",
        /// input version → a version derived from it.
        Derived = "DERIVED",
        /// artifact version → a deployment whose configuration names it.
        Deployed = "DEPLOYED",
        /// job → one of its runs.
        Run = "RUN",
        /// dataset → a run (or job) that read it.
        Input = "INPUT",
        /// run (or job) → a dataset it wrote.
        Output = "OUTPUT",
    }
}

/// A node, by id, with its kind and a label for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRef {
    pub id: String,
    pub kind: NodeKind,
    pub label: Option<String>,
}

impl NodeRef {
    fn new(kind: NodeKind, key: String, label: Option<String>) -> Self {
        Self { id: format!("{}:{key}", kind.as_str()), kind, label }
    }

    pub fn task(task: uuid::Uuid) -> Self {
        Self::new(NodeKind::Task, task.to_string(), None)
    }

    pub fn artifact(id: &ArtifactId, version: &str) -> Self {
        Self::new(NodeKind::Artifact, format!("{id}@{version}"), Some(id.to_string()))
    }

    pub fn blueprint(blueprint: uuid::Uuid) -> Self {
        Self::new(NodeKind::Blueprint, blueprint.to_string(), None)
    }

    pub fn deployment(project: ProjectId, environment: &str, version: i32) -> Self {
        Self::new(NodeKind::Deployment, format!("{project}/{environment}@{version}"), Some(environment.to_owned()))
    }

    pub fn job(namespace: &str, name: &str) -> Self {
        Self::new(NodeKind::Job, format!("{namespace}/{}", escape(name)), Some(name.to_owned()))
    }

    pub fn run(run: uuid::Uuid, job_name: &str) -> Self {
        Self::new(NodeKind::Run, run.to_string(), Some(job_name.to_owned()))
    }

    pub fn dataset(namespace: &str, name: &str) -> Self {
        Self::new(NodeKind::Dataset, format!("{namespace}/{}", escape(name)), Some(name.to_owned()))
    }
}

/// A job's or dataset's name in its node id: `%` and `/` escaped, so the last `/` of the id always
/// separates the namespace (which may hold `/`: `s3://lake`) from the name (`a/b` is `a%2Fb`).
fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// A node id as given: `<kind>:<key>`, at most [`MAX_NODE_ID`] characters; its kind.
pub fn node_id(field: &str, raw: &str) -> Result<NodeKind> {
    let kind = raw.split_once(':').filter(|(_, key)| !key.is_empty()).and_then(|(kind, _)| NodeKind::parse(kind));
    match kind {
        Some(kind) if raw.len() <= MAX_NODE_ID && !raw.contains('\0') => Ok(kind),
        _ => Err(Error::bad_input(
            field,
            format!(
                "`{}` is no lineage node: `<kind>:<key>` with kind task, artifact, blueprint, deployment, job, run or dataset",
                kernel::error::clip(raw, 80)
            ),
        )),
    }
}

/// An edge to record.
#[derive(Clone, Debug)]
pub struct NewEdge {
    pub from: NodeRef,
    pub to: NodeRef,
    pub kind: EdgeKind,
}

/// Records `edges` and their nodes; those already recorded change nothing. Publishes
/// `LineageEdgeRecorded` for each new one. How many were new.
pub async fn record(work: &mut Work, tenant: &TenantId, edges: &[NewEdge]) -> Result<usize> {
    if edges.is_empty() {
        return Ok(0);
    }
    let mut nodes: Vec<&NodeRef> = edges.iter().flat_map(|e| [&e.from, &e.to]).collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes.dedup_by(|a, b| a.id == b.id);
    store::upsert_nodes(work, tenant, &nodes).await?;
    let new: Vec<LineageEdgeRecorded> = store::insert_edges(work, tenant, edges)
        .await?
        .into_iter()
        .map(|(from, to, kind)| LineageEdgeRecorded { from, to, kind })
        .collect();
    // One outbox statement for them all (as OpenLineage's batches do).
    let meta = work.meta().clone();
    kernel::outbox::enqueue_batch(work, new.iter().map(|e| (tenant, &meta, e))).await?;
    Ok(new.len())
}

/// Which way a traversal goes.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "LineageDirection")]
pub enum Direction {
    /// Towards what a node came from.
    Upstream,
    /// Towards what came from it.
    Downstream,
}

/// Everything `start` reaches in `dir` within `depth` edges, at most [`MAX_NODES`].
pub async fn traverse(
    tx: &mut kernel::db::Tx,
    tenant: &TenantId,
    start: &str,
    dir: Direction,
    depth: u32,
) -> Result<Reach<String>> {
    let mut source = store::Layer { tx, tenant, dir };
    kernel::graph::breadth_first(&mut source, start.to_owned(), &Bounds::new(depth, MAX_NODES)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_name_their_kind() {
        assert_eq!(node_id("n", "dataset:postgres://db:5432/public.orders").unwrap(), NodeKind::Dataset);
        assert_eq!(node_id("n", "artifact:report@1.0.0").unwrap(), NodeKind::Artifact);
        for bad in ["dataset:", "nothing:x", "x", ":x", &format!("job:{}", "a".repeat(1200))] {
            assert!(node_id("n", bad).is_err(), "{bad}");
        }
        // Namespaces hold `/`; names escape theirs, so two datasets never share an id.
        assert_ne!(NodeRef::dataset("a/b", "c").id, NodeRef::dataset("a", "b/c").id);
        assert_eq!(NodeRef::dataset("s3://lake", "raw/2026/orders").id, "dataset:s3://lake/raw%2F2026%2Forders");
        let a = NodeRef::artifact(&ArtifactId::parse("a", "report").unwrap(), "1.0.0");
        assert_eq!((a.id.as_str(), a.kind), ("artifact:report@1.0.0", NodeKind::Artifact));
    }
}
