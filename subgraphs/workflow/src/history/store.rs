//! The event store's SQL. Every statement names the tenant, except the follower's read of every stream.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;

use super::{Checkpoint, DefinitionRef, Recorded};
use crate::ids::InstanceId;

/// The policy under which [`follow`] reads every tenant's events.
pub const FOLLOWER: &str = "follower";

/// A transaction for a reader of every stream (row-level security lets it read all events, nothing else).
pub async fn follower_tx(db: &kernel::db::Db) -> Result<Tx> {
    kernel::db::system_tx(db.shared(), FOLLOWER).await
}

pub async fn create(tx: &mut Tx, tenant: &TenantId, instance: InstanceId, d: &DefinitionRef) -> Result<()> {
    sqlx::query!(
        "INSERT INTO workflow_streams (tenant_id, instance_id, definition_tenant, definition_key, definition_version)
         VALUES ($1, $2, $3, $4, $5)",
        tenant.as_str(),
        instance as InstanceId,
        d.tenant.as_str(),
        d.key,
        d.version,
    )
    .execute(&mut **tx)
    .await
    .on_constraint("workflow_streams_pkey", || Error::conflict(format!("workflow instance `{instance}` exists")))?;
    Ok(())
}

/// Locks the stream for this transaction (writers of one instance take turns): its version and the
/// definition it runs, if it exists.
pub async fn lock(tx: &mut Tx, tenant: &TenantId, instance: InstanceId) -> Result<Option<(i64, DefinitionRef)>> {
    let row = sqlx::query!(
        r#"SELECT version, definition_tenant AS "definition_tenant: TenantId", definition_key, definition_version
             FROM workflow_streams WHERE tenant_id = $1 AND instance_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        instance as InstanceId,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| {
        let d = DefinitionRef { tenant: r.definition_tenant, key: r.definition_key, version: r.definition_version };
        (r.version, d)
    }))
}

/// The stream's version, if it exists.
pub async fn version(tx: &mut Tx, tenant: &TenantId, instance: InstanceId) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar!(
        "SELECT version FROM workflow_streams WHERE tenant_id = $1 AND instance_id = $2",
        tenant.as_str(),
        instance as InstanceId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Appends one event at `expected + 1` if the stream is at `expected` and below `limit`; `None` otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn append(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: InstanceId,
    expected: i64,
    limit: i64,
    event_id: &str,
    event_type: &str,
    data: &Value,
    meta: &Value,
) -> Result<Option<Recorded>> {
    Ok(sqlx::query_as!(
        Recorded,
        r#"WITH moved AS (
               UPDATE workflow_streams SET version = version + 1, updated_at = now()
                WHERE tenant_id = $1 AND instance_id = $2 AND version = $3 AND version < $4
               RETURNING version)
           INSERT INTO workflow_events (tenant_id, instance_id, version, event_id, event_type, data, meta)
           SELECT $1, $2, moved.version, $5, $6, $7, $8 FROM moved
           RETURNING tenant_id AS "tenant_id: TenantId", instance_id AS "instance_id: InstanceId", version,
                     position, tx, event_id, event_type, data, recorded_at"#,
        tenant.as_str(),
        instance as InstanceId,
        expected,
        limit,
        event_id,
        event_type,
        data,
        meta,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// The stream's events after version `after`, at most `limit`, in order.
pub async fn read(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: InstanceId,
    after: i64,
    limit: i64,
) -> Result<Vec<Recorded>> {
    Ok(sqlx::query_as!(
        Recorded,
        r#"SELECT tenant_id AS "tenant_id: TenantId", instance_id AS "instance_id: InstanceId", version,
                  position, tx, event_id, event_type, data, recorded_at
             FROM workflow_events
            WHERE tenant_id = $1 AND instance_id = $2 AND version > $3
            ORDER BY version LIMIT $4"#,
        tenant.as_str(),
        instance as InstanceId,
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Every stream's events after `from` in (tx, position) order, below the oldest transaction in flight.
pub async fn follow(tx: &mut Tx, from: Checkpoint, limit: i64) -> Result<Vec<Recorded>> {
    Ok(sqlx::query_as!(
        Recorded,
        r#"SELECT tenant_id AS "tenant_id: TenantId", instance_id AS "instance_id: InstanceId", version,
                  position, tx, event_id, event_type, data, recorded_at
             FROM workflow_events
            WHERE (tx, position) > ($1, $2) AND tx < workflow_safe_tx()
            ORDER BY tx, position LIMIT $3"#,
        from.tx,
        from.position,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// When the first event after `from` in the global order was recorded, whether or not it can be read yet
/// (a transaction older than it may still be in flight): how far behind a follower at `from` is.
pub async fn first_recorded_after(tx: &mut Tx, from: Checkpoint) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(sqlx::query_scalar!(
        "SELECT recorded_at FROM workflow_events WHERE (tx, position) > ($1, $2) ORDER BY tx, position LIMIT 1",
        from.tx,
        from.position,
    )
    .fetch_optional(&mut **tx)
    .await?)
}
