//! Who may do what: the one access check every domain's resolvers make, and the proof it returns.
//!
//! A resolver asks the request for a permission — `ctx.authorize(READ)?` — and gets an [`Authorized`]: the
//! tenant the caller may act on with that permission, taken from the verified token only. Every write path
//! takes that value ([`Work::tenant`](crate::Work::tenant), [`Work::platform`](crate::Work::platform)), and
//! nothing outside this module can make one from a bare [`TenantId`], so a write that skipped the check does
//! not compile:
//!
//! ```compile_fail,E0308
//! # async fn f(db: &kernel::db::Db, meta: kernel::envelope::EventMeta) -> kernel::Result<()> {
//! let tenant = kernel::TenantId::parse("acme")?;
//! let work = kernel::Work::tenant(db, &tenant, meta).await?; // expected `&Authorized`, found `&TenantId`
//! # Ok(()) }
//! ```
//!
//! ```
//! # use kernel::access::Authorize;
//! # async fn f(ctx: &async_graphql::Context<'_>, db: &kernel::db::Db) -> kernel::Result<()> {
//! let tenant = ctx.authorize(kernel::permissions::catalogue::WRITE)?;
//! let work = kernel::Work::tenant(db, &tenant, ctx.event_meta()).await?;
//! # Ok(()) }
//! ```
//!
//! Work that no caller asked for — a worker's pass, a consumer acting on an event its contract lets it
//! trust, a token exchange that verified a client secret — names itself with [`Authorized::system`], so
//! every such path can be found by that one name.

use std::ops::Deref;

use crate::context::{ContextExt, RequestContext};
use crate::db::Access;
use crate::envelope::EventMeta;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::permissions::PLATFORM_ADMIN;

/// Proof that an access check passed: the tenant whose rows the holder may act on, and on what grounds.
///
/// It dereferences to that [`TenantId`], so store functions taking `&TenantId` take `&authorized` as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    tenant: TenantId,
    grant: Grant,
}

/// What an [`Authorized`] was granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The caller's token is the tenant's and carries this permission.
    Permission(&'static str),
    /// The caller is a platform operator (`platform:admin` on a token without a tenant).
    Operator,
    /// No caller: a worker, a consumer or an exchange, named by what it is.
    System(&'static str),
}

impl Authorized {
    /// Work no caller asked for: a periodic worker's pass, a consumer acting on an event its contract lets
    /// it trust, a token exchange that verified the client's secret. `task` names it.
    pub fn system(tenant: TenantId, task: &'static str) -> Self {
        Self { tenant, grant: Grant::System(task) }
    }

    /// Platform-wide work no caller asked for (see [`Authorized::system`]).
    pub fn platform_system(task: &'static str) -> Self {
        Self::system(TenantId::platform(), task)
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// A platform operator, or platform-wide system work: may open a platform transaction.
    pub fn is_operator(&self) -> bool {
        match self.grant {
            Grant::Operator => true,
            Grant::System(_) => self.tenant.is_platform(),
            Grant::Permission(_) => false,
        }
    }

    /// Which rows a read may see: every tenant's for an operator on the platform, else this tenant's.
    pub fn access(&self) -> Access {
        if self.grant == Grant::Operator && self.tenant.is_platform() {
            Access::Platform
        } else {
            Access::Tenant(self.tenant.clone())
        }
    }

    pub fn into_tenant(self) -> TenantId {
        self.tenant
    }
}

impl Deref for Authorized {
    type Target = TenantId;
    fn deref(&self) -> &TenantId {
        &self.tenant
    }
}

impl std::fmt::Display for Authorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.tenant.fmt(f)
    }
}

impl AsRef<TenantId> for Authorized {
    fn as_ref(&self) -> &TenantId {
        &self.tenant
    }
}

/// The access checks, on a request (`ctx.authorize(…)` in resolvers). Each answers `FORBIDDEN` when the
/// token lacks what is asked, and `NOT_FOUND` when it names a tenant that is not the caller's (so tenant
/// ids cannot be probed).
pub trait Authorize {
    fn request_context(&self) -> &RequestContext;

    /// The caller's tenant, provided the token is the tenant's and carries `permission`.
    fn authorize(&self, permission: &'static str) -> Result<Authorized> {
        let req = self.request_context();
        req.require_scope(permission)?;
        Ok(Authorized { tenant: req.tenant()?.clone(), grant: Grant::Permission(permission) })
    }

    /// The platform, for a platform operator.
    fn authorize_operator(&self) -> Result<Authorized> {
        if self.is_operator() {
            Ok(Authorized { tenant: TenantId::platform(), grant: Grant::Operator })
        } else {
            Err(Error::forbidden("this operation is for platform operators"))
        }
    }

    /// Whether the caller is a platform operator.
    fn is_operator(&self) -> bool {
        let req = self.request_context();
        req.caller.has_scope(PLATFORM_ADMIN) && req.caller.tenant.is_none()
    }

    /// The owner of a platform-or-tenant row being written: the platform for an operator writing a
    /// platform row (`platform: true`), else the caller's tenant with `permission`.
    fn authorize_owner(&self, permission: &'static str, platform: bool) -> Result<Authorized> {
        if platform {
            self.authorize_operator()
        } else {
            self.authorize(permission)
        }
    }

    /// The platform for an operator, else the caller's tenant with `permission`.
    fn authorize_or_operator(&self, permission: &'static str) -> Result<Authorized> {
        if self.is_operator() {
            self.authorize_operator()
        } else {
            self.authorize(permission)
        }
    }

    /// Rows a read may see: every tenant's for an operator, else the caller's with `permission`.
    fn authorize_read(&self, permission: &'static str) -> Result<Access> {
        Ok(self.authorize_or_operator(permission)?.access())
    }

