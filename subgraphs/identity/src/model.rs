//! Identity's GraphQL types.

use async_graphql::{ComplexObject, Context, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::{Authorize, Result, TenantId};

use crate::domain::{PrincipalKind, PrincipalStatus};
use crate::ids::PrincipalId;
use crate::loaders::{loader, RolesOf};

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

/// A named set of permissions, bound to principals within one tenant.
#[derive(SimpleObject, Clone, Debug)]
pub struct Role {
    pub key: String,
    pub description: String,
    /// Permission names, e.g. `tenancy:read`. Tokens carry them as scopes.
    pub permissions: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// An OAuth 2.0 client of a service principal (client-credentials grant). Its secret is never readable.
#[derive(SimpleObject, Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub principal_id: PrincipalId,
    /// The most a token for this client can carry (further limited by the principal's roles).
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A client with its secret, returned once at creation or rotation.
#[derive(SimpleObject, Clone, Debug)]
pub struct OAuthClientWithSecret {
    pub client: OAuthClient,
    /// Shown once; only its hash is kept.
    pub client_secret: String,
}

/// An API token's metadata. The token itself is never readable.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiToken {
    pub id: uuid::Uuid,
    pub principal_id: PrincipalId,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Kept to within about a minute, without a database write per request.
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A new API token, returned once.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiTokenWithSecret {
    pub api_token: ApiToken,
    /// `cpt_…`: shown once; only its SHA-256 is kept.
    pub token: String,
}
