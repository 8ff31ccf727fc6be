//! Tenants' SQL: rows, lifecycle, the platform elevation consumers use.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use crate::domain::{IsolationModel, TenantStatus};
use crate::model::Tenant;

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

/// Lets a consumer's tenant transaction act as a platform operator (for commands operators send by broker).
pub async fn elevate_to_platform(tx: &mut Tx) -> Result<()> {
    sqlx::query!("SELECT set_config('app.platform', 'on', true)").fetch_one(&mut **tx).await?;
    Ok(())
}
