//! The dependency graph's SQL.

use std::collections::HashMap;

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use uuid::Uuid;

use super::{Direction, Edge};

/// Serializes changes to one tenant's graph until the transaction ends.
pub async fn lock_graph(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('catalogue.graph:' || $1::text, 0))", tenant.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn levels(tx: &mut Tx, tenant: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, i32>> {
    let rows = sqlx::query!(
        "SELECT module_id, level FROM modules WHERE tenant_id = $1 AND module_id = ANY($2)",
        tenant.as_str(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.module_id, r.level)).collect())
}

pub async fn names(tx: &mut Tx, tenant: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
    let rows = sqlx::query!(
        "SELECT module_id, name FROM modules WHERE tenant_id = $1 AND module_id = ANY($2)",
        tenant.as_str(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.module_id, r.name)).collect())
}

/// What `start` reaches through modules above `floor` (and `target` itself), as (module, parent) rows: the
/// only modules a path `start ⇝ target` can pass through when `level(target) = floor`.
pub async fn reach_above(
    tx: &mut Tx,
    tenant: &TenantId,
    start: Uuid,
    target: Uuid,
    floor: i32,
) -> Result<Vec<(Uuid, Option<Uuid>)>> {
    let rows = sqlx::query!(
        r#"WITH RECURSIVE reach(node, parent) AS (
               SELECT $2::uuid, NULL::uuid
               UNION
               SELECT d.to_module, r.node
               FROM reach r
               JOIN dependencies d ON d.tenant_id = $1 AND d.from_module = r.node
               JOIN modules m ON m.tenant_id = $1 AND m.module_id = d.to_module
               WHERE r.node <> $3 AND (m.level > $4 OR m.module_id = $3)
           )
           SELECT node AS "node!", parent FROM reach"#,
        tenant.as_str(),
        start,
        target,
        floor,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.node, r.parent)).collect())
}

pub async fn insert_edge(tx: &mut Tx, tenant: &TenantId, from: Uuid, to: Uuid, constraint: &str) -> Result<Edge> {
    let r = sqlx::query!(
        r#"INSERT INTO dependencies (tenant_id, from_module, to_module, version_constraint) VALUES ($1, $2, $3, $4)
           RETURNING from_module, to_module, version_constraint"#,
        tenant.as_str(),
        from,
        to,
        constraint,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("dependencies_pkey", || Error::conflict("this dependency exists already"))?;
    Ok(Edge { from: r.from_module, to: r.to_module, version_constraint: r.version_constraint })
}

pub async fn delete_edge(tx: &mut Tx, tenant: &TenantId, from: Uuid, to: Uuid) -> Result<bool> {
    let n = sqlx::query!(
        "DELETE FROM dependencies WHERE tenant_id = $1 AND from_module = $2 AND to_module = $3",
        tenant.as_str(),
        from,
        to,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Raises `module` to at least `level`, then every module above it as far as needed to keep
/// `level(a) > level(b)` on every edge: one statement per layer of dependents that had to move.
pub async fn raise_levels(tx: &mut Tx, tenant: &TenantId, module: Uuid, level: i32) -> Result<()> {
    let mut frontier: Vec<Uuid> = sqlx::query_scalar!(
        "UPDATE modules SET level = $3 WHERE tenant_id = $1 AND module_id = $2 AND level < $3 RETURNING module_id",
        tenant.as_str(),
        module,
        level,
    )
    .fetch_all(&mut **tx)
    .await?;
    while !frontier.is_empty() {
        frontier = sqlx::query_scalar!(
            r#"UPDATE modules m SET level = s.level
               FROM (SELECT d.from_module AS id, max(c.level) + 1 AS level
                     FROM dependencies d
                     JOIN modules c ON c.tenant_id = d.tenant_id AND c.module_id = d.to_module
                     WHERE d.tenant_id = $1 AND d.to_module = ANY($2)
                     GROUP BY d.from_module) s
               WHERE m.tenant_id = $1 AND m.module_id = s.id AND m.level < s.level
               RETURNING m.module_id"#,
            tenant.as_str(),
            &frontier,
        )
        .fetch_all(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The direct edges of `modules` in one direction, with the version of the module at the other end.
pub async fn direct(tx: &mut Tx, tenant: &TenantId, modules: &[Uuid], dir: Direction) -> Result<Vec<DirectEdge>> {
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
                modules,
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
                modules,
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
    pub of: Uuid,
    pub other: Uuid,
    pub to: Uuid,
    pub version_constraint: String,
    pub other_version: String,
}

/// Everything `start` reaches within `max_depth` edges in one direction, as (module, parent, depth) along a
/// shortest path, nearest first, at most `limit` modules (a module's parent is always nearer, so it is in).
/// Each (module, parent, depth) is visited once.
pub async fn transitive(
    tx: &mut Tx,
    tenant: &TenantId,
    start: Uuid,
    dir: Direction,
    max_depth: i32,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid, i32)>> {
    let rows = match dir {
        Direction::Dependencies => sqlx::query!(
            r#"WITH RECURSIVE reach(node, parent, depth) AS (
                   SELECT $2::uuid, NULL::uuid, 0
                   UNION
                   SELECT d.to_module, r.node, r.depth + 1
                   FROM reach r JOIN dependencies d ON d.tenant_id = $1 AND d.from_module = r.node
                   WHERE r.depth < $3
               )
               SELECT node AS "node!", parent AS "parent!", depth AS "depth!"
               FROM (SELECT DISTINCT ON (node) node, parent, depth FROM reach WHERE depth > 0 AND node <> $2
                     ORDER BY node, depth, parent) shortest
               ORDER BY depth, node
               LIMIT $4"#,
            tenant.as_str(),
            start,
            max_depth,
            limit,
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.node, r.parent, r.depth))
        .collect(),
        Direction::Dependents => sqlx::query!(
            r#"WITH RECURSIVE reach(node, parent, depth) AS (
                   SELECT $2::uuid, NULL::uuid, 0
                   UNION
                   SELECT d.from_module, r.node, r.depth + 1
                   FROM reach r JOIN dependencies d ON d.tenant_id = $1 AND d.to_module = r.node
                   WHERE r.depth < $3
               )
               SELECT node AS "node!", parent AS "parent!", depth AS "depth!"
               FROM (SELECT DISTINCT ON (node) node, parent, depth FROM reach WHERE depth > 0 AND node <> $2
                     ORDER BY node, depth, parent) shortest
               ORDER BY depth, node
               LIMIT $4"#,
            tenant.as_str(),
            start,
            max_depth,
            limit,
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.node, r.parent, r.depth))
        .collect(),
    };
    Ok(rows)
}

/// A project's modules in build order: by level, then name.
pub async fn build_order(tx: &mut Tx, tenant: &TenantId, project: Uuid) -> Result<Vec<(Uuid, i32)>> {
    let rows = sqlx::query!(
        "SELECT module_id, level FROM modules WHERE tenant_id = $1 AND project_id = $2 ORDER BY level, name, module_id",
        tenant.as_str(),
        project,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.module_id, r.level)).collect())
}
