//! The dependency graph's SQL.

use std::collections::HashMap;

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::graph::{Bounds, EdgeSource};
use kernel::{Error, Result, TenantId};

use super::{Direction, Edge};
use crate::ids::{ModuleId, ProjectId};

/// Serializes changes to one tenant's graph until the transaction ends.
pub async fn lock_graph(tx: &mut Tx, tenant: &TenantId) -> Result<GraphLock> {
    kernel::db::lock(tx, &format!("catalogue.graph:{tenant}"), kernel::db::Lock::Exclusive).await?;
    Ok(GraphLock(()))
}

/// What [`lock_graph`] returns: functions that change the order ask for it, so none is called without the
/// lock (which lasts until the transaction that took it ends).
#[derive(Debug)]
pub struct GraphLock(());

/// The build ranks of `ids` (see `super` for what they are).
pub async fn ranks(tx: &mut Tx, tenant: &TenantId, ids: &[ModuleId]) -> Result<HashMap<ModuleId, i64>> {
    let rows = sqlx::query!(
        "SELECT module_id, build_rank FROM module_ranks WHERE tenant_id = $1 AND module_id = ANY($2)",
        tenant.as_str(),
        ids as &[ModuleId],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.module_id.into(), r.build_rank)).collect())
}

pub async fn names(tx: &mut Tx, tenant: &TenantId, ids: &[ModuleId]) -> Result<HashMap<ModuleId, String>> {
    let rows = sqlx::query!(
        "SELECT module_id, name FROM modules WHERE tenant_id = $1 AND module_id = ANY($2)",
        tenant.as_str(),
        ids as &[ModuleId],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.module_id.into(), r.name)).collect())
}

/// What the search for a new edge's cycle found: each module with its rank, in the order reached, the
/// parent it was first reached from, and whether the search stopped at its target.
#[derive(Debug, Default)]
pub struct Region {
    pub modules: Vec<(ModuleId, i64)>,
    pub parent: HashMap<ModuleId, ModuleId>,
    pub reached_target: bool,
}

/// Everything that depends on `start` (of rank `from_rank`, included), directly or not, through modules
/// ranked within `lo..=hi`; stops as soon as `target` is reached (`reached_target`, and its parents lead back
/// to `start` along a shortest path). Breadth-first, one statement per layer, each module visited once and
/// the search over as soon as the target is met; the recursive variant measured instead read its whole
/// window first (refused cycles up to 291 ms, BENCHMARKS.md).
pub async fn dependents_until(
    tx: &mut Tx,
    tenant: &TenantId,
    (start, from_rank): (ModuleId, i64),
    (lo, hi): (i64, i64),
    target: ModuleId,
) -> Result<Region> {
    let mut source = Window { tx, tenant, lo, hi, ranks: HashMap::new() };
    let bounds = Bounds { target: Some(target), ..Bounds::new(u32::MAX, usize::MAX) };
    let reach = kernel::graph::breadth_first(&mut source, start, &bounds).await?;
    let mut modules = vec![(start, from_rank)];
    modules.extend(reach.hops.iter().map(|h| (h.node, source.ranks[&h.node])));
    Ok(Region { modules, parent: reach.parents(), reached_target: reach.reached_target })
}

/// The dependents of a layer ranked within `lo..=hi`, their ranks kept as they are read.
struct Window<'a> {
    tx: &'a mut Tx,
    tenant: &'a TenantId,
    lo: i64,
    hi: i64,
    ranks: HashMap<ModuleId, i64>,
}

impl EdgeSource for Window<'_> {
    type Node = ModuleId;

    async fn layer(&mut self, frontier: &[ModuleId]) -> Result<Vec<(ModuleId, ModuleId)>> {
        let rows = sqlx::query!(
            r#"SELECT d.from_module AS "node!", d.to_module AS "parent!", r.build_rank AS "rank!"
               FROM dependencies d
               JOIN module_ranks r ON r.tenant_id = d.tenant_id AND r.module_id = d.from_module
               WHERE d.tenant_id = $1 AND d.to_module = ANY($2) AND r.build_rank BETWEEN $3 AND $4"#,
            self.tenant.as_str(),
            frontier as &[ModuleId],
            self.lo,
            self.hi,
        )
        .fetch_all(&mut **self.tx)
        .await?;
        self.ranks.extend(rows.iter().map(|r| (ModuleId::from(r.node), r.rank)));
        Ok(rows.into_iter().map(|r| (r.node.into(), r.parent.into())).collect())
    }
}

