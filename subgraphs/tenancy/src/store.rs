//! All of tenancy's SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Functions take the transaction first; the resolver that opened it decides whose rows it may see
//! (`kernel::db::Access`) and commits the state change together with its outbox row.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use sqlx::types::Json;
use sqlx::PgPool;

use crate::domain::{EditionStatus, IsolationModel, Period, TenantStatus};
use crate::model::Tenant;
use crate::model::{Edition, FeatureFlag, QuotaDefinition, QuotaTemplate, TenantSubscription};

// ---------------------------------------------------------------------------------------------- tenants

pub struct NewTenant<'a> {
    pub id: &'a TenantId,
    pub display_name: &'a str,
    pub region: &'a str,
    pub edition_id: &'a str,
    pub isolation_model: IsolationModel,
}

pub async fn insert_tenant(tx: &mut Tx, t: &NewTenant<'_>) -> Result<Tenant> {
    sqlx::query_as!(
        Tenant,
        r#"INSERT INTO tenants (tenant_id, display_name, region, edition_id, isolation_model)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING tenant_id AS "id: TenantId", display_name, region, status AS "status: TenantStatus",
                     status_reason, isolation_model AS "isolation_model: IsolationModel", legal_hold, edition_id,
                     provisioned_at, created_at, updated_at"#,
        t.id.as_str(),
        t.display_name,
        t.region,
        t.edition_id,
        t.isolation_model.as_str(),
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("tenants_pkey", || Error::conflict(format!("tenant id `{}` is taken", t.id)))
}

pub async fn tenants_by_id(tx: &mut Tx, ids: &[String]) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as!(
        Tenant,
        r#"SELECT tenant_id AS "id: TenantId", display_name, region, status AS "status: TenantStatus",
                  status_reason, isolation_model AS "isolation_model: IsolationModel", legal_hold, edition_id,
                  provisioned_at, created_at, updated_at
           FROM tenants WHERE tenant_id = ANY($1)"#,
        ids,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Tenants in id order after `after`, optionally of one status (operators only: RLS shows tenants themselves).
pub async fn list_tenants(
    tx: &mut Tx,
    after: Option<&str>,
    limit: i64,
    status: Option<TenantStatus>,
) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as!(
        Tenant,
        r#"SELECT tenant_id AS "id: TenantId", display_name, region, status AS "status: TenantStatus",
                  status_reason, isolation_model AS "isolation_model: IsolationModel", legal_hold, edition_id,
                  provisioned_at, created_at, updated_at
           FROM tenants
           WHERE ($1::text IS NULL OR tenant_id > $1) AND ($2::text IS NULL OR status = $2)
           ORDER BY tenant_id LIMIT $3"#,
        after,
        status.map(TenantStatus::as_str),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Locks a tenant row for a state change; `NOT_FOUND` if it does not exist (or belongs to someone else).
pub async fn lock_tenant(tx: &mut Tx, id: &TenantId) -> Result<Tenant> {
    sqlx::query_as!(
        Tenant,
        r#"SELECT tenant_id AS "id: TenantId", display_name, region, status AS "status: TenantStatus",
                  status_reason, isolation_model AS "isolation_model: IsolationModel", legal_hold, edition_id,
                  provisioned_at, created_at, updated_at
           FROM tenants WHERE tenant_id = $1 FOR UPDATE"#,
        id.as_str(),
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("no tenant `{id}`")))
}

/// Writes a locked tenant's mutable fields back.
pub async fn update_tenant(tx: &mut Tx, t: &Tenant) -> Result<Tenant> {
    Ok(sqlx::query_as!(
        Tenant,
        r#"UPDATE tenants
           SET display_name = $2, status = $3, status_reason = $4, legal_hold = $5, edition_id = $6,
               updated_at = now()
           WHERE tenant_id = $1
           RETURNING tenant_id AS "id: TenantId", display_name, region, status AS "status: TenantStatus",
                     status_reason, isolation_model AS "isolation_model: IsolationModel", legal_hold, edition_id,
                     provisioned_at, created_at, updated_at"#,
        t.id.as_str(),
        t.display_name,
        t.status.as_str(),
        t.status_reason,
        t.legal_hold,
        t.edition_id,
    )
    .fetch_one(&mut **tx)
    .await?)
}

// --------------------------------------------------------------------------------------------- editions

pub async fn editions_by_key(pool: &PgPool, ids: &[String], versions: &[i32]) -> Result<Vec<Edition>> {
    Ok(sqlx::query_as!(
        Edition,
        r#"SELECT e.edition_id AS id, e.version, e.name, e.status AS "status: EditionStatus", e.feature_set,
                  e.quota_template AS "quota_template: Json<QuotaTemplate>", e.created_at, e.updated_at, e.published_at
           FROM editions e JOIN UNNEST($1::text[], $2::int[]) AS k(id, version)
             ON e.edition_id = k.id AND e.version = k.version"#,
        ids,
        versions,
    )
    .fetch_all(pool)
    .await?)
}

/// Editions in (id, version) order after the cursor; drafts only when `include_drafts`.
pub async fn list_editions(
    tx: &mut Tx,
    after: Option<(&str, i32)>,
    limit: i64,
    include_drafts: bool,
) -> Result<Vec<Edition>> {
    let (after_id, after_version) = after.unzip();
    Ok(sqlx::query_as!(
        Edition,
        r#"SELECT edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                  quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at
           FROM editions
           WHERE ($1::text IS NULL OR (edition_id, version) > ($1, $2::int))
             AND ($3 OR status <> 'Draft')
           ORDER BY edition_id, version LIMIT $4"#,
        after_id,
        after_version,
        include_drafts,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The highest version of an edition, locked for update.
pub async fn lock_latest_edition(tx: &mut Tx, id: &str) -> Result<Option<Edition>> {
    Ok(sqlx::query_as!(
        Edition,
        r#"SELECT edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                  quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at
           FROM editions WHERE edition_id = $1 ORDER BY version DESC LIMIT 1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// One edition version, locked for update.
pub async fn lock_edition(tx: &mut Tx, id: &str, version: i32) -> Result<Edition> {
    sqlx::query_as!(
        Edition,
        r#"SELECT edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                  quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at
           FROM editions WHERE edition_id = $1 AND version = $2 FOR UPDATE"#,
        id,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("no edition `{id}` version {version}")))
}

/// The newest published version of an edition, share-locked so it cannot be retired while a subscription
/// to it is being written (retiring takes the row lock `FOR UPDATE`).
pub async fn share_latest_published(tx: &mut Tx, id: &str) -> Result<Edition> {
    sqlx::query_as!(
        Edition,
        r#"SELECT edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                  quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at
           FROM editions WHERE edition_id = $1 AND status = 'Published'
           ORDER BY version DESC LIMIT 1 FOR SHARE"#,
        id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found(format!("edition `{id}` has no published version")))
}

pub async fn insert_edition(
    tx: &mut Tx,
    id: &str,
    version: i32,
    name: &str,
    feature_set: &[String],
    quota_template: &Json<QuotaTemplate>,
) -> Result<Edition> {
    sqlx::query_as!(
        Edition,
        r#"INSERT INTO editions (edition_id, version, name, feature_set, quota_template)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                     quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at"#,
        id,
        version,
        name,
        feature_set,
        quota_template as _,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("editions_pkey", || Error::conflict(format!("edition `{id}` version {version} exists")))
}

/// Writes a locked edition's mutable fields back; the database refuses changes to published content.
pub async fn update_edition(tx: &mut Tx, e: &Edition) -> Result<Edition> {
    sqlx::query_as!(
        Edition,
        r#"UPDATE editions
           SET name = $3, status = $4, feature_set = $5, quota_template = $6, updated_at = now(),
               published_at = CASE WHEN $4 = 'Published' AND published_at IS NULL THEN now() ELSE published_at END
           WHERE edition_id = $1 AND version = $2
           RETURNING edition_id AS id, version, name, status AS "status: EditionStatus", feature_set,
                     quota_template AS "quota_template: Json<QuotaTemplate>", created_at, updated_at, published_at"#,
        e.id,
        e.version,
        e.name,
        e.status.as_str(),
        &e.feature_set,
        &e.quota_template as _,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("editions_immutable", || {
        Error::conflict(format!("edition `{}` version {} is {} and immutable", e.id, e.version, e.status.as_str()))
    })
}

/// Active subscriptions on an edition version, across tenants (platform transactions only).
pub async fn active_subscriptions_on(tx: &mut Tx, id: &str, version: i32) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM subscriptions
           WHERE edition_id = $1 AND edition_version = $2 AND status = 'Active'"#,
        id,
        version,
    )
    .fetch_one(&mut **tx)
    .await?)
}

// ---------------------------------------------------------------------------------------- subscriptions

pub async fn subscriptions_of(tx: &mut Tx, tenants: &[String]) -> Result<Vec<TenantSubscription>> {
    Ok(sqlx::query_as!(
        TenantSubscription,
        r#"SELECT tenant_id AS "tenant_id: TenantId", subscription_id AS id, edition_id, edition_version,
                  status AS "status: _", starts_at, ends_at
           FROM subscriptions WHERE tenant_id = ANY($1)
           ORDER BY tenant_id, starts_at DESC, subscription_id"#,
        tenants,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Ends the tenant's active subscription, if any, and starts one on `edition`.
pub async fn switch_subscription(tx: &mut Tx, tenant: &TenantId, edition: &Edition) -> Result<()> {
    end_subscription(tx, tenant).await?;
    sqlx::query!(
        "INSERT INTO subscriptions (tenant_id, subscription_id, edition_id, edition_version) VALUES ($1, $2, $3, $4)",
        tenant.as_str(),
        uuid::Uuid::now_v7(),
        edition.id,
        edition.version,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn end_subscription(tx: &mut Tx, tenant: &TenantId) -> Result<()> {
    sqlx::query!(
        "UPDATE subscriptions SET status = 'Ended', ends_at = now() WHERE tenant_id = $1 AND status = 'Active'",
        tenant.as_str(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------- quotas

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

// ----------------------------------------------------------------------------------------------- flags

/// Every flag definition: platform catalogue rows, readable without a tenant.
pub async fn all_flags(pool: &PgPool) -> Result<Vec<FeatureFlag>> {
    Ok(sqlx::query_as!(
        FeatureFlag,
        r#"SELECT flag_key AS key, description, enabled, rollout_percent, editions, allow_tenants, deny_tenants,
                  version, updated_at
           FROM feature_flags ORDER BY flag_key"#,
    )
    .fetch_all(pool)
    .await?)
}

pub async fn upsert_flag(tx: &mut Tx, f: &FeatureFlag) -> Result<FeatureFlag> {
    Ok(sqlx::query_as!(
        FeatureFlag,
        r#"INSERT INTO feature_flags (flag_key, description, enabled, rollout_percent, editions, allow_tenants,
                                      deny_tenants)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (flag_key) DO UPDATE
           SET description = EXCLUDED.description, enabled = EXCLUDED.enabled,
               rollout_percent = EXCLUDED.rollout_percent, editions = EXCLUDED.editions,
               allow_tenants = EXCLUDED.allow_tenants, deny_tenants = EXCLUDED.deny_tenants,
               version = feature_flags.version + 1, updated_at = now()
           RETURNING flag_key AS key, description, enabled, rollout_percent, editions, allow_tenants, deny_tenants,
                     version, updated_at"#,
        f.key,
        f.description,
        f.enabled,
        f.rollout_percent,
        &f.editions,
        &f.allow_tenants,
        &f.deny_tenants,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn delete_flag(tx: &mut Tx, key: &str) -> Result<bool> {
    Ok(sqlx::query!("DELETE FROM feature_flags WHERE flag_key = $1", key).execute(&mut **tx).await?.rows_affected()
        == 1)
}

/// Lets a consumer's tenant transaction act as a platform operator (for commands operators send by broker).
pub async fn elevate_to_platform(tx: &mut Tx) -> Result<()> {
    sqlx::query!("SELECT set_config('app.platform', 'on', true)").fetch_one(&mut **tx).await?;
    Ok(())
}
