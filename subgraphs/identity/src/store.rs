//! All of identity's SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Functions take the transaction and then the tenant whose rows they touch, and every statement on a
//! tenant-scoped table filters on `tenant_id` itself: row-level security (set by the transaction) already
//! limits the rows, and the explicit filter is the second wall, and what lets a distributed database (Citus)
//! route the statement to the tenant's shard. The exceptions say why where they are: the cross-tenant token
//! lookup by hash ([`api_token_by_hash`]) and bootstrap's emptiness check ([`any_principal`]).

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use crate::domain::{PrincipalKind, PrincipalStatus};
use crate::ids::PrincipalId;
use crate::model::{ApiToken, OAuthClient, Principal, Role};

// ------------------------------------------------------------------------------------------- principals

pub async fn insert_principal(
    tx: &mut Tx,
    tenant: &TenantId,
    kind: PrincipalKind,
    display_name: &str,
    email: Option<&str>,
) -> Result<Principal> {
    sqlx::query_as!(
        Principal,
        r#"INSERT INTO principals (tenant_id, principal_id, kind, display_name, email) VALUES ($1, $2, $3, $4, $5)
           RETURNING tenant_id AS "tenant_id: TenantId", principal_id AS "id: PrincipalId",
                     kind AS "kind: PrincipalKind", display_name, email, status AS "status: PrincipalStatus",
                     created_at, updated_at"#,
        tenant.as_str(),
        PrincipalId::new_v7() as PrincipalId,
        kind.as_str(),
        display_name,
        email,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("principals_email", || Error::conflict("a principal with this email exists"))
}

pub async fn principals_by_id(tx: &mut Tx, tenant: &TenantId, ids: &[PrincipalId]) -> Result<Vec<Principal>> {
    Ok(sqlx::query_as!(
        Principal,
        r#"SELECT tenant_id AS "tenant_id: TenantId", principal_id AS "id: PrincipalId",
                  kind AS "kind: PrincipalKind", display_name, email, status AS "status: PrincipalStatus",
                  created_at, updated_at
           FROM principals WHERE tenant_id = $1 AND principal_id = ANY($2)"#,
        tenant.as_str(),
        ids as &[PrincipalId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// A tenant's principals in id order after `after`.
pub async fn list_principals(
    tx: &mut Tx,
    tenant: &TenantId,
    after: Option<PrincipalId>,
    limit: i64,
) -> Result<Vec<Principal>> {
    Ok(sqlx::query_as!(
        Principal,
        r#"SELECT tenant_id AS "tenant_id: TenantId", principal_id AS "id: PrincipalId",
                  kind AS "kind: PrincipalKind", display_name, email, status AS "status: PrincipalStatus",
                  created_at, updated_at
           FROM principals
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR principal_id > $2)
           ORDER BY principal_id LIMIT $3"#,
        tenant.as_str(),
        after as Option<PrincipalId>,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn disable_principal(tx: &mut Tx, tenant: &TenantId, id: PrincipalId) -> Result<Principal> {
    sqlx::query_as!(
        Principal,
        r#"UPDATE principals SET status = 'Disabled', updated_at = now() WHERE tenant_id = $1 AND principal_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", principal_id AS "id: PrincipalId",
                     kind AS "kind: PrincipalKind", display_name, email, status AS "status: PrincipalStatus",
                     created_at, updated_at"#,
        tenant.as_str(),
        id as PrincipalId,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no such principal"))
}

/// Whether any principal exists yet: bootstrap's check that it runs on an empty system. The one statement
/// here without a tenant parameter besides the token lookup: it is no tenant's query but bootstrap's, run
/// only in bootstrap's own platform transaction under [`bootstrap_lock`], and row-level security limits it
/// to the platform's principals — exactly the operators a second bootstrap would duplicate.
pub async fn any_principal(tx: &mut Tx) -> Result<bool> {
    Ok(sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM principals) AS "e!""#).fetch_one(&mut **tx).await?)
}

// ------------------------------------------------------------------------------------------------ roles

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

pub async fn roles(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<Role>> {
    Ok(sqlx::query_as!(
        Role,
        "SELECT role_key AS key, description, permissions, updated_at FROM roles WHERE tenant_id = $1 ORDER BY role_key",
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// A role bound to a principal.
pub struct BoundRole {
    pub principal_id: PrincipalId,
    pub role: Role,
}

/// The roles bound to each of `principals`, in (principal, role key) order: one statement for any number
/// of principals (the roles loader's batch).
pub async fn roles_of(tx: &mut Tx, tenant: &TenantId, principals: &[PrincipalId]) -> Result<Vec<BoundRole>> {
    let rows = sqlx::query!(
        r#"SELECT b.principal_id AS "principal_id: PrincipalId", r.role_key, r.description, r.permissions,
                  r.updated_at
           FROM role_bindings b JOIN roles r ON r.tenant_id = b.tenant_id AND r.role_key = b.role_key
           WHERE b.tenant_id = $1 AND r.tenant_id = $1 AND b.principal_id = ANY($2)
           ORDER BY b.principal_id, r.role_key"#,
        tenant.as_str(),
        principals as &[PrincipalId],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BoundRole {
            principal_id: r.principal_id,
            role: Role {
                key: r.role_key,
                description: r.description,
                permissions: r.permissions,
                updated_at: r.updated_at,
            },
        })
        .collect())
}

pub async fn bind_role(tx: &mut Tx, tenant: &TenantId, principal: PrincipalId, role: &str) -> Result<()> {
    sqlx::query!(
        "INSERT INTO role_bindings (tenant_id, principal_id, role_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        tenant.as_str(),
        principal as PrincipalId,
        role,
    )
    .execute(&mut **tx)
    .await
    .on_constraint("role_bindings_principal_fkey", || Error::not_found("no such principal"))
    .on_constraint("role_bindings_role_fkey", || Error::not_found(format!("no role `{role}`")))?;
    Ok(())
}

pub async fn unbind_role(tx: &mut Tx, tenant: &TenantId, principal: PrincipalId, role: &str) -> Result<bool> {
    Ok(sqlx::query!(
        "DELETE FROM role_bindings WHERE tenant_id = $1 AND principal_id = $2 AND role_key = $3",
        tenant.as_str(),
        principal as PrincipalId,
        role,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// The permissions a principal holds through its role bindings in `tenant`; none once it is disabled.
pub async fn effective_permissions(tx: &mut Tx, tenant: &TenantId, principal: PrincipalId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT unnest(r.permissions) AS "p!"
           FROM role_bindings b JOIN roles r ON r.tenant_id = b.tenant_id AND r.role_key = b.role_key
           JOIN principals p ON p.tenant_id = b.tenant_id AND p.principal_id = b.principal_id
           WHERE b.tenant_id = $1 AND r.tenant_id = $1 AND p.tenant_id = $1 AND b.principal_id = $2
             AND p.status = 'Active'
           ORDER BY 1"#,
        tenant.as_str(),
        principal as PrincipalId,
    )
    .fetch_all(&mut **tx)
    .await?)
}

// ---------------------------------------------------------------------------------------- OAuth clients

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

// ------------------------------------------------------------------------------------------- API tokens

pub async fn insert_api_token(
    tx: &mut Tx,
    tenant: &TenantId,
    principal: PrincipalId,
    name: &str,
    token_hash: &str,
    scopes: &[String],
    expires_at: DateTime<Utc>,
) -> Result<ApiToken> {
    sqlx::query_as!(
        ApiToken,
        r#"INSERT INTO api_tokens (tenant_id, token_id, principal_id, name, token_hash, scopes, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING token_id AS id, principal_id AS "principal_id: PrincipalId", name, scopes, expires_at,
                     revoked_at, last_used_at, created_at"#,
        tenant.as_str(),
        uuid::Uuid::now_v7(),
        principal as PrincipalId,
        name,
        token_hash,
        scopes,
        expires_at,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("api_tokens_principal_fkey", || Error::not_found("no such principal"))
}

pub async fn api_tokens(tx: &mut Tx, tenant: &TenantId) -> Result<Vec<ApiToken>> {
    Ok(sqlx::query_as!(
        ApiToken,
        r#"SELECT token_id AS id, principal_id AS "principal_id: PrincipalId", name, scopes, expires_at, revoked_at,
                  last_used_at, created_at
           FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at DESC"#,
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Revokes a token; returns its hash, for the revocation event.
pub async fn revoke_api_token(tx: &mut Tx, tenant: &TenantId, id: uuid::Uuid) -> Result<String> {
    sqlx::query_scalar!(
        r#"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND token_id = $2
           RETURNING token_hash"#,
        tenant.as_str(),
        id,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no such API token"))
}

pub struct TokenRow {
    pub tenant_id: String,
    pub token_id: uuid::Uuid,
    pub principal_id: PrincipalId,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Looks a token up by hash across tenants: only a `token-validation` transaction ([`validation_tx`]) may.
/// Takes no tenant on purpose: the tenant is what this lookup finds out (a presented token names none), so
/// the statement cannot filter on it; the `token_validation` policy opens this one table, for reading only.
pub async fn api_token_by_hash(tx: &mut Tx, hash: &str) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as!(
        TokenRow,
        r#"SELECT tenant_id, token_id, principal_id AS "principal_id: PrincipalId", scopes, expires_at,
                  revoked_at IS NOT NULL AS "revoked!"
           FROM api_tokens WHERE token_hash = $1"#,
        hash,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Records last-used times of `tenant`'s tokens (`ids[i]` was used at `at[i]`); never moves one back.
pub async fn touch_api_tokens(tx: &mut Tx, tenant: &TenantId, ids: &[uuid::Uuid], at: &[DateTime<Utc>]) -> Result<()> {
    sqlx::query!(
        r#"UPDATE api_tokens t SET last_used_at = greatest(t.last_used_at, u.at)
           FROM UNNEST($2::uuid[], $3::timestamptz[]) AS u(id, at) WHERE t.tenant_id = $1 AND t.token_id = u.id"#,
        tenant.as_str(),
        ids,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// ------------------------------------------------------------------------------------- transactions, locks

/// Opens the token-validation transaction (cross-tenant reads of `api_tokens` only).
pub async fn validation_tx(db: &kernel::db::Db) -> Result<Tx> {
    let mut tx = db.shared().begin().await?;
    sqlx::query!("SELECT set_config('app.system', 'token-validation', true)").fetch_one(&mut *tx).await?;
    Ok(tx)
}

/// Serialises bootstraps: two at once would both find the system empty.
pub async fn bootstrap_lock(tx: &mut Tx) -> Result<()> {
    kernel::db::lock(tx, "identity.bootstrap", kernel::db::Lock::Exclusive).await
}
