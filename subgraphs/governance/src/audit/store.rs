//! The audit log's SQL: the per-tenant chain head (locked for an append), entries appended in one statement,
//! and reads by sequence. Nothing here updates or deletes an entry; the app role could not.

use kernel::db::Tx;
use kernel::{Result, TenantId};

use super::tree::{Frontier, Hash};
use super::{Entry, Link, NewEntry, GENESIS};

/// A tenant's log head: its chain and its tree.
pub struct Head {
    pub size: i64,
    /// The last entry's hash ([`GENESIS`] before the first).
    pub hash: [u8; 32],
    /// The tree over the first `frontier.size` entries (all of them, but for a head migrated from before
    /// the tree existed).
    pub frontier: Frontier,
}

/// Enters (or leaves) the audit consumer's scope in `tx`: the `audit_appender` policies (migration 1011)
/// admit it to every tenant's log rows, to append a batch of many tenants' events in a few statements.
pub async fn appender_scope(tx: &mut Tx, on: bool) -> Result<()> {
    sqlx::query("SELECT set_config('app.system', $1, true)")
        .bind(if on { "audit" } else { "" })
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks the heads of `tenants` (creating missing ones empty), in tenant order so that two appenders never
/// wait for each other in a cycle, and returns them in that order.
pub async fn lock_heads(tx: &mut Tx, tenants: &[TenantId]) -> Result<Vec<(TenantId, Head)>> {
    let mut ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query!(
        "INSERT INTO audit_heads (tenant_id, size, head) SELECT t, 0, $2 FROM unnest($1::text[]) AS u(t)
         ON CONFLICT (tenant_id) DO NOTHING",
        &ids as &[&str],
        &GENESIS[..],
    )
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query!(
        "SELECT tenant_id, size, head, tree_size, frontier FROM audit_heads WHERE tenant_id = ANY($1)
         ORDER BY tenant_id FOR UPDATE",
        &ids as &[&str],
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| {
            let hash: [u8; 32] = row
                .head
                .try_into()
                .map_err(|_| kernel::Error::internal(anyhow::anyhow!("an audit head is not 32 bytes")))?;
            let head =
                Head { size: row.size, hash, frontier: Frontier::from_bytes(row.tree_size as u64, &row.frontier)? };
            Ok((TenantId::parse(&row.tenant_id)?, head))
        })
        .collect()
}

/// A locked head's new state: `size` entries ending in `hash`, the tree `frontier` (of the same size) and
/// its `root`.
pub struct NewHead {
    pub tenant: TenantId,
    pub size: i64,
    pub hash: [u8; 32],
    pub frontier: Frontier,
    pub root: Hash,
}

/// Moves locked heads (any tenants) to their new state, in one statement.
pub async fn set_heads(tx: &mut Tx, heads: &[NewHead]) -> Result<()> {
    let tenants: Vec<&str> = heads.iter().map(|h| h.tenant.as_str()).collect();
    let sizes: Vec<i64> = heads.iter().map(|h| h.size).collect();
    let hashes: Vec<&[u8]> = heads.iter().map(|h| &h.hash[..]).collect();
    let tree_sizes: Vec<i64> = heads.iter().map(|h| h.frontier.size as i64).collect();
    let frontiers: Vec<Vec<u8>> = heads.iter().map(|h| h.frontier.to_bytes()).collect();
    let roots: Vec<&[u8]> = heads.iter().map(|h| &h.root.0[..]).collect();
    sqlx::query!(
        "UPDATE audit_heads h SET size = u.s, head = u.hd, tree_size = u.ts, frontier = u.f, root = u.r, updated_at = now()
         FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[], $6::bytea[]) AS u(t, s, hd, ts, f, r)
         WHERE h.tenant_id = u.t",
        &tenants as &[&str],
        &sizes,
        &hashes as &[&[u8]],
        &tree_sizes,
        &frontiers,
        &roots as &[&[u8]],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores the tree hashes appends produced (`(tenant, index, hash)`, any tenants), in one statement.
pub async fn insert_tree(tx: &mut Tx, stored: &[(TenantId, u64, Hash)]) -> Result<()> {
    let tenants: Vec<&str> = stored.iter().map(|(t, _, _)| t.as_str()).collect();
    let idx: Vec<i64> = stored.iter().map(|(_, i, _)| *i as i64).collect();
    let hashes: Vec<&[u8]> = stored.iter().map(|(_, _, h)| &h.0[..]).collect();
    sqlx::query!(
        "INSERT INTO audit_tree (tenant_id, idx, hash) SELECT t, i, h FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u(t, i, h)",
        &tenants as &[&str],
        &idx,
        &hashes as &[&[u8]],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored tree hashes at `indexes`, in that order (fewer if some are missing).
pub async fn tree_hashes(tx: &mut Tx, tenant: &TenantId, indexes: &[u64]) -> Result<Vec<Hash>> {
    let idx: Vec<i64> = indexes.iter().map(|i| *i as i64).collect();
    let rows = sqlx::query_scalar!(
        r#"SELECT t.hash AS "hash!" FROM unnest($2::bigint[]) WITH ORDINALITY AS w(i, o)
           JOIN audit_tree t ON t.tenant_id = $1 AND t.idx = w.i ORDER BY w.o"#,
        tenant.as_str(),
        &idx,
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|h| {
            h.try_into()
                .map(Hash)
                .map_err(|_| kernel::Error::internal(anyhow::anyhow!("an audit tree hash is not 32 bytes")))
        })
        .collect()
}

/// Runs a `tlog` computation (a root, a proof, a frontier) over `tenant`'s stored tree hashes, loading
/// just the ones it reads ([`super::tree::with_stored`]).
pub async fn over_tree<T>(
    tx: &mut Tx,
    tenant: &TenantId,
    f: impl Fn(&super::tree::Stored) -> std::result::Result<T, super::tree::TlogError>,
) -> Result<T> {
    super::tree::with_stored(f, |idx| async move { tree_hashes(tx, tenant, &idx).await }).await
}

/// The canonical entries `from..=to`, in sequence order (to build a tree the head lacks).
pub async fn entries(tx: &mut Tx, tenant: &TenantId, from: i64, to: i64) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar!(
        "SELECT entry FROM audit_entries WHERE tenant_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
        tenant.as_str(),
        from,
        to,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Inserts `entries` (each of its envelope's tenant) in one statement.
pub async fn insert(tx: &mut Tx, entries: &[NewEntry]) -> Result<()> {
    let tenants: Vec<&str> = entries.iter().map(|e| e.envelope.tenant_id.as_str()).collect();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    let event_ids: Vec<&str> = entries.iter().map(|e| e.envelope.event_id.as_str()).collect();
    let types: Vec<&str> = entries.iter().map(|e| e.envelope.event_type.as_str()).collect();
    let occurred: Vec<chrono::DateTime<chrono::Utc>> = entries.iter().map(|e| e.envelope.occurred_at).collect();
    let traces: Vec<&str> = entries.iter().map(|e| e.envelope.trace_id.as_str()).collect();
    let correlations: Vec<&str> = entries.iter().map(|e| e.envelope.correlation_id.as_str()).collect();
    let causations: Vec<Option<&str>> = entries.iter().map(|e| e.envelope.causation_id.as_deref()).collect();
    let projects: Vec<Option<&str>> = entries.iter().map(|e| e.envelope.project_id.as_deref()).collect();
    let modules: Vec<Option<&str>> = entries.iter().map(|e| e.envelope.module_id.as_deref()).collect();
    let actors: Vec<Option<&str>> = entries.iter().map(|e| e.envelope.actor.as_deref()).collect();
    let bytes: Vec<&[u8]> = entries.iter().map(|e| e.entry.as_slice()).collect();
    let hashes: Vec<&[u8]> = entries.iter().map(|e| &e.hash[..]).collect();
    sqlx::query!(
        r#"INSERT INTO audit_entries (tenant_id, seq, event_id, event_type, occurred_at, trace_id, correlation_id,
                                      causation_id, project_id, module_id, entry, hash, actor)
           SELECT t, s, ev, ty, o, tr, co, ca, p, m, en, h, ac
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::bytea[], $12::bytea[], $13::text[])
                AS u(t, s, ev, ty, o, tr, co, ca, p, m, en, h, ac)"#,
        &tenants as &[&str],
        &seqs,
        &event_ids as &[&str],
        &types as &[&str],
        &occurred,
        &traces as &[&str],
        &correlations as &[&str],
        &causations as &[Option<&str>],
        &projects as &[Option<&str>],
        &modules as &[Option<&str>],
        &bytes as &[&[u8]],
        &hashes as &[&[u8]],
        &actors as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tenant's log size (0 before its first entry).
pub async fn size(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    Ok(sqlx::query_scalar!("SELECT size FROM audit_heads WHERE tenant_id = $1", tenant.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .unwrap_or(0))
}

/// The tenant's tree: its size and root (the empty tree before its first entry).
pub async fn tree_head(tx: &mut Tx, tenant: &TenantId) -> Result<(u64, Hash)> {
    let row = sqlx::query!("SELECT tree_size, root FROM audit_heads WHERE tenant_id = $1", tenant.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        None => Ok((0, super::tree::EMPTY_HASH)),
        Some(r) => Ok((
            r.tree_size as u64,
            Hash(
                r.root
                    .try_into()
                    .map_err(|_| kernel::Error::internal(anyhow::anyhow!("an audit root is not 32 bytes")))?,
            ),
        )),
    }
}

/// The stored hash of entry `seq`, if there is one.
pub async fn hash_of(tx: &mut Tx, tenant: &TenantId, seq: i64) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar!("SELECT hash FROM audit_entries WHERE tenant_id = $1 AND seq = $2", tenant.as_str(), seq)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Entries `from..=to`' chain fields, in sequence order.
pub async fn links(tx: &mut Tx, tenant: &TenantId, from: i64, to: i64) -> Result<Vec<Link>> {
    Ok(sqlx::query_as!(
        Link,
        "SELECT seq, entry, hash FROM audit_entries WHERE tenant_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
        tenant.as_str(),
        from,
        to,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Up to `limit` entries after sequence `after`, in sequence order.
pub async fn page(tx: &mut Tx, tenant: &TenantId, after: i64, limit: i64) -> Result<Vec<Entry>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id: TenantId", seq, recorded_at, event_id, event_type, occurred_at,
                  actor, trace_id, correlation_id, causation_id, project_id, module_id, entry, hash
           FROM audit_entries WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"#,
        tenant.as_str(),
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Entry {
            tenant_id: r.tenant_id,
            sequence: r.seq,
            recorded_at: r.recorded_at,
            event_id: r.event_id,
            event_type: r.event_type,
            occurred_at: r.occurred_at,
            actor: r.actor,
            trace_id: r.trace_id,
            correlation_id: r.correlation_id,
            causation_id: r.causation_id,
            project_id: r.project_id,
            module_id: r.module_id,
            canonical: String::from_utf8_lossy(&r.entry).into_owned(),
            hash: hex::encode(r.hash),
        })
        .collect())
}

/// Creates the monthly partitions up to `months_ahead` months from now that are missing; how many.
pub async fn ensure_partitions(tx: &mut Tx, months_ahead: i32) -> Result<i32> {
    Ok(sqlx::query_scalar!(r#"SELECT governance_audit_partitions($1) AS "n!""#, months_ahead)
        .fetch_one(&mut **tx)
        .await?)
}

/// Locks `tenant`'s export cursor (creating it at 0) and returns the last exported sequence; `None` when
/// another export holds it.
pub async fn lock_export_cursor(tx: &mut Tx, tenant: &TenantId) -> Result<Option<i64>> {
    sqlx::query!(
        "INSERT INTO audit_export_cursors (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING",
        tenant.as_str()
    )
    .execute(&mut **tx)
    .await?;
    Ok(sqlx::query_scalar!(
        "SELECT exported_to FROM audit_export_cursors WHERE tenant_id = $1 FOR UPDATE SKIP LOCKED",
        tenant.as_str()
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Records an export and moves the (locked) cursor to its end.
pub async fn record_export(tx: &mut Tx, tenant: &TenantId, e: &super::export::Export) -> Result<()> {
    sqlx::query!(
        "INSERT INTO audit_exports (tenant_id, from_seq, to_seq, object_key, location, bytes, sha256, checkpoint, exported_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        tenant.as_str(),
        e.from_sequence,
        e.to_sequence,
        e.object_key,
        e.location,
        e.bytes,
        e.sha256,
        e.checkpoint,
        e.exported_at,
    )
    .execute(&mut **tx)
    .await?;
    let moved = sqlx::query!(
        "UPDATE audit_export_cursors SET exported_to = $2 WHERE tenant_id = $1 AND exported_to = $3",
        tenant.as_str(),
        e.to_sequence,
        e.from_sequence - 1,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(kernel::Error::internal(anyhow::anyhow!("{tenant}'s export cursor moved during an export")));
    }
    Ok(())
}

/// Tenants with at least `min_new` entries not exported yet.
pub async fn exports_due(tx: &mut Tx, min_new: i64) -> Result<Vec<TenantId>> {
    let rows = sqlx::query_scalar!(r#"SELECT t AS "t!" FROM governance_audit_exports_due($1) AS t"#, min_new)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|t| TenantId::parse(t)).collect()
}

/// Up to `limit` of the tenant's exports after sequence `after`, in order.
pub async fn exports(tx: &mut Tx, tenant: &TenantId, after: i64, limit: i64) -> Result<Vec<super::export::Export>> {
    Ok(sqlx::query_as!(
        super::export::Export,
        r#"SELECT from_seq AS from_sequence, to_seq AS to_sequence, object_key, location, bytes, sha256, checkpoint,
                  exported_at
           FROM audit_exports WHERE tenant_id = $1 AND from_seq > $2 ORDER BY from_seq LIMIT $3"#,
        tenant.as_str(),
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Drops the partitions past `keep_months` that may go: `(partition, dropped, why kept)` for each past it.
pub async fn expire_partitions(tx: &mut Tx, keep_months: i32) -> Result<Vec<(String, bool, Option<String>)>> {
    let rows = sqlx::query!(
        r#"SELECT partition_name AS "partition_name!", dropped AS "dropped!", reason FROM governance_audit_expire($1)"#,
        keep_months
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.partition_name, r.dropped, r.reason)).collect())
}
