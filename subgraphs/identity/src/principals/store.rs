//! Principals' SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Every statement on a tenant-scoped table filters on `tenant_id` itself: row-level security (set by the
//! transaction) already limits the rows, and the explicit filter is the second wall, and what lets a
//! distributed database (Citus) route the statement to the tenant's shard. The one exception says why: bootstrap's
//! emptiness check ([`any_principal`]).

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::{Principal, PrincipalKind, PrincipalStatus};
use crate::ids::PrincipalId;

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

/// Serialises bootstraps: two at once would both find the system empty.
pub async fn bootstrap_lock(tx: &mut Tx) -> Result<()> {
    kernel::db::lock(tx, "identity.bootstrap", kernel::db::Lock::Exclusive).await
}
