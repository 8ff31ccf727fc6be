//! Who may do what in the catalogue.
//!
//! A tenant's callers read their own catalogue with `catalogue:read` and change it with `catalogue:write`;
//! their tenant comes from the verified token only. Platform operators read every tenant's catalogue (through
//! `Tenant.projects`) and write the platform's own agent and skill definitions, which every tenant reads.

use std::sync::Arc;

use async_graphql::Context;
use kernel::context::ContextExt;
use kernel::db::Access;
use kernel::envelope::EventMeta;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::{Result, TenantId};

use crate::State;

pub fn state<'a>(ctx: &'a Context<'_>) -> &'a State {
    ctx.data_unchecked::<Arc<State>>()
}

/// The caller's tenant, for reading its catalogue.
pub fn reader(ctx: &Context<'_>) -> Result<TenantId> {
    Ok(ctx.request().tenant_with(READ)?.clone())
}

/// Operators read any tenant's rows; everyone else their own with `catalogue:read`.
pub fn read_access(ctx: &Context<'_>) -> Result<Access> {
    let req = ctx.request();
    if req.is_platform_operator() {
        return Ok(Access::Platform);
    }
    Ok(Access::Tenant(req.tenant_with(READ)?.clone()))
}

/// The caller's tenant, for changing its catalogue.
pub fn writer(ctx: &Context<'_>) -> Result<TenantId> {
    Ok(ctx.request().tenant_with(WRITE)?.clone())
}

/// The principal making the request (the token's subject).
pub fn principal(ctx: &Context<'_>) -> String {
    ctx.request().caller.subject.clone()
}

pub fn event_meta(ctx: &Context<'_>) -> EventMeta {
    ctx.request().event_meta()
}

/// An id from the API (`what`: "project", "module", …): `BAD_USER_INPUT` unless it is a UUID.
pub fn uuid(field: &str, raw: &str, what: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| kernel::Error::bad_input(field, format!("`{}` is not a {what} id", kernel::error::clip(raw, 40))))
}
