//! The lineage graph's SQL. Every statement names the tenant.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::graph::EdgeSource;
use kernel::{Result, TenantId};

use super::{Direction, EdgeKind, NewEdge, NodeKind, NodeRef};

/// Records `nodes` (distinct ids) that are not there yet; a label given now replaces none.
pub async fn upsert_nodes(tx: &mut Tx, tenant: &TenantId, nodes: &[&NodeRef]) -> Result<()> {
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let kinds: Vec<&str> = nodes.iter().map(|n| n.kind.as_str()).collect();
    let labels: Vec<Option<&str>> = nodes.iter().map(|n| n.label.as_deref()).collect();
    sqlx::query!(
        "INSERT INTO lineage_nodes (tenant_id, node_id, kind, label)
         SELECT $1, n.id, n.kind, n.label FROM unnest($2::text[], $3::text[], $4::text[]) AS n(id, kind, label)
         ON CONFLICT (tenant_id, node_id) DO UPDATE SET label = EXCLUDED.label, updated_at = now()
          WHERE lineage_nodes.label IS NULL AND EXCLUDED.label IS NOT NULL",
        tenant.as_str(),
        &ids as &[&str],
        &kinds as &[&str],
        &labels as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records `edges` (their nodes recorded); the new ones, as (from, to, kind).
pub async fn insert_edges(
    tx: &mut Tx,
    tenant: &TenantId,
    edges: &[NewEdge],
) -> Result<Vec<(String, String, EdgeKind)>> {
    let from: Vec<&str> = edges.iter().map(|e| e.from.id.as_str()).collect();
    let to: Vec<&str> = edges.iter().map(|e| e.to.id.as_str()).collect();
    let kinds: Vec<&str> = edges.iter().map(|e| e.kind.as_str()).collect();
    let rows = sqlx::query!(
        r#"INSERT INTO lineage_edges (tenant_id, from_node, to_node, kind)
           SELECT DISTINCT $1::text, e.from_node, e.to_node, e.kind
             FROM unnest($2::text[], $3::text[], $4::text[]) AS e(from_node, to_node, kind)
           ON CONFLICT DO NOTHING
           RETURNING from_node, to_node, kind AS "kind: EdgeKind""#,
        tenant.as_str(),
        &from as &[&str],
        &to as &[&str],
        &kinds as &[&str],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.from_node, r.to_node, r.kind)).collect())
}

/// Merges each node's `facets` (by name) into what it has, in one statement (one entry a node). Which
/// facets are newer than a node's is the caller's to decide (`facet_times`).
pub async fn merge_many_facets(tx: &mut Tx, tenant: &TenantId, facets: &[(String, serde_json::Value)]) -> Result<()> {
    if facets.is_empty() {
        return Ok(());
    }
    let mut merged: std::collections::BTreeMap<&str, serde_json::Map<String, serde_json::Value>> = Default::default();
    for (node, f) in facets {
        if let Some(f) = f.as_object() {
            merged.entry(node.as_str()).or_default().extend(f.clone());
        }
    }
    let ids: Vec<&str> = merged.keys().copied().collect();
    let values: Vec<serde_json::Value> = merged.into_values().map(serde_json::Value::Object).collect();
    sqlx::query!(
        "UPDATE lineage_nodes n SET facets = n.facets || u.facets, updated_at = now()
           FROM unnest($2::text[], $3::jsonb[]) AS u(id, facets)
          WHERE n.tenant_id = $1 AND n.node_id = u.id",
        tenant.as_str(),
        &ids as &[&str],
        &values,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the events behind each of `ids`' facets happened (nodes without any are left out).
pub async fn facet_times(
    tx: &mut Tx,
    tenant: &TenantId,
    ids: &[String],
) -> Result<std::collections::HashMap<String, DateTime<Utc>>> {
    let rows = sqlx::query!(
        r#"SELECT node_id, (facets->>'eventTime')::timestamptz AS "at!"
             FROM lineage_nodes WHERE tenant_id = $1 AND node_id = ANY($2) AND facets ? 'eventTime'"#,
        tenant.as_str(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.node_id, r.at)).collect())
}

/// A node as stored.
#[derive(Clone, Debug)]
pub struct NodeRow {
    pub node_id: String,
    pub kind: NodeKind,
    pub label: Option<String>,
    pub facets: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn nodes(tx: &mut Tx, tenant: &TenantId, ids: &[String]) -> Result<Vec<NodeRow>> {
    Ok(sqlx::query_as!(
        NodeRow,
        r#"SELECT node_id, kind AS "kind: NodeKind", label, facets, created_at, updated_at
             FROM lineage_nodes WHERE tenant_id = $1 AND node_id = ANY($2)"#,
        tenant.as_str(),
        ids,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// An edge as stored.
#[derive(Clone, Debug)]
pub struct EdgeRow {
    pub from_node: String,
    pub to_node: String,
    pub kind: EdgeKind,
    pub recorded_at: DateTime<Utc>,
}

/// The edges between `nodes`, at most `limit`.
pub async fn edges_among(tx: &mut Tx, tenant: &TenantId, nodes: &[String], limit: i64) -> Result<Vec<EdgeRow>> {
    Ok(sqlx::query_as!(
        EdgeRow,
        r#"SELECT from_node, to_node, kind AS "kind: EdgeKind", recorded_at
             FROM lineage_edges
            WHERE tenant_id = $1 AND from_node = ANY($2) AND to_node = ANY($2)
            ORDER BY from_node, to_node, kind LIMIT $3"#,
        tenant.as_str(),
        nodes,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The tenant's edges in one direction, a layer at a time (the key serves downstream layers,
/// `lineage_edges_upstream` upstream ones).
pub struct Layer<'a> {
    pub tx: &'a mut Tx,
    pub tenant: &'a TenantId,
    pub dir: Direction,
}

impl EdgeSource for Layer<'_> {
    type Node = String;

    async fn layer(&mut self, frontier: &[String]) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = match self.dir {
            Direction::Downstream => sqlx::query!(
                r#"SELECT to_node AS "node!", from_node AS "parent!" FROM lineage_edges
                    WHERE tenant_id = $1 AND from_node = ANY($2)"#,
                self.tenant.as_str(),
                frontier,
            )
            .fetch_all(&mut **self.tx)
            .await?
            .into_iter()
            .map(|r| (r.node, r.parent))
            .collect(),
            Direction::Upstream => sqlx::query!(
                r#"SELECT from_node AS "node!", to_node AS "parent!" FROM lineage_edges
                    WHERE tenant_id = $1 AND to_node = ANY($2)"#,
                self.tenant.as_str(),
                frontier,
            )
            .fetch_all(&mut **self.tx)
            .await?
            .into_iter()
            .map(|r| (r.node, r.parent))
            .collect(),
        };
        Ok(rows)
    }
}
