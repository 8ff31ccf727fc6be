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

pub async fn get(tx: &mut Tx, tenant: &TenantId, instance: InstanceId) -> Result<Option<ProcessState>> {
    let row = sqlx::query_as!(
        Row,
        r#"SELECT tenant_id AS "tenant_id: TenantId", instance_id AS "instance_id: InstanceId", definition_key,
                  definition_version, project_id AS "project_id: ProjectId", status AS "status: Status", steps AS "steps: Json<BTreeMap<String, StepState>>",
                  version, last_event_type, started_at, updated_at, ended_at
             FROM process_state WHERE tenant_id = $1 AND instance_id = $2"#,
        tenant.as_str(),
        instance as InstanceId,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn upsert(tx: &mut Tx, s: &ProcessState) -> Result<()> {
    sqlx::query!(
        "INSERT INTO process_state (tenant_id, instance_id, definition_key, definition_version, status, steps, version,
                                    last_event_type, started_at, updated_at, ended_at, project_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (tenant_id, instance_id) DO UPDATE
            SET status = EXCLUDED.status, steps = EXCLUDED.steps, version = EXCLUDED.version,
                last_event_type = EXCLUDED.last_event_type, updated_at = EXCLUDED.updated_at,
                ended_at = EXCLUDED.ended_at",
        s.tenant_id.as_str(),
        s.instance_id as InstanceId,
        s.definition_key,
        s.definition_version,
        s.status.as_str(),
        Json(&s.steps) as _,
        s.version,
        s.last_event_type,
        s.started_at,
        s.updated_at,
        s.ended_at,
        s.project_id as Option<ProjectId>,
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
