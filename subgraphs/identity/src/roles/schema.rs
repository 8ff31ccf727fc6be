//! Roles' share of the roots: a tenant's roles, defining them, binding them to principals.

use async_graphql::{Context, InputObject, Object, ID};
use kernel::{Authorize, Result, Work};

use super::{store, Role};
use crate::ids::PrincipalId;
use crate::schema::{state, tenant_for, READ, WRITE};

#[derive(InputObject)]
pub struct DefineRoleInput {
    pub key: String,
    #[graphql(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Default)]
pub struct RoleQuery;

#[Object]
impl RoleQuery {
    async fn roles(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<Role>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let roles = store::roles(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, roles.len())?;
        Ok(roles)
    }
}

#[derive(Default)]
pub struct RoleMutation;

#[Object]
impl RoleMutation {
    /// Creates or replaces a role. Emits `RoleDefined`.
    async fn define_role(&self, ctx: &Context<'_>, input: DefineRoleInput, tenant_id: Option<ID>) -> Result<Role> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let key = super::role_key(&input.key)?;
        let perms = super::permissions(&tenant, input.permissions)?;
        let description = kernel::error::clip(input.description.trim(), 500);
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let role = super::define(&mut work, &tenant, key, &description, perms).await?;
        work.commit().await?;
        Ok(role)
    }

    /// Emits `RoleBound`.
    async fn bind_role(
        &self,
        ctx: &Context<'_>,
        principal_id: ID,
        role_key: String,
        tenant_id: Option<ID>,
    ) -> Result<bool> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let principal = PrincipalId::from_id("principalId", &principal_id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        super::bind(&mut work, &tenant, principal, role_key).await?;
        work.commit().await?;
        Ok(true)
    }

    /// Emits `RoleUnbound`.
    async fn unbind_role(
        &self,
        ctx: &Context<'_>,
        principal_id: ID,
        role_key: String,
        tenant_id: Option<ID>,
    ) -> Result<bool> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let principal = PrincipalId::from_id("principalId", &principal_id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        super::unbind(&mut work, &tenant, principal, role_key).await?;
        work.commit().await?;
        Ok(true)
    }
}