    /// The tenant an operation names (`requested`), checked against the caller: an operator acts on the
    /// named tenant (the platform when none is named); anyone else on their own with `permission`, and
    /// naming another tenant is `NOT_FOUND`.
    fn authorize_tenant(&self, permission: &'static str, requested: Option<&str>) -> Result<Authorized> {
        if self.is_operator() {
            let tenant = match requested {
                Some(id) => TenantId::parse(id)?,
                None => TenantId::platform(),
            };
            return Ok(Authorized { tenant, grant: Grant::Operator });
        }
        let own = self.authorize(permission)?;
        match requested {
            Some(id) if id.trim() != own.as_str() => Err(Error::not_found("no such tenant")),
            _ => Ok(own),
        }
    }

    /// `tenant`, if the caller may act on it with `permission` (operators on any, the platform's too).
    fn authorize_on(&self, permission: &'static str, tenant: &TenantId) -> Result<Authorized> {
        if self.is_operator() {
            return Ok(Authorized { tenant: tenant.clone(), grant: Grant::Operator });
        }
        let own = self.authorize(permission)?;
        if own.tenant == *tenant {
            Ok(own)
        } else {
            Err(Error::not_found("no such tenant"))
        }
    }

    /// The rows a per-request loader may ever see for this token: every tenant's for an operator, else the
    /// token's tenant's. No permission is checked: the resolvers that use the loader check theirs.
    fn token_access(&self) -> Result<Access> {
        if self.is_operator() {
            Ok(Access::Platform)
        } else {
            Ok(Access::Tenant(self.request_context().tenant()?.clone()))
        }
    }

    /// The events this request causes carry its trace, correlation and actor.
    fn event_meta(&self) -> EventMeta {
        self.request_context().event_meta()
    }

    /// The principal making the request (the token's subject), as text: for messages and logs.
    fn principal(&self) -> &str {
        &self.request_context().caller.subject
    }

    /// The token's subject as a principal reference.
    fn principal_ref(&self) -> crate::PrincipalRef {
        crate::PrincipalRef::of_subject(&self.request_context().caller.subject)
    }

    /// The calling principal's id; `FORBIDDEN` when the token's subject is not a principal of identity.
    fn principal_id(&self) -> Result<crate::PrincipalId> {
        self.principal_ref().principal()
    }
}

impl Authorize for RequestContext {
    fn request_context(&self) -> &RequestContext {
        self
    }
}

impl Authorize for async_graphql::Context<'_> {
    fn request_context(&self) -> &RequestContext {
        self.request()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Caller;

    fn request(tenant: Option<&str>, scopes: &[&str]) -> RequestContext {
        RequestContext {
            caller: Caller {
                subject: "p-1".into(),
                tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                token_id: None,
                expires_at: i64::MAX,
            },
            trace_id: "t".into(),
            correlation_id: "c".into(),
        }
    }

    #[test]
    fn a_tenant_caller_is_authorized_on_its_own_tenant_with_the_permission_only() {
        let req = request(Some("acme"), &["catalogue:read"]);
        let ok = req.authorize("catalogue:read").unwrap();
        assert_eq!(ok.as_str(), "acme");
        assert_eq!(ok.grant(), Grant::Permission("catalogue:read"));
        assert!(!ok.is_operator());
        assert_eq!(req.authorize("catalogue:write").unwrap_err().code(), crate::Code::Forbidden);
        assert_eq!(req.authorize_operator().unwrap_err().code(), crate::Code::Forbidden);
        assert_eq!(req.authorize_tenant("catalogue:read", Some("other")).unwrap_err().code(), crate::Code::NotFound);
        assert_eq!(req.authorize_tenant("catalogue:read", Some("acme")).unwrap().as_str(), "acme");
        assert_eq!(
            req.authorize_on("catalogue:read", &TenantId::platform()).unwrap_err().code(),
            crate::Code::NotFound
        );
        assert_eq!(req.authorize_read("catalogue:read").unwrap(), Access::Tenant(TenantId::parse("acme").unwrap()));
    }

    #[test]
    fn platform_admin_on_a_tenant_token_grants_nothing_beyond_the_tenant() {
        let req = request(Some("acme"), &[PLATFORM_ADMIN, "catalogue:read"]);
        assert!(!req.is_operator());
        assert!(req.authorize_operator().is_err());
        assert_eq!(req.authorize_or_operator("catalogue:read").unwrap().as_str(), "acme");
        assert!(req.authorize_tenant("catalogue:read", Some("other")).is_err());
    }

    #[test]
    fn an_operator_acts_on_the_platform_or_the_tenant_it_names() {
        let req = request(None, &[PLATFORM_ADMIN]);
        let op = req.authorize_operator().unwrap();
        assert!(op.is_platform() && op.is_operator());
        assert_eq!(req.authorize_read("catalogue:read").unwrap(), Access::Platform);
        assert_eq!(req.authorize_tenant("identity:read", Some("acme")).unwrap().as_str(), "acme");
        assert!(req.authorize_tenant("identity:read", None).unwrap().is_platform());
        assert!(req.authorize_on("identity:read", &TenantId::platform()).unwrap().is_platform());
        // An operator's token has no tenant: tenant-scoped permissions are refused.
        assert_eq!(req.authorize("catalogue:read").unwrap_err().code(), crate::Code::Forbidden);
    }

    #[test]
    fn system_work_names_itself_and_is_an_operator_only_on_the_platform() {
        let acme = Authorized::system(TenantId::parse("acme").unwrap(), "retention");
        assert_eq!(acme.grant(), Grant::System("retention"));
        assert!(!acme.is_operator());
        assert!(Authorized::platform_system("upkeep").is_operator());
    }
}