/// What `start` (of rank `from_rank`, included) depends on, directly or not, through modules ranked within
/// `lo..=hi`, each with its rank: one recursive statement, whose `UNION` drops every row an earlier step
/// produced, so each module is expanded once. (A search that may stop early at a target is
/// [`dependents_until`].)
pub async fn dependencies_within(
    tx: &mut Tx,
    tenant: &TenantId,
    (start, from_rank): (ModuleId, i64),
    (lo, hi): (i64, i64),
) -> Result<Vec<(ModuleId, i64)>> {
    let rows = sqlx::query!(
        r#"WITH RECURSIVE reach(node, rank) AS (
               SELECT $2::uuid, $3::int8
             UNION
               SELECT d.to_module, r.build_rank
               FROM reach JOIN dependencies d ON d.tenant_id = $1 AND d.from_module = reach.node
               JOIN module_ranks r ON r.tenant_id = d.tenant_id AND r.module_id = d.to_module
               WHERE r.build_rank BETWEEN $4 AND $5)
           SELECT node AS "node!", rank AS "rank!" FROM reach"#,
        tenant.as_str(),
        start as ModuleId,
        from_rank,
        lo,
        hi,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.node.into(), r.rank)).collect())
}

/// Gives modules new ranks, in one statement (HOT updates: no index holds the rank). Ranks stay unique only
/// if the caller permutes ranks its modules held, as `graph::place` does and checks.
pub async fn set_ranks(tx: &mut Tx, tenant: &TenantId, ranks: &[(ModuleId, i64)]) -> Result<()> {
    let (ids, values): (Vec<ModuleId>, Vec<i64>) = ranks.iter().copied().unzip();
    sqlx::query!(
        "UPDATE module_ranks r SET build_rank = u.rank FROM unnest($2::uuid[], $3::int8[]) AS u(id, rank)
         WHERE r.tenant_id = $1 AND r.module_id = u.id",
        tenant.as_str(),
        &ids as &[ModuleId],
        &values,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_edge(
    tx: &mut Tx,
    tenant: &TenantId,
    from: ModuleId,
    to: ModuleId,
    constraint: &str,
) -> Result<Edge> {
    let r = sqlx::query!(
        r#"INSERT INTO dependencies (tenant_id, from_module, to_module, version_constraint) VALUES ($1, $2, $3, $4)
           RETURNING from_module, to_module, version_constraint"#,
        tenant.as_str(),
        from as ModuleId,
        to as ModuleId,
        constraint,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("dependencies_pkey", || Error::conflict("this dependency exists already"))?;
    Ok(Edge { from: r.from_module.into(), to: r.to_module.into(), version_constraint: r.version_constraint })
}

pub async fn delete_edge(tx: &mut Tx, tenant: &TenantId, from: ModuleId, to: ModuleId) -> Result<bool> {
    let n = sqlx::query!(
        "DELETE FROM dependencies WHERE tenant_id = $1 AND from_module = $2 AND to_module = $3",
        tenant.as_str(),
        from as ModuleId,
        to as ModuleId,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The direct edges of `modules` in one direction, with the version of the module at the other end.
pub async fn direct(tx: &mut Tx, tenant: &TenantId, modules: &[ModuleId], dir: Direction) -> Result<Vec<DirectEdge>> {
    let rows = match dir {
        Direction::Dependencies => {
            sqlx::query_as!(
                DirectEdge,
                r#"SELECT d.from_module AS "of!", d.to_module AS "other!", d.to_module AS "to!",
                      d.version_constraint AS "version_constraint!", m.version AS "other_version!"
               FROM dependencies d JOIN modules m ON m.tenant_id = d.tenant_id AND m.module_id = d.to_module
               WHERE d.tenant_id = $1 AND d.from_module = ANY($2)
               ORDER BY d.from_module, m.name, m.module_id"#,
                tenant.as_str(),
                modules as &[ModuleId],
            )
            .fetch_all(&mut **tx)
            .await?
        }
        Direction::Dependents => {
            sqlx::query_as!(
                DirectEdge,
                r#"SELECT d.to_module AS "of!", d.from_module AS "other!", d.to_module AS "to!",
                      d.version_constraint AS "version_constraint!", m.version AS "other_version!"
               FROM dependencies d JOIN modules m ON m.tenant_id = d.tenant_id AND m.module_id = d.from_module
               WHERE d.tenant_id = $1 AND d.to_module = ANY($2)
               ORDER BY d.to_module, m.name, m.module_id"#,
                tenant.as_str(),
                modules as &[ModuleId],
            )
            .fetch_all(&mut **tx)
            .await?
        }
    };
    Ok(rows)
}

/// An edge seen from one of its ends (`of`).
#[derive(Clone, Debug)]
pub struct DirectEdge {
    pub of: ModuleId,
    pub other: ModuleId,
    pub to: ModuleId,
    pub version_constraint: String,
    pub other_version: String,
}

/// Everything `start` reaches within `max_depth` edges in one direction, as (module, parent, depth) along a
/// shortest path, nearest first, at most `limit` modules. Breadth-first, one statement per layer: each
/// module is visited once, so the work is the edges of what is reached, however many paths lead there (a
/// single recursive statement has to carry every (module, parent, depth) it meets, many times more rows in
/// a dense graph — see BENCHMARKS.md).
pub async fn transitive(
    tx: &mut Tx,
    tenant: &TenantId,
    start: ModuleId,
    dir: Direction,
    max_depth: i32,
    limit: i64,
) -> Result<Vec<(ModuleId, ModuleId, i32)>> {
    let bounds = Bounds::new(u32::try_from(max_depth).unwrap_or(0), usize::try_from(limit).unwrap_or(usize::MAX));
    let reach = kernel::graph::breadth_first(&mut Edges { tx, tenant, dir }, start, &bounds).await?;
    Ok(reach.hops.into_iter().map(|h| (h.node, h.parent, h.depth as i32)).collect())
}

/// The tenant's dependency edges in one direction, a layer at a time.
struct Edges<'a> {
    tx: &'a mut Tx,
    tenant: &'a TenantId,
    dir: Direction,
}

impl EdgeSource for Edges<'_> {
    type Node = ModuleId;

    async fn layer(&mut self, frontier: &[ModuleId]) -> Result<Vec<(ModuleId, ModuleId)>> {
        let rows = match self.dir {
            Direction::Dependencies => sqlx::query!(
                r#"SELECT to_module AS "node!", from_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND from_module = ANY($2)"#,
                self.tenant.as_str(),
                frontier as &[ModuleId],
            )
            .fetch_all(&mut **self.tx)
            .await?
            .into_iter()
            .map(|r| (r.node.into(), r.parent.into()))
            .collect(),
            Direction::Dependents => sqlx::query!(
                r#"SELECT from_module AS "node!", to_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND to_module = ANY($2)"#,
                self.tenant.as_str(),
                frontier as &[ModuleId],
            )
            .fetch_all(&mut **self.tx)
            .await?
            .into_iter()
            .map(|r| (r.node.into(), r.parent.into()))
            .collect(),
        };
        Ok(rows)
    }
}

/// A project's modules in the tenant's topological order (one read of the rows), and the edges between them.
pub async fn build_order(
    tx: &mut Tx,
    tenant: &TenantId,
    project: ProjectId,
) -> Result<(Vec<crate::modules::Module>, Vec<(ModuleId, ModuleId)>)> {
    let modules = sqlx::query_as!(
        crate::modules::Module,
        r#"SELECT m.tenant_id AS "tenant_id: TenantId", m.module_id, m.project_id, m.name, m.version, m.kind,
                  m.owner, m.tags, m.metadata, m.created_at, m.updated_at
           FROM modules m JOIN module_ranks r ON r.tenant_id = m.tenant_id AND r.module_id = m.module_id
           WHERE m.tenant_id = $1 AND m.project_id = $2 ORDER BY r.build_rank"#,
        tenant.as_str(),
        project as ProjectId,
    )
    .fetch_all(&mut **tx)
    .await?;
    let edges = sqlx::query!(
        r#"SELECT d.from_module, d.to_module
           FROM dependencies d
           JOIN modules f ON f.tenant_id = d.tenant_id AND f.module_id = d.from_module
           JOIN modules t ON t.tenant_id = d.tenant_id AND t.module_id = d.to_module
           WHERE d.tenant_id = $1 AND f.project_id = $2 AND t.project_id = $2"#,
        tenant.as_str(),
        project as ProjectId,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok((modules, edges.into_iter().map(|r| (r.from_module.into(), r.to_module.into())).collect()))
}
