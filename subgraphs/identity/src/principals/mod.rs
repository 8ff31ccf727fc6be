//! Principals: the people (`USER`) and integrations (`SERVICE`) that call the platform, within one tenant.
//! Platform operators are the platform tenant's principals.

pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Context, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::{Authorize, Error, Result, TenantId, Work};

use crate::events::{PrincipalCreated, PrincipalDisabled};
use crate::ids::PrincipalId;
use crate::loaders::{loader, RolesOf};
use crate::roles::Role;

// Stored as `User` / `Service`, the form events carry too.
kernel::text_enum! {
    /// A person (`USER`) or an integration (`SERVICE`).
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum PrincipalKind {
        /// A person.
        User = "User",
        /// An integration: CI, a backend, another system.
        Service = "Service",
    }
}

// Stored as `Active` / `Disabled`.
kernel::text_enum! {
    /// Whether a principal's credentials carry permissions.
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum PrincipalStatus {
        Active = "Active",
        /// Its tokens and clients stop carrying permissions; live sessions end.
        Disabled = "Disabled",
    }
}

/// A tenant, as identity refers to it; tenancy resolves its fields.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(unresolvable = "id")]
pub struct Tenant {
    pub id: ID,
}

/// Someone or something that calls the platform: a person (`USER`) or an integration (`SERVICE`).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Principal {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
    pub status: PrincipalStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Principal {
    /// The tenant the principal belongs to; null for platform operators.
    async fn tenant(&self) -> Option<Tenant> {
        (!self.tenant_id.is_platform()).then(|| Tenant { id: ID(self.tenant_id.to_string()) })
    }

    /// The roles bound to the principal, in key order. Needs `identity:read` in the principal's tenant.
    // Through the request's loader: one query for the roles of every principal the request returns.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        ctx.authorize_on(crate::schema::READ, &self.tenant_id)?;
        let key = RolesOf { tenant: self.tenant_id.clone(), principal: self.id };
        let roles = loader(ctx)?.load_one(key).await?.unwrap_or_default();
        kernel::server::charge(ctx, roles.len())?;
        Ok(roles)
    }
}

/// A principal to create, checked.
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub display_name: String,
    pub email: Option<String>,
}

impl NewPrincipal {
    /// A display name of 1 to 200 characters; users may have an email, services none.
    pub fn parse(kind: PrincipalKind, display_name: &str, email: Option<&str>) -> Result<Self> {
        let display_name = kernel::error::text("displayName", display_name, 200)?;
        let email = match kind {
            PrincipalKind::User => {
                let email = email.map(|e| kernel::error::text("email", e, 254)).transpose()?;
                if email.as_deref().is_some_and(|e| !e.contains('@')) {
                    return Err(Error::bad_input("email", "email is not an address"));
                }
                email
            }
            PrincipalKind::Service if email.is_some() => {
                return Err(Error::bad_input("email", "services have no email"))
            }
            PrincipalKind::Service => None,
        };
        Ok(Self { kind, display_name, email })
    }
}

/// Creates a principal. Emits `PrincipalCreated`.
pub async fn create(work: &mut Work, tenant: &TenantId, new: NewPrincipal) -> Result<Principal> {
    let p = store::insert_principal(work, tenant, new.kind, &new.display_name, new.email.as_deref()).await?;
    let event = PrincipalCreated { principal_id: p.id, kind: p.kind, display_name: new.display_name };
    work.emit(tenant, &event).await?;
    Ok(p)
}

/// Disables a principal: its tokens stop carrying permissions. Emits `PrincipalDisabled`.
pub async fn disable(work: &mut Work, tenant: &TenantId, id: PrincipalId) -> Result<Principal> {
    let p = store::disable_principal(work, tenant, id).await?;
    work.emit(tenant, &PrincipalDisabled { principal_id: p.id }).await?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips() {
        for k in [PrincipalKind::User, PrincipalKind::Service] {
            assert_eq!(PrincipalKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()), "events carry the stored text");
        }
        for s in [PrincipalStatus::Active, PrincipalStatus::Disabled] {
            assert_eq!(PrincipalStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PrincipalKind::parse("USER"), None);
        assert_eq!(PrincipalStatus::parse("active"), None);
    }

    #[test]
    fn services_have_no_email_and_users_a_real_one() {
        let err = NewPrincipal::parse(PrincipalKind::Service, "ci", Some("a@b")).err().unwrap();
        assert_eq!(err.code(), kernel::Code::BadUserInput);
        assert!(NewPrincipal::parse(PrincipalKind::User, "Ann", Some("nope")).is_err());
        let ok = NewPrincipal::parse(PrincipalKind::User, " Ann ", Some("ann@example.com")).unwrap();
        assert_eq!((ok.display_name.as_str(), ok.email.as_deref()), ("Ann", Some("ann@example.com")));
    }
}
