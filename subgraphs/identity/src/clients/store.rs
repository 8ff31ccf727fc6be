//! OAuth clients' SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Every statement on a tenant-scoped table filters on `tenant_id` itself: row-level security (set by the
//! transaction) already limits the rows, and the explicit filter is the second wall, and what lets a
//! distributed database (Citus) route the statement to the tenant's shard.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::OAuthClient;
use crate::ids::PrincipalId;

pub async fn insert_client(
    tx: &mut Tx,
    tenant: &TenantId,
    client_id: &str,
    principal: PrincipalId,
    secret_hash: &str,
    scopes: &[String],
) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"INSERT INTO oauth_clients (tenant_id, client_id, principal_id, secret_hash, scopes) VALUES ($1, $2, $3, $4, $5)
           RETURNING client_id, principal_id AS "principal_id: PrincipalId", scopes, created_at, secret_rotated_at,
                     revoked_at"#,
        tenant.as_str(),
        client_id,
        principal as PrincipalId,
        secret_hash,
        scopes,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("oauth_clients_principal_fkey", || Error::not_found("no such principal"))
}

pub struct ClientSecret {
    pub principal_id: PrincipalId,
    pub secret_hash: String,
    pub scopes: Vec<String>,
}

/// An active client's secret hash, for the token endpoint.
pub async fn active_client(tx: &mut Tx, tenant: &TenantId, client_id: &str) -> Result<Option<ClientSecret>> {
    Ok(sqlx::query_as!(
        ClientSecret,
        r#"SELECT principal_id AS "principal_id: PrincipalId", secret_hash, scopes
           FROM oauth_clients WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL"#,
        tenant.as_str(),
        client_id,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn clients(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<OAuthClient>> {
    Ok(sqlx::query_as!(
        OAuthClient,
        r#"SELECT client_id, principal_id AS "principal_id: PrincipalId", scopes, created_at, secret_rotated_at,
                  revoked_at
           FROM oauth_clients WHERE tenant_id = $1 ORDER BY client_id"#,
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn rotate_client_secret(
    tx: &mut Tx,
    tenant: &TenantId,
    client_id: &str,
    secret_hash: &str,
) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"UPDATE oauth_clients SET secret_hash = $3, secret_rotated_at = now()
           WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL
           RETURNING client_id, principal_id AS "principal_id: PrincipalId", scopes, created_at, secret_rotated_at,
                     revoked_at"#,
        tenant.as_str(),
        client_id,
        secret_hash,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no active client with this id"))
}

pub async fn revoke_client(tx: &mut Tx, tenant: &TenantId, client_id: &str) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"UPDATE oauth_clients SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND client_id = $2
           RETURNING client_id, principal_id AS "principal_id: PrincipalId", scopes, created_at, secret_rotated_at,
                     revoked_at"#,
        tenant.as_str(),
        client_id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no client with this id"))
}
