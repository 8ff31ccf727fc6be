//! All of identity's SQL, checked at compile time.

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use crate::model::{ApiToken, OAuthClient, Principal, Role};

pub async fn insert_principal(
    tx: &mut Tx,
    tenant: &TenantId,
    kind: &str,
    display_name: &str,
    email: Option<&str>,
) -> Result<Principal> {
    sqlx::query_as!(
        Principal,
        r#"INSERT INTO principals (tenant_id, principal_id, kind, display_name, email) VALUES ($1, $2, $3, $4, $5)
           RETURNING tenant_id AS "tenant_id: TenantId", principal_id AS id, kind, display_name, email, status,
                     created_at, updated_at"#,
        tenant.as_str(),
        uuid::Uuid::now_v7(),
        kind,
        display_name,
        email,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("principals_email", || Error::conflict("a principal with this email exists"))
}

pub async fn principals_by_id(tx: &mut Tx, ids: &[uuid::Uuid]) -> Result<Vec<Principal>> {
    Ok(sqlx::query_as!(
        Principal,
        r#"SELECT tenant_id AS "tenant_id: TenantId", principal_id AS id, kind, display_name, email, status,
                  created_at, updated_at
           FROM principals WHERE principal_id = ANY($1)"#,
        ids,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn list_principals(tx: &mut Tx, after: Option<uuid::Uuid>, limit: i64) -> Result<Vec<Principal>> {
    Ok(sqlx::query_as!(
        Principal,
        r#"SELECT tenant_id AS "tenant_id: TenantId", principal_id AS id, kind, display_name, email, status,
                  created_at, updated_at
           FROM principals WHERE ($1::uuid IS NULL OR principal_id > $1) ORDER BY principal_id LIMIT $2"#,
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn disable_principal(tx: &mut Tx, id: uuid::Uuid) -> Result<Principal> {
    sqlx::query_as!(
        Principal,
        r#"UPDATE principals SET status = 'Disabled', updated_at = now() WHERE principal_id = $1
           RETURNING tenant_id AS "tenant_id: TenantId", principal_id AS id, kind, display_name, email, status,
                     created_at, updated_at"#,
        id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no such principal"))
}

pub async fn any_principal(tx: &mut Tx) -> Result<bool> {
    Ok(sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM principals) AS "e!""#).fetch_one(&mut **tx).await?)
}

pub async fn upsert_role(
    tx: &mut Tx,
    tenant: &TenantId,
    key: &str,
    description: &str,
    permissions: &[String],
) -> Result<Role> {
    Ok(sqlx::query_as!(
        Role,
        r#"INSERT INTO roles (tenant_id, role_key, description, permissions) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, role_key)
           DO UPDATE SET description = EXCLUDED.description, permissions = EXCLUDED.permissions, updated_at = now()
           RETURNING role_key AS key, description, permissions, updated_at"#,
        tenant.as_str(),
        key,
        description,
        permissions,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn roles(tx: &mut Tx) -> Result<Vec<Role>> {
    Ok(sqlx::query_as!(
        Role,
        "SELECT role_key AS key, description, permissions, updated_at FROM roles ORDER BY role_key"
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn bind_role(tx: &mut Tx, tenant: &TenantId, principal: uuid::Uuid, role: &str) -> Result<()> {
    sqlx::query!(
        "INSERT INTO role_bindings (tenant_id, principal_id, role_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        tenant.as_str(),
        principal,
        role,
    )
    .execute(&mut **tx)
    .await
    .on_constraint("role_bindings_principal_fkey", || Error::not_found("no such principal"))
    .on_constraint("role_bindings_role_fkey", || Error::not_found(format!("no role `{role}`")))?;
    Ok(())
}

pub async fn unbind_role(tx: &mut Tx, principal: uuid::Uuid, role: &str) -> Result<bool> {
    Ok(sqlx::query!("DELETE FROM role_bindings WHERE principal_id = $1 AND role_key = $2", principal, role)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1)
}

/// The permissions a principal holds through its role bindings, in its own tenant.
pub async fn effective_permissions(tx: &mut Tx, principal: uuid::Uuid) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT unnest(r.permissions) AS "p!"
           FROM role_bindings b JOIN roles r ON r.tenant_id = b.tenant_id AND r.role_key = b.role_key
           JOIN principals p ON p.tenant_id = b.tenant_id AND p.principal_id = b.principal_id
           WHERE b.principal_id = $1 AND p.status = 'Active' ORDER BY 1"#,
        principal,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn insert_client(
    tx: &mut Tx,
    tenant: &TenantId,
    client_id: &str,
    principal: uuid::Uuid,
    secret_hash: &str,
    scopes: &[String],
) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"INSERT INTO oauth_clients (tenant_id, client_id, principal_id, secret_hash, scopes) VALUES ($1, $2, $3, $4, $5)
           RETURNING client_id, principal_id, scopes, created_at, secret_rotated_at, revoked_at"#,
        tenant.as_str(),
        client_id,
        principal,
        secret_hash,
        scopes,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("oauth_clients_principal_fkey", || Error::not_found("no such principal"))
}

pub struct ClientSecret {
    pub principal_id: uuid::Uuid,
    pub secret_hash: String,
    pub scopes: Vec<String>,
}

/// An active client's secret hash, for the token endpoint.
pub async fn active_client(tx: &mut Tx, client_id: &str) -> Result<Option<ClientSecret>> {
    Ok(sqlx::query_as!(
        ClientSecret,
        "SELECT principal_id, secret_hash, scopes FROM oauth_clients WHERE client_id = $1 AND revoked_at IS NULL",
        client_id,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn clients(tx: &mut Tx) -> Result<Vec<OAuthClient>> {
    Ok(sqlx::query_as!(
        OAuthClient,
        "SELECT client_id, principal_id, scopes, created_at, secret_rotated_at, revoked_at FROM oauth_clients ORDER BY client_id",
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn rotate_client_secret(tx: &mut Tx, client_id: &str, secret_hash: &str) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"UPDATE oauth_clients SET secret_hash = $2, secret_rotated_at = now() WHERE client_id = $1 AND revoked_at IS NULL
           RETURNING client_id, principal_id, scopes, created_at, secret_rotated_at, revoked_at"#,
        client_id,
        secret_hash,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no active client with this id"))
}

pub async fn revoke_client(tx: &mut Tx, client_id: &str) -> Result<OAuthClient> {
    sqlx::query_as!(
        OAuthClient,
        r#"UPDATE oauth_clients SET revoked_at = coalesce(revoked_at, now()) WHERE client_id = $1
           RETURNING client_id, principal_id, scopes, created_at, secret_rotated_at, revoked_at"#,
        client_id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no client with this id"))
}

pub async fn insert_api_token(
    tx: &mut Tx,
    tenant: &TenantId,
    principal: uuid::Uuid,
    name: &str,
    token_hash: &str,
    scopes: &[String],
    expires_at: DateTime<Utc>,
) -> Result<ApiToken> {
    sqlx::query_as!(
        ApiToken,
        r#"INSERT INTO api_tokens (tenant_id, token_id, principal_id, name, token_hash, scopes, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING token_id AS id, principal_id, name, scopes, expires_at, revoked_at, last_used_at, created_at"#,
        tenant.as_str(),
        uuid::Uuid::now_v7(),
        principal,
        name,
        token_hash,
        scopes,
        expires_at,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("api_tokens_principal_fkey", || Error::not_found("no such principal"))
}

pub async fn api_tokens(tx: &mut Tx) -> Result<Vec<ApiToken>> {
    Ok(sqlx::query_as!(
        ApiToken,
        r#"SELECT token_id AS id, principal_id, name, scopes, expires_at, revoked_at, last_used_at, created_at
           FROM api_tokens ORDER BY created_at DESC"#,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Revokes a token; returns its hash, for the revocation event.
pub async fn revoke_api_token(tx: &mut Tx, id: uuid::Uuid) -> Result<String> {
    sqlx::query_scalar!(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_id = $1 RETURNING token_hash",
        id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no such API token"))
}

pub struct TokenRow {
    pub tenant_id: String,
    pub token_id: uuid::Uuid,
    pub principal_id: uuid::Uuid,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Looks a token up by hash across tenants: only a `token-validation` transaction may.
pub async fn api_token_by_hash(tx: &mut Tx, hash: &str) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as!(
        TokenRow,
        r#"SELECT tenant_id, token_id, principal_id, scopes, expires_at, revoked_at IS NOT NULL AS "revoked!"
           FROM api_tokens WHERE token_hash = $1"#,
        hash,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn touch_api_tokens(tx: &mut Tx, ids: &[uuid::Uuid], at: &[DateTime<Utc>]) -> Result<()> {
    sqlx::query!(
        r#"UPDATE api_tokens t SET last_used_at = greatest(t.last_used_at, u.at)
           FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE t.token_id = u.id"#,
        ids,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Opens the token-validation transaction (cross-tenant reads of `api_tokens` only).
pub async fn validation_tx(db: &kernel::db::Db) -> Result<Tx> {
    let mut tx = db.shared().begin().await?;
    sqlx::query!("SELECT set_config('app.system', 'token-validation', true)").fetch_one(&mut *tx).await?;
    Ok(tx)
}

/// Serialises bootstraps: two at once would both find the system empty.
pub async fn bootstrap_lock(tx: &mut Tx) -> Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('identity-bootstrap'))").fetch_one(&mut **tx).await?;
    Ok(())
}
