//! The projection's SQL: process states and projector checkpoints. The projector writes every tenant's
//! rows (row-level security lets its `follower` transactions through); tenants read their own.

use std::collections::BTreeMap;

use kernel::db::Tx;
use kernel::{Result, TenantId};
use sqlx::types::Json;

use super::{ProcessState, Status, StepState};
use crate::history::Checkpoint;
use crate::ids::{InstanceId, ProjectId};

struct Row {
    tenant_id: TenantId,
    instance_id: InstanceId,
    definition_key: String,
    definition_version: i32,
    project_id: Option<ProjectId>,
    status: Status,
    steps: Json<BTreeMap<String, StepState>>,
    version: i64,
    last_event_type: String,
    started_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Row> for ProcessState {
    fn from(r: Row) -> Self {
        ProcessState {
            tenant_id: r.tenant_id,
            instance_id: r.instance_id,
            definition_key: r.definition_key,
            definition_version: r.definition_version,
            project_id: r.project_id,
            status: r.status,
            steps: r.steps.0,
            version: r.version,
            last_event_type: r.last_event_type,
            started_at: r.started_at,
            updated_at: r.updated_at,
            ended_at: r.ended_at,
        }
    }
}

/// The states of `keys` (tenant, instance) that exist, every tenant's (the projector's transaction).
pub async fn get_many(tx: &mut Tx, keys: &[(TenantId, InstanceId)]) -> Result<Vec<ProcessState>> {
    let tenants: Vec<String> = keys.iter().map(|(t, _)| t.as_str().to_owned()).collect();
    let instances: Vec<uuid::Uuid> = keys.iter().map(|(_, i)| i.as_uuid()).collect();
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT p.tenant_id AS "tenant_id: TenantId", p.instance_id AS "instance_id: InstanceId", definition_key,
                  definition_version, project_id AS "project_id: ProjectId", status AS "status: Status",
                  steps AS "steps: Json<BTreeMap<String, StepState>>", version, last_event_type, started_at,
                  updated_at, ended_at
             FROM process_state p
             JOIN unnest($1::text[], $2::uuid[]) AS k(tenant_id, instance_id)
               ON p.tenant_id = k.tenant_id AND p.instance_id = k.instance_id"#,
        &tenants,
        &instances,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Writes every state in one statement.
pub async fn upsert_many(tx: &mut Tx, states: &[&ProcessState]) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&ProcessState) -> String| states.iter().map(|s| f(s)).collect::<Vec<String>>();
    let tenants = col(&|s| s.tenant_id.as_str().to_owned());
    let keys = col(&|s| s.definition_key.clone());
    let statuses = col(&|s| s.status.as_str().to_owned());
    let last = col(&|s| s.last_event_type.clone());
    let instances: Vec<uuid::Uuid> = states.iter().map(|s| s.instance_id.as_uuid()).collect();
    let versions: Vec<i32> = states.iter().map(|s| s.definition_version).collect();
    let steps: Vec<serde_json::Value> =
        states.iter().map(|s| serde_json::to_value(&s.steps).unwrap_or_default()).collect();
    let stream_versions: Vec<i64> = states.iter().map(|s| s.version).collect();
    let started: Vec<chrono::DateTime<chrono::Utc>> = states.iter().map(|s| s.started_at).collect();
    let updated: Vec<chrono::DateTime<chrono::Utc>> = states.iter().map(|s| s.updated_at).collect();
    let ended: Vec<Option<chrono::DateTime<chrono::Utc>>> = states.iter().map(|s| s.ended_at).collect();
    let projects: Vec<Option<uuid::Uuid>> = states.iter().map(|s| s.project_id.map(|p| p.as_uuid())).collect();
    sqlx::query!(
        "INSERT INTO process_state (tenant_id, instance_id, definition_key, definition_version, status, steps, version,
                                    last_event_type, started_at, updated_at, ended_at, project_id)
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::jsonb[], $7::bigint[],
                              $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::uuid[])
         ON CONFLICT (tenant_id, instance_id) DO UPDATE
            SET status = EXCLUDED.status, steps = EXCLUDED.steps, version = EXCLUDED.version,
                last_event_type = EXCLUDED.last_event_type, updated_at = EXCLUDED.updated_at,
                ended_at = EXCLUDED.ended_at, project_id = EXCLUDED.project_id",
        &tenants,
        &instances,
        &keys,
        &versions,
        &statuses,
        &steps,
        &stream_versions,
        &last,
        &started,
        &updated,
        &ended as &[Option<chrono::DateTime<chrono::Utc>>],
        &projects as &[Option<uuid::Uuid>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The projector `name`'s checkpoint (the start if it has none).
pub async fn checkpoint(tx: &mut Tx, name: &str) -> Result<Checkpoint> {
    let row = sqlx::query!("SELECT tx, position FROM projector_checkpoints WHERE name = $1", name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| Checkpoint { tx: r.tx, position: r.position }).unwrap_or_default())
}

pub async fn save_checkpoint(tx: &mut Tx, name: &str, at: Checkpoint) -> Result<()> {
    sqlx::query!(
        "INSERT INTO projector_checkpoints (name, tx, position) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET tx = EXCLUDED.tx, position = EXCLUDED.position, updated_at = now()",
        name,
        at.tx,
        at.position,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops every process state (every tenant's) and sends the projector back to the start.
pub async fn clear(tx: &mut Tx, name: &str) -> Result<()> {
    sqlx::query!("DELETE FROM process_state").execute(&mut **tx).await?;
    save_checkpoint(tx, name, Checkpoint::default()).await
}

/// Where a page of instances (most recently changed first) stops: the last one's change and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub instance: InstanceId,
}

impl Cursor {
    pub fn of(s: &ProcessState) -> Self {
        Self { updated_at: s.updated_at, instance: s.instance_id }
    }

    /// `BAD_USER_INPUT` for a cursor this API did not give.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = || kernel::Error::bad_input("after", "not a cursor of this list");
        let (at, id) = raw.split_once('|').ok_or_else(bad)?;
        let updated_at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| bad())?.with_timezone(&chrono::Utc);
        let instance = InstanceId::parse("after", id).map_err(|_| bad())?;
        Ok(Self { updated_at, instance })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), self.instance)
    }
}

/// A page of the tenant's instances (in `status`, when given), most recently changed first.
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    project: Option<ProjectId>,
    status: Option<Status>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<ProcessState>> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT tenant_id AS "tenant_id: TenantId", instance_id AS "instance_id: InstanceId", definition_key,
                  definition_version, project_id AS "project_id: ProjectId", status AS "status: Status", steps AS "steps: Json<BTreeMap<String, StepState>>",
                  version, last_event_type, started_at, updated_at, ended_at
             FROM process_state
            WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
              AND ($3::timestamptz IS NULL OR (updated_at, instance_id) < ($3, $4))
              AND ($6::uuid IS NULL OR project_id = $6)
            ORDER BY updated_at DESC, instance_id DESC LIMIT $5"#,
        tenant.as_str(),
        status.map(|s| s.as_str()),
        after.map(|c| c.updated_at),
        after.map(|c| c.instance.as_uuid()),
        limit,
        project.map(|p| p.as_uuid()),
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
