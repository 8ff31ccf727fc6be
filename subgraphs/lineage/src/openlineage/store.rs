//! OpenLineage's own SQL: events as received.

use kernel::db::Tx;
use kernel::{Result, TenantId};

use super::Submitted;

/// Keeps `items` (all `tenant`'s) as received, in one statement; once each, however often written.
pub async fn insert_events(tx: &mut Tx, tenant: &TenantId, items: &[&Submitted]) -> Result<()> {
    let ids: Vec<uuid::Uuid> = items.iter().map(|s| s.received_id).collect();
    let kinds: Vec<&str> = items.iter().map(|s| s.plan.kind).collect();
    let types: Vec<Option<&str>> = items.iter().map(|s| s.plan.event_type.as_deref()).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> = items.iter().map(|s| s.plan.event_time).collect();
    let runs: Vec<Option<uuid::Uuid>> = items.iter().map(|s| s.plan.run_id).collect();
    let jobs: Vec<Option<&str>> = items.iter().map(|s| s.plan.job.as_deref()).collect();
    let producers: Vec<&str> = items.iter().map(|s| s.plan.producer.as_str()).collect();
    let raws: Vec<serde_json::Value> = items.iter().map(|s| s.raw.clone()).collect();
    sqlx::query!(
        "INSERT INTO openlineage_events (tenant_id, received_id, event_kind, event_type, event_time, run_id, job,
                                         producer, event)
         SELECT $1, e.id, e.kind, e.type, e.time, e.run, e.job, e.producer, e.raw
           FROM unnest($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::uuid[], $7::text[], $8::text[],
                       $9::jsonb[]) AS e(id, kind, type, time, run, job, producer, raw)
         ON CONFLICT DO NOTHING",
        tenant.as_str(),
        &ids,
        &kinds as &[&str],
        &types as &[Option<&str>],
        &times,
        &runs as &[Option<uuid::Uuid>],
        &jobs as &[Option<&str>],
        &producers as &[&str],
        &raws,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
