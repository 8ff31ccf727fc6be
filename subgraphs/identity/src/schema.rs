//! Identity's roots: each area's share merged, in the order the schema lists them.
//!
//! A tenant's members manage their own tenant's principals, roles, clients and tokens (`identity:read`,
//! `identity:write`); platform operators (`platform:admin`) manage any tenant's by naming it in `tenantId`,
//! and the platform's own (where operators live) by omitting it. The tenant never comes from anything else.

use std::sync::Arc;

use async_graphql::{Context, MergedObject, ID};
use kernel::{Authorize, Authorized, Result};

use crate::State;

pub use kernel::permissions::identity::{READ, WRITE};

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    crate::principals::schema::PrincipalQuery,
    crate::roles::schema::RoleQuery,
    crate::clients::schema::ClientQuery,
    crate::tokens::schema::TokenQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    crate::principals::schema::PrincipalMutation,
    crate::roles::schema::RoleMutation,
    crate::clients::schema::ClientMutation,
    crate::tokens::schema::TokenMutation,
);

pub(crate) fn state<'a>(ctx: &'a Context<'_>) -> &'a Arc<State> {
    ctx.data_unchecked::<Arc<State>>()
}

/// The tenant an operation acts on (`tenantId`), checked against the caller.
pub(crate) fn tenant_for(ctx: &Context<'_>, requested: Option<&ID>, permission: &'static str) -> Result<Authorized> {
    ctx.authorize_tenant(permission, requested.map(|id| id.as_str()))
}
