//! Roles: named sets of permissions within one tenant, bound to its principals. A token carries at most
//! what its principal holds through its bindings, so unbinding a role narrows its tokens at once.

pub mod schema;
pub mod store;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId, Work};

use crate::events::{RoleBound, RoleDefined, RoleUnbound};
use crate::ids::PrincipalId;

/// A named set of permissions, bound to principals within one tenant.
#[derive(SimpleObject, Clone, Debug)]
pub struct Role {
    pub key: String,
    pub description: String,
    /// Permission names, e.g. `tenancy:read`. Tokens carry them as scopes.
    pub permissions: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// Permission names from the API (roles, client and token scopes): known ones only, each once;
/// `platform:admin` only in the platform tenant.
pub fn permissions(tenant: &TenantId, raw: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in raw {
        let p = p.trim().to_owned();
        if !kernel::permissions::is_known(&p) {
            return Err(Error::bad_input(
                "permissions",
                format!("unknown permission `{}`", kernel::error::clip(&p, 64)),
            ));
        }
        if p == kernel::permissions::PLATFORM_ADMIN && !tenant.is_platform() {
            return Err(Error::bad_input("permissions", "platform:admin can be granted only in the platform tenant"));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// A role key: 1 to 64 lower-case letters, digits and hyphens, starting with a letter.
pub fn role_key(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::bad_input("key", "role keys are 1 to 64 lower-case letters, digits and hyphens"))
}

/// Creates or replaces a role. Emits `RoleDefined`.
pub async fn define(
    work: &mut Work,
    tenant: &TenantId,
    key: String,
    description: &str,
    permissions: Vec<String>,
) -> Result<Role> {
    let role = store::upsert_role(work, tenant, &key, description, &permissions).await?;
    work.emit(tenant, &RoleDefined { role_key: key, permissions }).await?;
    Ok(role)
}

/// Binds a role to a principal (binding it twice is one binding). Emits `RoleBound`.
pub async fn bind(work: &mut Work, tenant: &TenantId, principal: PrincipalId, role_key: String) -> Result<()> {
    store::bind_role(work, tenant, principal, &role_key).await?;
    work.emit(tenant, &RoleBound { principal_id: principal, role_key }).await?;
    Ok(())
}

/// Unbinds a role; `NOT_FOUND` when it was not bound. Emits `RoleUnbound`.
pub async fn unbind(work: &mut Work, tenant: &TenantId, principal: PrincipalId, role_key: String) -> Result<()> {
    if !store::unbind_role(work, tenant, principal, &role_key).await? {
        return Err(Error::not_found("no such binding"));
    }
    work.emit(tenant, &RoleUnbound { principal_id: principal, role_key }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_keys_are_slugs() {
        assert_eq!(role_key(" ops-1 ").unwrap(), "ops-1");
        for bad in ["", "1ops", "Ops", "ops_1", &"a".repeat(65)] {
            assert_eq!(role_key(bad).unwrap_err().code(), kernel::Code::BadUserInput, "{bad}");
        }
    }

    #[test]
    fn platform_admin_is_the_platforms_alone() {
        let acme = TenantId::parse("acme").unwrap();
        assert!(permissions(&acme, vec![kernel::permissions::PLATFORM_ADMIN.into()]).is_err());
        assert!(permissions(&TenantId::platform(), vec![kernel::permissions::PLATFORM_ADMIN.into()]).is_ok());
        assert!(permissions(&acme, vec!["nope:nope".into()]).is_err());
        let twice = vec![crate::schema::READ.to_owned(), format!(" {} ", crate::schema::READ)];
        assert_eq!(permissions(&acme, twice).unwrap(), vec![crate::schema::READ.to_owned()]);
    }
}
