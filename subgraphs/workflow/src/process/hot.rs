//! The projection's hot copy in Redis: each instance's state as the projector last wrote it, for dashboards
//! that read many instances at once (`processStates`). The projector writes a batch's states after its
//! transaction commits (one pipelined round trip), so Redis never holds a state PostgreSQL does not;
//! `rebuildProcessState` drops every copy and the rebuild writes them again. Not the system of record: a
//! miss (expired, never written, Redis down) reads the table, and a copy expires after [`TTL`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::cache::{kind, Cache};
use kernel::TenantId;
use serde::{Deserialize, Serialize};

use super::{ProcessState, Status, StepState};
use crate::ids::{InstanceId, ProjectId};

/// How long a copy is kept without being written again.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// A state as Redis holds it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Copy {
    tenant_id: String,
    instance_id: InstanceId,
    definition_key: String,
    definition_version: i32,
    project_id: Option<ProjectId>,
    status: String,
    steps: BTreeMap<String, StepState>,
    version: i64,
    last_event_type: String,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<&ProcessState> for Copy {
    fn from(s: &ProcessState) -> Self {
        Self {
            tenant_id: s.tenant_id.as_str().to_owned(),
            instance_id: s.instance_id,
            definition_key: s.definition_key.clone(),
            definition_version: s.definition_version,
            project_id: s.project_id,
            status: s.status.as_str().to_owned(),
            steps: s.steps.clone(),
            version: s.version,
            last_event_type: s.last_event_type.clone(),
            started_at: s.started_at,
            updated_at: s.updated_at,
            ended_at: s.ended_at,
        }
    }
}

impl Copy {
    fn state(self) -> Option<ProcessState> {
        Some(ProcessState {
            tenant_id: TenantId::try_from(self.tenant_id).ok()?,
            instance_id: self.instance_id,
            definition_key: self.definition_key,
            definition_version: self.definition_version,
            project_id: self.project_id,
            status: Status::parse(&self.status)?,
            steps: self.steps,
            version: self.version,
            last_event_type: self.last_event_type,
            started_at: self.started_at,
            updated_at: self.updated_at,
            ended_at: self.ended_at,
        })
    }
}

fn key(cache: &Cache, tenant: &TenantId, instance: InstanceId) -> String {
    cache.key(tenant, kind::PROCESS_STATE, &instance.to_string())
}

/// Writes the states' copies in one round trip; a failure is logged (the table has them).
pub async fn write(cache: &Cache, states: &[&ProcessState]) {
    if states.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for s in states {
        let Ok(body) = serde_json::to_string(&Copy::from(*s)) else { continue };
        pipe.set_ex(key(cache, &s.tenant_id, s.instance_id), body, TTL.as_secs()).ignore();
    }
    if let Err(e) = pipe.query_async::<()>(&mut cache.connection()).await {
        tracing::warn!(error = %e, states = states.len(), "could not write process states' hot copies; readers use the table");
    }
}

/// The copies of `ids` (the tenant's), in order; `None` where there is none.
pub async fn read(cache: &Cache, tenant: &TenantId, ids: &[InstanceId]) -> Vec<Option<ProcessState>> {
    if ids.is_empty() {
        return Vec::new();
    }
    let keys: Vec<String> = ids.iter().map(|i| key(cache, tenant, *i)).collect();
    let raw: Vec<Option<String>> = match redis::cmd("MGET").arg(&keys).query_async(&mut cache.connection()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "could not read process states' hot copies; reading the table");
            vec![None; ids.len()]
        }
    };
    raw.into_iter()
        .map(|r| r.and_then(|s| serde_json::from_str::<Copy>(&s).ok()).and_then(Copy::state))
        .map(|s| s.filter(|s| s.tenant_id == *tenant))
        .collect()
}

/// Drops every tenant's copies (before a rebuild writes them again); how many.
pub async fn clear(cache: &Cache) -> kernel::Result<usize> {
    let mut conn = cache.connection();
    let pattern = cache.pattern(kind::PROCESS_STATE, "*");
    let mut cursor: u64 = 0;
    let mut dropped = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| kernel::Error::internal(anyhow::anyhow!("scanning the hot copies: {e}")))?;
        if !keys.is_empty() {
            dropped += keys.len();
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(|e| kernel::Error::internal(anyhow::anyhow!("dropping the hot copies: {e}")))?;
        }
        if next == 0 {
            return Ok(dropped);
        }
        cursor = next;
    }
}
