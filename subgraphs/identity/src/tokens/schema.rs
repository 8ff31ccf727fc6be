//! API tokens' share of the roots: listing, creating and revoking a tenant's tokens.

use async_graphql::{Context, InputObject, Object, ID};
use kernel::{Authorize, Result, Work};

use super::{store, ApiToken, ApiTokenWithSecret, NewApiToken};
use crate::ids::{ApiTokenId, PrincipalId};
use crate::schema::{state, tenant_for, READ, WRITE};

#[derive(InputObject)]
pub struct CreateApiTokenInput {
    pub principal_id: ID,
    pub name: String,
    pub scopes: Vec<String>,
    /// Lifetime in days, 1 to 365.
    #[graphql(default = 90)]
    pub expires_in_days: i32,
}

#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    async fn api_tokens(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<ApiToken>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let tokens = store::api_tokens(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, tokens.len())?;
        Ok(tokens)
    }
}

#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// An API token for a principal, carrying at most the permissions it holds. The token is in the answer
    /// and nowhere else. Emits `ApiTokenCreated`.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
        tenant_id: Option<ID>,
    ) -> Result<ApiTokenWithSecret> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let principal = PrincipalId::from_id("principalId", &input.principal_id)?;
        let new = NewApiToken::parse(&tenant, principal, &input.name, input.scopes, input.expires_in_days)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let created = super::create(&mut work, &tenant, new).await?;
        work.commit().await?;
        Ok(created)
    }

    /// Revokes an API token everywhere within about a second. Emits `ApiTokenRevoked`.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID, tenant_id: Option<ID>) -> Result<bool> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        super::revoke(state(ctx), &tenant, ApiTokenId::from_id("id", &id)?, &ctx.event_meta()).await?;
        Ok(true)
    }
}
