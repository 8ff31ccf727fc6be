//! Decisions' SQL: appends (one statement for any number of rows, of any tenants) and reads. Nothing here
//! updates or deletes; the app role could not (no grant, and a trigger), and retention goes through
//! `governance_decisions_expire`.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};
use serde_json::Value;

use super::Decision;
use crate::ids::{DecisionId, PolicyId};
use crate::policies::Effect;

/// Appends `rows` — of any tenants — in one statement (`governance_append_decisions`, which inserts each
/// tenant's rows under row-level security for it). Their events go through the kernel's outbox.
pub async fn append(tx: &mut Tx, rows: &[&Decision]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let tenants: Vec<&str> = rows.iter().map(|d| d.tenant_id.as_str()).collect();
    let ids: Vec<DecisionId> = rows.iter().map(|d| d.decision_id).collect();
    let at: Vec<DateTime<Utc>> = rows.iter().map(|d| d.decided_at).collect();
    let principals: Vec<&str> = rows.iter().map(|d| d.principal.as_str()).collect();
    let actions: Vec<&str> = rows.iter().map(|d| d.action.as_str()).collect();
    let resources: Vec<&str> = rows.iter().map(|d| d.resource.as_str()).collect();
    let contexts: Vec<&Value> = rows.iter().map(|d| &d.context).collect();
    let versions: Vec<i64> = rows.iter().map(|d| d.policy_set_version).collect();
    let hashes: Vec<&str> = rows.iter().map(|d| d.policy_set_hash.as_str()).collect();
    // Arrays of arrays are not rectangular in general: the deciding policies and errors travel as JSON.
    let determining: Vec<Value> = rows.iter().map(|d| serde_json::json!(d.determining_policies)).collect();
    let errors: Vec<Value> = rows.iter().map(|d| serde_json::json!(d.errors)).collect();
    let effects: Vec<&str> = rows.iter().map(|d| d.effect.as_str()).collect();
    let traces: Vec<&str> = rows.iter().map(|d| d.trace_id.as_str()).collect();
    let correlations: Vec<&str> = rows.iter().map(|d| d.correlation_id.as_str()).collect();
    sqlx::query!(
        "SELECT governance_append_decisions($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &tenants as &[&str],
        &ids as &[DecisionId],
        &at,
        &principals as &[&str],
        &actions as &[&str],
        &resources as &[&str],
        &contexts as &[&Value],
        &versions,
        &hashes as &[&str],
        &determining,
        &errors,
        &effects as &[&str],
        &traces as &[&str],
        &correlations as &[&str],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_id(tx: &mut Tx, tenant: &TenantId, id: DecisionId) -> Result<Option<Decision>> {
    Ok(sqlx::query_as!(
        Decision,
        r#"SELECT tenant_id AS "tenant_id: TenantId", decision_id, decided_at, principal, action, resource, context,
                  policy_set_version, policy_set_hash, determining_policies AS "determining_policies: Vec<PolicyId>", errors, effect AS "effect: Effect",
                  trace_id, correlation_id
           FROM decisions WHERE tenant_id = $1 AND decision_id = $2"#,
        tenant.as_str(),
        id as DecisionId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Newest first (ids are UUIDv7: time-ordered), after `before` (an id), within [from, to).
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    effect: Option<Effect>,
    before: Option<DecisionId>,
    limit: i64,
) -> Result<Vec<Decision>> {
    Ok(sqlx::query_as!(
        Decision,
        r#"SELECT tenant_id AS "tenant_id: TenantId", decision_id, decided_at, principal, action, resource, context,
                  policy_set_version, policy_set_hash, determining_policies AS "determining_policies: Vec<PolicyId>", errors, effect AS "effect: Effect",
                  trace_id, correlation_id
           FROM decisions
           WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR decided_at >= $2)
             AND ($3::timestamptz IS NULL OR decided_at < $3) AND ($4::text IS NULL OR effect = $4)
             AND ($5::uuid IS NULL OR decision_id < $5)
           ORDER BY decision_id DESC
           LIMIT $6"#,
        tenant.as_str(),
        from,
        to,
        effect.map(|e| e.as_str()),
        before as Option<DecisionId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Deletes up to `batch` decisions older than `keep_years` (never a tenant's on legal hold); how many.
pub async fn expire(tx: &mut Tx, keep_years: i32, batch: i32) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT governance_decisions_expire(make_interval(years => $1), $2) AS "n!""#,
        keep_years,
        batch,
    )
    .fetch_one(&mut **tx)
    .await?)
}
