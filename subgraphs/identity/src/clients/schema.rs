//! OAuth clients' share of the roots: listing, creating, rotating and revoking a tenant's clients.

use async_graphql::{Context, Object, ID};
use kernel::{Authorize, Result, Work};

use super::{store, OAuthClient, OAuthClientWithSecret};
use crate::ids::PrincipalId;
use crate::schema::{state, tenant_for, READ, WRITE};

#[derive(Default)]
pub struct ClientQuery;

#[Object]
impl ClientQuery {
    async fn oauth_clients(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<OAuthClient>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let clients = store::clients(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, clients.len())?;
        Ok(clients)
    }
}

#[derive(Default)]
pub struct ClientMutation;

#[Object]
impl ClientMutation {
    /// A client-credentials client for a service principal. The secret is in the answer and nowhere else.
    /// Emits `OAuthClientCreated`.
    #[graphql(name = "createOAuthClient")]
    async fn create_oauth_client(
        &self,
        ctx: &Context<'_>,
        principal_id: ID,
        scopes: Vec<String>,
        tenant_id: Option<ID>,
    ) -> Result<OAuthClientWithSecret> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let principal = PrincipalId::from_id("principalId", &principal_id)?;
        let scopes = crate::roles::permissions(&tenant, scopes)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let created = super::create(&mut work, &tenant, principal, scopes).await?;
        work.commit().await?;
        Ok(created)
    }

    /// Replaces a client's secret; the old one stops working at once. Emits `OAuthClientSecretRotated`.
    #[graphql(name = "rotateOAuthClientSecret")]
    async fn rotate_oauth_client_secret(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        tenant_id: Option<ID>,
    ) -> Result<OAuthClientWithSecret> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let rotated = super::rotate_secret(&mut work, &tenant, client_id).await?;
        work.commit().await?;
        Ok(rotated)
    }

    /// Emits `OAuthClientRevoked`.
    #[graphql(name = "revokeOAuthClient")]
    async fn revoke_oauth_client(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        tenant_id: Option<ID>,
    ) -> Result<OAuthClient> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let client = super::revoke(&mut work, &tenant, client_id).await?;
        work.commit().await?;
        Ok(client)
    }
}
