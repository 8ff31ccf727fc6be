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

/// A path `start ⇝ target` through modules above `floor` (and `target` itself) — the only modules such a
/// path can pass through when `level(target) = floor` — or `None`. Breadth-first, one statement per layer,
/// each module visited once, stopping as soon as `target` is reached.
pub async fn path_above(
    tx: &mut Tx,
    tenant: &TenantId,
    start: Uuid,
    target: Uuid,
    floor: i32,
) -> Result<Option<Vec<Uuid>>> {
    let mut parent: HashMap<Uuid, Uuid> = HashMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT d.to_module AS "node!", d.from_module AS "parent!"
               FROM dependencies d
               JOIN modules m ON m.tenant_id = d.tenant_id AND m.module_id = d.to_module
               WHERE d.tenant_id = $1 AND d.from_module = ANY($2) AND (m.level > $3 OR m.module_id = $4)
               ORDER BY 1, 2"#,
            tenant.as_str(),
            &frontier,
            floor,
            target,
        )
        .fetch_all(&mut **tx)
        .await?;
        let mut next = Vec::new();
        for r in rows {
            if r.node == start || parent.contains_key(&r.node) {
                continue;
            }
            parent.insert(r.node, r.parent);
            if r.node == target {
                return Ok(Some(super::walk_back(&parent, start, target)));
            }
            next.push(r.node);
        }
        frontier = next;
    }
    Ok(None)
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
/// shortest path, nearest first, at most `limit` modules. Breadth-first, one statement per layer: each
/// module is visited once, so the work is the edges of what is reached, however many paths lead there (a
/// single recursive statement has to carry every (module, parent, depth) it meets, many times more rows in
/// a dense graph — see BENCHMARKS.md).
pub async fn transitive(
    tx: &mut Tx,
    tenant: &TenantId,
    start: Uuid,
    dir: Direction,
    max_depth: i32,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid, i32)>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut seen: std::collections::HashSet<Uuid> = std::iter::once(start).collect();
    let mut out = Vec::new();
    let mut frontier = vec![start];
    for depth in 1..=max_depth {
        if frontier.is_empty() {
            break;
        }
        let rows: Vec<(Uuid, Uuid)> = match dir {
            Direction::Dependencies => sqlx::query!(
                r#"SELECT to_module AS "node!", from_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND from_module = ANY($2) ORDER BY 1, 2"#,
                tenant.as_str(),
                &frontier,
            )
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| (r.node, r.parent))
            .collect(),
            Direction::Dependents => sqlx::query!(
                r#"SELECT from_module AS "node!", to_module AS "parent!" FROM dependencies
                   WHERE tenant_id = $1 AND to_module = ANY($2) ORDER BY 1, 2"#,
                tenant.as_str(),
                &frontier,
            )
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|r| (r.node, r.parent))
            .collect(),
        };
        let mut next = Vec::new();
        for (node, parent) in rows {
            if seen.insert(node) {
                out.push((node, parent, depth));
                if out.len() >= limit {
                    return Ok(out);
                }
                next.push(node);
            }
        }
        frontier = next;
    }
    Ok(out)
}

/// A project's modules in build order: by level, then name (one read of the rows, served by
/// `modules_by_project_level`).
pub async fn build_order(tx: &mut Tx, tenant: &TenantId, project: Uuid) -> Result<Vec<crate::modules::Module>> {
    Ok(sqlx::query_as!(
        crate::modules::Module,
        r#"SELECT tenant_id AS "tenant_id: TenantId", module_id, project_id, name, version, kind, owner, tags,
                  metadata, level, created_at, updated_at
           FROM modules WHERE tenant_id = $1 AND project_id = $2 ORDER BY level, name, module_id"#,
        tenant.as_str(),
        project,
    )
    .fetch_all(&mut **tx)
    .await?)
}
