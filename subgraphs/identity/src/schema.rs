//! Identity's query and mutation roots and its `Principal` entity.
//!
//! A tenant's members manage their own tenant's principals, roles, clients and tokens (`identity:read`,
//! `identity:write`); platform operators (`platform:admin`) manage any tenant's by naming it in `tenantId`,
//! and the platform's own (where operators live) by omitting it. The tenant never comes from anything else.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use kernel::context::ContextExt;
use kernel::envelope::EventMeta;
use kernel::pagination::Page;
use kernel::{api_token, Authorize, Authorized, Error, Result, TenantId, Work};

use crate::domain::PrincipalKind;
use crate::events;
use crate::ids::PrincipalId;
use crate::loaders::{loader, PrincipalKey};
use crate::model::{ApiToken, ApiTokenWithSecret, OAuthClient, OAuthClientWithSecret, Principal, Role};
use crate::tokens;
use crate::{store, State};

pub use kernel::permissions::identity::{READ, WRITE};

fn state<'a>(ctx: &'a Context<'_>) -> &'a Arc<State> {
    ctx.data_unchecked::<Arc<State>>()
}

/// The tenant an operation acts on (`tenantId`), checked against the caller.
fn tenant_for(ctx: &Context<'_>, requested: Option<&ID>, permission: &'static str) -> Result<Authorized> {
    ctx.authorize_tenant(permission, requested.map(|id| id.as_str()))
}

