//! API tokens' SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Every statement on a tenant-scoped table filters on `tenant_id` itself: row-level security (set by the
//! transaction) already limits the rows, and the explicit filter is the second wall, and what lets a
//! distributed database (Citus) route the statement to the tenant's shard. The one exception says why: the
//! cross-tenant lookup by hash ([`api_token_by_hash`]), in its own kind of transaction ([`validation_tx`]).

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::ApiToken;
use crate::ids::{ApiTokenId, PrincipalId};

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
        ApiTokenId::new_v7() as ApiTokenId,
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
pub async fn revoke_api_token(tx: &mut Tx, tenant: &TenantId, id: ApiTokenId) -> Result<String> {
    sqlx::query_scalar!(
        r#"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND token_id = $2
           RETURNING token_hash"#,
        tenant.as_str(),
        id as ApiTokenId,
    )
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("no such API token"))
}

pub struct TokenRow {
    pub tenant_id: String,
    pub token_id: ApiTokenId,
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
pub async fn touch_api_tokens(tx: &mut Tx, tenant: &TenantId, ids: &[ApiTokenId], at: &[DateTime<Utc>]) -> Result<()> {
    sqlx::query!(
        r#"UPDATE api_tokens t SET last_used_at = greatest(t.last_used_at, u.at)
           FROM UNNEST($2::uuid[], $3::timestamptz[]) AS u(id, at) WHERE t.tenant_id = $1 AND t.token_id = u.id"#,
        tenant.as_str(),
        ids as &[ApiTokenId],
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
