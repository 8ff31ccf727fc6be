//! Quotas' SQL: definitions, per-period usage.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Result, TenantId};

use crate::domain::Period;
use crate::model::QuotaDefinition;

pub async fn upsert_quota(tx: &mut Tx, tenant: &TenantId, def: &QuotaDefinition) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO quota_definitions (tenant_id, quota_key, limit_value, period) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, quota_key)
           DO UPDATE SET limit_value = EXCLUDED.limit_value, period = EXCLUDED.period, updated_at = now()"#,
        tenant.as_str(),
        def.key,
        def.limit,
        def.period.as_str(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn quota_definition(tx: &mut Tx, tenant: &TenantId, key: &str) -> Result<Option<QuotaDefinition>> {
    Ok(sqlx::query_as!(
        QuotaDefinition,
        r#"SELECT quota_key AS key, limit_value AS limit, period AS "period: Period"
           FROM quota_definitions WHERE tenant_id = $1 AND quota_key = $2"#,
        tenant.as_str(),
        key,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub struct TenantQuota {
    pub tenant_id: TenantId,
    pub def: QuotaDefinition,
}

pub async fn quotas_of(tx: &mut Tx, tenants: &[String]) -> Result<Vec<TenantQuota>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id: TenantId", quota_key, limit_value, period AS "period: Period"
           FROM quota_definitions WHERE tenant_id = ANY($1) ORDER BY tenant_id, quota_key"#,
        tenants,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TenantQuota {
            tenant_id: r.tenant_id,
            def: QuotaDefinition { key: r.quota_key, limit: r.limit_value, period: r.period },
        })
        .collect())
}

/// Usage of many (tenant, quota, period start) triples at once; missing triples have used nothing.
pub async fn usage_of(
    tx: &mut Tx,
    tenants: &[String],
    keys: &[String],
    starts: &[DateTime<Utc>],
) -> Result<Vec<(String, String, DateTime<Utc>, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT b.tenant_id, b.quota_key, b.period_start, b.used
           FROM quota_balances b JOIN UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS k(t, q, s)
             ON b.tenant_id = k.t AND b.quota_key = k.q AND b.period_start = k.s"#,
        tenants,
        keys,
        starts,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.quota_key, r.period_start, r.used)).collect())
}

pub async fn quota_used(tx: &mut Tx, tenant: &TenantId, key: &str, period_start: DateTime<Utc>) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        "SELECT used FROM quota_balances WHERE tenant_id = $1 AND quota_key = $2 AND period_start = $3",
        tenant.as_str(),
        key,
        period_start,
    )
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or(0))
}

/// Adds `amount` to the period's balance unless that would pass the limit *stored in PostgreSQL* (read in the
/// same statement, never taken from a cache): `None` when it would.
pub async fn add_usage(
    tx: &mut Tx,
    tenant: &TenantId,
    key: &str,
    period_start: DateTime<Utc>,
    amount: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO quota_balances (tenant_id, quota_key, period_start, used)
           SELECT d.tenant_id, d.quota_key, $3, $4 FROM quota_definitions d
           WHERE d.tenant_id = $1 AND d.quota_key = $2 AND $4 <= d.limit_value
           ON CONFLICT (tenant_id, quota_key, period_start)
           DO UPDATE SET used = quota_balances.used + EXCLUDED.used, updated_at = now()
           WHERE quota_balances.used + EXCLUDED.used <= (
               SELECT limit_value FROM quota_definitions
               WHERE tenant_id = quota_balances.tenant_id AND quota_key = quota_balances.quota_key)
           RETURNING used"#,
        tenant.as_str(),
        key,
        period_start,
        amount,
    )
    .fetch_optional(&mut **tx)
    .await?)
}