fn permissions(tenant: &TenantId, raw: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in raw {
        let p = p.trim().to_owned();
        if !kernel::permissions::is_known(&p) {
            return Err(Error::bad_input(
                "permissions",
                format!("unknown permission `{}`", kernel::error::clip(&p, 64)),
            ));
        }
        if p == kernel::permissions::PLATFORM_ADMIN && !tenant.is_platform() {
            return Err(Error::bad_input("permissions", "platform:admin can be granted only in the platform tenant"));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn role_key(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::bad_input("key", "role keys are 1 to 64 lower-case letters, digits and hyphens"))
}

fn token_id(field: &str, raw: &ID) -> Result<uuid::Uuid> {
    raw.trim().parse().map_err(|_| Error::bad_input(field, format!("{field} is not an id")))
}

#[derive(InputObject)]
pub struct CreatePrincipalInput {
    pub kind: PrincipalKind,
    pub display_name: String,
    /// Users only; unique within the tenant.
    pub email: Option<String>,
}

#[derive(InputObject)]
pub struct DefineRoleInput {
    pub key: String,
    #[graphql(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(InputObject)]
pub struct CreateApiTokenInput {
    pub principal_id: ID,
    pub name: String,
    pub scopes: Vec<String>,
    /// Lifetime in days, 1 to 365.
    #[graphql(default = 90)]
    pub expires_in_days: i32,
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The calling principal.
    async fn me(&self, ctx: &Context<'_>) -> Result<Principal> {
        let caller = &ctx.request().caller;
        let tenant = caller.tenant.clone().unwrap_or_else(TenantId::platform);
        let id = PrincipalId::parse("subject", &caller.subject)
            .map_err(|_| Error::not_found("the caller is not a principal of identity"))?;
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

    async fn roles(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<Role>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let roles = store::roles(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, roles.len())?;
        Ok(roles)
    }

    async fn oauth_clients(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<OAuthClient>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let clients = store::clients(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, clients.len())?;
        Ok(clients)
    }

    async fn api_tokens(&self, ctx: &Context<'_>, tenant_id: Option<ID>) -> Result<Vec<ApiToken>> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let tokens = store::api_tokens(&mut tx, &tenant).await?;
        tx.commit().await?;
        kernel::server::charge(ctx, tokens.len())?;
        Ok(tokens)
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

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Emits `PrincipalCreated`.
    async fn create_principal(
        &self,
        ctx: &Context<'_>,
        input: CreatePrincipalInput,
        tenant_id: Option<ID>,
    ) -> Result<Principal> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let name = kernel::error::text("displayName", &input.display_name, 200)?;
        let kind = input.kind;
        let email = match kind {
            PrincipalKind::User => {
                let email = input.email.as_deref().map(|e| kernel::error::text("email", e, 254)).transpose()?;
                if email.as_deref().is_some_and(|e| !e.contains('@')) {
                    return Err(Error::bad_input("email", "email is not an address"));
                }
                email
            }
            PrincipalKind::Service if input.email.is_some() => {
                return Err(Error::bad_input("email", "services have no email"))
            }
            PrincipalKind::Service => None,
        };
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let p = store::insert_principal(&mut work, &tenant, kind, &name, email.as_deref()).await?;
        // The event keeps the stored form of the kind (`User`, `Service`).
        let event =
            events::PrincipalCreated { principal_id: p.id.to_string(), kind: kind.as_str().into(), display_name: name };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(p)
    }

    /// A disabled principal's tokens stop carrying permissions. Emits `PrincipalDisabled`.
    async fn disable_principal(&self, ctx: &Context<'_>, id: ID, tenant_id: Option<ID>) -> Result<Principal> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let p = store::disable_principal(&mut work, &tenant, PrincipalId::from_id("id", &id)?).await?;
        work.emit(&tenant, &events::PrincipalDisabled { principal_id: p.id.to_string() }).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Creates or replaces a role. Emits `RoleDefined`.
    async fn define_role(&self, ctx: &Context<'_>, input: DefineRoleInput, tenant_id: Option<ID>) -> Result<Role> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        let key = role_key(&input.key)?;
        let perms = permissions(&tenant, input.permissions)?;
        let description = kernel::error::clip(input.description.trim(), 500);
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let role = store::upsert_role(&mut work, &tenant, &key, &description, &perms).await?;
        work.emit(&tenant, &events::RoleDefined { role_key: key, permissions: perms }).await?;
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
        store::bind_role(&mut work, &tenant, principal, &role_key).await?;
        let event = events::RoleBound { principal_id: principal.to_string(), role_key };
        work.emit(&tenant, &event).await?;
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
        if !store::unbind_role(&mut work, &tenant, principal, &role_key).await? {
            return Err(Error::not_found("no such binding"));
        }
        let event = events::RoleUnbound { principal_id: principal.to_string(), role_key };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(true)
    }

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
        let scopes = permissions(&tenant, scopes)?;
        let (client_id, secret) = (tokens::new_client_id(&tenant), tokens::new_client_secret());
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let client =
            store::insert_client(&mut work, &tenant, &client_id, principal, &tokens::sha256_hex(&secret), &scopes)
                .await?;
        let event = events::OAuthClientCreated { client_id, principal_id: principal.to_string(), scopes };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(OAuthClientWithSecret { client, client_secret: secret })
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
        let secret = tokens::new_client_secret();
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let client = store::rotate_client_secret(&mut work, &tenant, &client_id, &tokens::sha256_hex(&secret)).await?;
        work.emit(&tenant, &events::OAuthClientSecretRotated { client_id }).await?;
        work.commit().await?;
        Ok(OAuthClientWithSecret { client, client_secret: secret })
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
        let client = store::revoke_client(&mut work, &tenant, &client_id).await?;
        work.emit(&tenant, &events::OAuthClientRevoked { client_id }).await?;
        work.commit().await?;
        Ok(client)
    }

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
        let name = kernel::error::text("name", &input.name, 200)?;
        if !(1..=365).contains(&input.expires_in_days) {
            return Err(Error::bad_input("expiresInDays", "expiresInDays must be between 1 and 365"));
        }
        let scopes = permissions(&tenant, input.scopes)?;
        let st = state(ctx);
        let mut work = Work::tenant(&st.kernel.db, &tenant, ctx.event_meta()).await?;
        let held = store::effective_permissions(&mut work, &tenant, principal).await?;
        if let Some(extra) = scopes.iter().find(|s| !held.contains(s)) {
            return Err(Error::forbidden(format!("the principal does not hold `{extra}`")));
        }
        let token = api_token::generate();
        let expires_at = chrono::Utc::now() + chrono::Duration::days(i64::from(input.expires_in_days));
        let meta = store::insert_api_token(
            &mut work,
            &tenant,
            principal,
            &name,
            &api_token::hash(&token),
            &scopes,
            expires_at,
        )
        .await?;
        let event = events::ApiTokenCreated {
            token_id: meta.id.to_string(),
            principal_id: principal.to_string(),
            scopes,
            expires_at: expires_at.timestamp(),
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(ApiTokenWithSecret { api_token: meta, token })
    }

    /// Revokes an API token everywhere within about a second. Emits `ApiTokenRevoked`.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID, tenant_id: Option<ID>) -> Result<bool> {
        let tenant = tenant_for(ctx, tenant_id.as_ref(), WRITE)?;
        revoke_api_token(state(ctx), &tenant, token_id("id", &id)?, &ctx.event_meta()).await?;
        Ok(true)
    }
}

/// Revokes in the database with its event, then drops this replica's cached copies at once (other
/// replicas and subgraphs drop theirs when the event reaches them).
pub async fn revoke_api_token(state: &State, tenant: &Authorized, id: uuid::Uuid, meta: &EventMeta) -> Result<()> {
    let mut work = Work::tenant(&state.kernel.db, tenant, meta.clone()).await?;
    let hash = store::revoke_api_token(&mut work, tenant, id).await?;
    let event = events::ApiTokenRevoked { token_id: id.to_string(), token_hash: hash.clone() };
    work.emit(tenant, &event).await?;
    work.commit().await?;
    state.kernel.auth.forget_api_token(&hash).await;
    Ok(())
}
