//! Principals' share of the roots: the caller, a tenant's principals, creating and disabling them.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use kernel::pagination::Page;
use kernel::{Authorize, Error, Result, TenantId, Work};

use super::{store, NewPrincipal, Principal, PrincipalKind};
use crate::ids::PrincipalId;
use crate::loaders::{loader, PrincipalKey};
use crate::schema::{state, tenant_for, READ, WRITE};

#[derive(InputObject)]
pub struct CreatePrincipalInput {
    pub kind: PrincipalKind,
    pub display_name: String,
    /// Users only; unique within the tenant.
    pub email: Option<String>,
}

#[derive(Default)]
pub struct PrincipalQuery;

#[Object]
impl PrincipalQuery {
    /// The calling principal.
    async fn me(&self, ctx: &Context<'_>) -> Result<Principal> {
        let tenant = ctx.request_context().caller.tenant.clone().unwrap_or_else(TenantId::platform);
        let id = ctx.principal_id().map_err(|_| Error::not_found("the caller is not a principal of identity"))?;
        principal_in(ctx, tenant, id).await
    }

    async fn principal(&self, ctx: &Context<'_>, id: ID, tenant_id: Option<ID>) -> Result<Principal> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        principal_in(ctx, tenant.into_tenant(), PrincipalId::from_id("id", &id)?).await
    }

    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn principals(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Principal>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let page = Page::forward(after, first, 20)?;
        let after = page
            .after
            .as_deref()
            .map(|a| PrincipalId::parse("after", a).map_err(|_| Error::bad_input("after", "not a cursor")));
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::list_principals(&mut tx, &tenant, after.transpose()?, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |p| p.id.to_string()))
    }

    /// Resolves `Principal` references within the caller's tenant.
    #[graphql(entity)]
    async fn find_principal_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Principal> {
        let tenant = tenant_for(ctx, None, READ)?;
        principal_in(ctx, tenant.into_tenant(), PrincipalId::from_id("id", &id)?).await
    }
}

/// A principal of `tenant` (which the caller has been checked against), through the request's loader.
async fn principal_in(ctx: &Context<'_>, tenant: TenantId, id: PrincipalId) -> Result<Principal> {
    let found = loader(ctx)?.load_one(PrincipalKey { tenant, id }).await?;
    found.ok_or_else(|| Error::not_found("no such principal"))
}

#[derive(Default)]
pub struct PrincipalMutation;

#[Object]
impl PrincipalMutation {
    /// Emits `PrincipalCreated`.
    async fn create_principal(
        &self,
        ctx: &Context<'_>,
        input: CreatePrincipalInput,
        tenant_id: Option<ID>,
    ) -> Result<Principal> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let new = NewPrincipal::parse(input.kind, &input.display_name, input.email.as_deref())?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let p = super::create(&mut work, &tenant, new).await?;
        work.commit().await?;
        Ok(p)
    }

    /// A disabled principal's tokens stop carrying permissions. Emits `PrincipalDisabled`.
    async fn disable_principal(&self, ctx: &Context<'_>, id: ID, tenant_id: Option<ID>) -> Result<Principal> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let id = PrincipalId::from_id("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let p = super::disable(&mut work, &tenant, id).await?;
        work.commit().await?;
        Ok(p)
    }
}
