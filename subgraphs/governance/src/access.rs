//! Who may do what in governance.
//!
//! A tenant's callers read policies, decisions, approvals, connections and model policies with
//! `governance:read` and change them with `governance:write`; deciding an approval takes `approvals:decide`
//! and one of the approver roles the request names. Their tenant comes from the verified token only.
//! Platform operators write the platform's own policies (`platform: true`), which every tenant's set
//! includes.

use std::sync::Arc;

use async_graphql::Context;
use kernel::context::ContextExt;
use kernel::envelope::EventMeta;
use kernel::permissions::governance::{APPROVALS_DECIDE, READ, WRITE};
use kernel::{Result, TenantId};

use crate::State;

pub fn state<'a>(ctx: &'a Context<'_>) -> &'a State {
    ctx.data_unchecked::<Arc<State>>()
}

/// The caller's tenant, for reading its governance data.
pub fn reader(ctx: &Context<'_>) -> Result<TenantId> {
    Ok(ctx.request().tenant_with(READ)?.clone())
}

/// The caller's tenant, for changing its governance data.
pub fn writer(ctx: &Context<'_>) -> Result<TenantId> {
    Ok(ctx.request().tenant_with(WRITE)?.clone())
}

/// The caller's tenant, for deciding approvals.
pub fn decider(ctx: &Context<'_>) -> Result<TenantId> {
    Ok(ctx.request().tenant_with(APPROVALS_DECIDE)?.clone())
}

/// The platform's tenant for an operator writing a platform policy, else the caller's with `governance:write`.
pub fn owner_for_write(ctx: &Context<'_>, platform: bool) -> Result<TenantId> {
    if platform {
        ctx.request().require_platform_operator()?;
        return Ok(TenantId::platform());
    }
    writer(ctx)
}

/// The platform's tenant for an operator, else the caller's with `governance:read`.
pub fn owner_for_read(ctx: &Context<'_>) -> Result<TenantId> {
    if ctx.request().is_platform_operator() {
        return Ok(TenantId::platform());
    }
    reader(ctx)
}

/// The principal making the request (the token's subject).
pub fn principal(ctx: &Context<'_>) -> String {
    ctx.request().caller.subject.clone()
}

pub fn event_meta(ctx: &Context<'_>) -> EventMeta {
    ctx.request().event_meta()
}

/// An id from the API (`what`: "policy", "approval", …): `BAD_USER_INPUT` unless it is a UUID.
pub fn uuid(field: &str, raw: &str, what: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| kernel::Error::bad_input(field, format!("`{}` is not a {what} id", kernel::error::clip(raw, 40))))
}
