//! Replay runs' SQL. Every statement names the tenant.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};
use sqlx::types::Json;

use super::{Divergence, Step};
use crate::history::DefinitionRef;
use crate::ids::InstanceId;

/// A replay run as stored.
#[derive(Clone, Debug)]
pub struct Run {
    pub tenant_id: TenantId,
    pub replay_id: uuid::Uuid,
    pub instance_id: InstanceId,
    pub definition_key: String,
    pub definition_version: i32,
    pub decisions_checked: i32,
    pub diverged_at: Option<i64>,
    pub decided: Option<Json<Step>>,
    pub recorded: Option<Json<Step>>,
    pub replayed_by: String,
    pub created_at: DateTime<Utc>,
}

/// Stores a run and its shadow stream.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    tenant: &TenantId,
    replay: uuid::Uuid,
    instance: InstanceId,
    definition: &DefinitionRef,
    checked: usize,
    divergence: Option<&Divergence>,
    by: &str,
    shadow: &[Step],
) -> Result<Run> {
    let run = sqlx::query_as!(
        Run,
        r#"INSERT INTO replay_runs (tenant_id, replay_id, instance_id, definition_tenant, definition_key,
                                   definition_version, decisions_checked, diverged_at, decided, recorded, replayed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           RETURNING tenant_id AS "tenant_id: TenantId", replay_id, instance_id AS "instance_id: InstanceId",
                     definition_key, definition_version, decisions_checked, diverged_at,
                     decided AS "decided: Json<Step>", recorded AS "recorded: Json<Step>", replayed_by, created_at"#,
        tenant.as_str(),
        replay,
        instance as InstanceId,
        definition.tenant.as_str(),
        definition.key,
        definition.version,
        i32::try_from(checked).unwrap_or(i32::MAX),
        divergence.map(|d| d.version),
        divergence.and_then(|d| d.decided.clone()).map(Json) as _,
        divergence.and_then(|d| d.recorded.clone()).map(Json) as _,
        by,
    )
    .fetch_one(&mut **tx)
    .await?;
    let versions: Vec<i64> = (1..=shadow.len() as i64).collect();
    let types: Vec<String> = shadow.iter().map(|s| s.event_type.clone()).collect();
    let data: Vec<serde_json::Value> = shadow.iter().map(|s| s.data.clone()).collect();
    sqlx::query!(
        "INSERT INTO replay_events (tenant_id, replay_id, version, event_type, data)
         SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::jsonb[])",
        tenant.as_str(),
        replay,
        &versions,
        &types,
        &data,
    )
    .execute(&mut **tx)
    .await?;
    Ok(run)
}

/// A run's shadow events after `after`, at most `limit`, in order.
pub async fn events(
    tx: &mut Tx,
    tenant: &TenantId,
    replay: uuid::Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, Step)>> {
    let rows = sqlx::query!(
        "SELECT version, event_type, data FROM replay_events
          WHERE tenant_id = $1 AND replay_id = $2 AND version > $3 ORDER BY version LIMIT $4",
        tenant.as_str(),
        replay,
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.version, Step { event_type: r.event_type, data: r.data })).collect())
}
