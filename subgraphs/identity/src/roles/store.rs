//! Roles' and role bindings' SQL, checked at compile time against the migrations (`.sqlx/` holds the offline data).
//!
//! Every statement on a tenant-scoped table filters on `tenant_id` itself: row-level security (set by the
//! transaction) already limits the rows, and the explicit filter is the second wall, and what lets a
//! distributed database (Citus) route the statement to the tenant's shard.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::Role;
use crate::ids::PrincipalId;

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
