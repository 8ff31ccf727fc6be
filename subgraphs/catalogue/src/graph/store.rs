//! The dependency graph's SQL.

use std::collections::HashMap;

use kernel::db::Tx;
use kernel::error::OnConstraint;
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
    let mut region = Region { modules: vec![(start, from_rank)], ..Region::default() };
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT d.from_module AS "node!", d.to_module AS "parent!", r.build_rank AS "rank!"
               FROM dependencies d
               JOIN module_ranks r ON r.tenant_id = d.tenant_id AND r.module_id = d.from_module
               WHERE d.tenant_id = $1 AND d.to_module = ANY($2) AND r.build_rank BETWEEN $3 AND $4"#,
            tenant.as_str(),
            &frontier as &[ModuleId],
            lo,
            hi,
        )
        .fetch_all(&mut **tx)
        .await?;
        let ranks: HashMap<ModuleId, i64> = rows.iter().map(|r| (r.node.into(), r.rank)).collect();
        let found = layer(rows.into_iter().map(|r| (r.node.into(), r.parent.into())), |n| {
            n == start || region.parent.contains_key(&n)
        });
        let mut next = Vec::with_capacity(found.len());
        for (node, parent) in found {
            region.parent.insert(node, parent);
            region.modules.push((node, ranks[&node]));
            if node == target {
                region.reached_target = true;
                return Ok(region);
            }
            next.push(node);
        }
        frontier = next;
    }
    Ok(region)
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

/// One layer of a breadth-first search: the modules of `edges` (node, parent) not `known` yet, in id order,
/// each with the least of its parents in the layer — so the tree, and every path reported from it, is the
/// same however PostgreSQL returned the rows (sorting them there cost more than this).
fn layer(
    edges: impl IntoIterator<Item = (ModuleId, ModuleId)>,
    known: impl Fn(ModuleId) -> bool,
) -> Vec<(ModuleId, ModuleId)> {
    let mut found: HashMap<ModuleId, ModuleId> = HashMap::new();
    for (node, parent) in edges {
        if !known(node) {
            found.entry(node).and_modify(|p| *p = (*p).min(parent)).or_insert(parent);
        }
    }
    let mut found: Vec<(ModuleId, ModuleId)> = found.into_iter().collect();
    found.sort_unstable();
    found
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
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut seen: std::collections::HashSet<ModuleId> = std::iter::once(start).collect();
    let mut out = Vec::new();
    let mut frontier = vec![start];
    for depth in 1..=max_depth {
        if frontier.is_empty() {
            break;
        }
        let rows: Vec<(ModuleId, ModuleId)> = match dir {
            Direction::Dependencies => sqlx::query!(
                r#"SELECT to_module AS "node!", from_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND from_module = ANY($2)"#,
                tenant.as_str(),
                &frontier as &[ModuleId],
            )
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| (r.node.into(), r.parent.into()))
            .collect(),
            Direction::Dependents => sqlx::query!(
                r#"SELECT from_module AS "node!", to_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND to_module = ANY($2)"#,
                tenant.as_str(),
                &frontier as &[ModuleId],
            )
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| (r.node.into(), r.parent.into()))
            .collect(),
        };
        let found = layer(rows, |n| seen.contains(&n));
        let mut next = Vec::with_capacity(found.len());
        for (node, parent) in found {
            seen.insert(node);
            out.push((node, parent, depth));
            if out.len() >= limit {
                return Ok(out);
            }
            next.push(node);
        }
        frontier = next;
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_keeps_each_new_module_once_with_its_least_parent() {
        let [a, b, c, x, y] = [1u128, 2, 3, 10, 11].map(|n| ModuleId::from_uuid(uuid::Uuid::from_u128(n)));
        let found = layer([(y, c), (x, b), (y, a), (a, c), (x, c)], |n| n == a);
        assert_eq!(found, vec![(x, b), (y, a)], "a is known; x and y in id order with their least parents");
    }
}
