//! Editions' and subscriptions' SQL.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use sqlx::types::Json;
use sqlx::PgPool;

use crate::domain::EditionStatus;
use crate::model::{Edition, QuotaTemplate, TenantSubscription};

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
        crate::model::SubscriptionId::new_v7() as crate::model::SubscriptionId,
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
