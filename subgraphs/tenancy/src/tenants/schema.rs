//! Tenants' share of the roots: reading tenants (and the `Tenant` entity), their lifecycle, legal hold,
//! renames and edition changes, and the live `tenantEvents` subscription.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, Subscription, ID};
use futures::{Stream, StreamExt};
use kernel::context::ContextExt;
use kernel::db::Access;
use kernel::pagination::Page;
use kernel::{Authorize, Error, Result, TenantId, Work};
use tokio_stream::wrappers::BroadcastStream;

use crate::domain::{self, IsolationModel, TenantStatus};
use crate::events;
use crate::loaders::loader;
use crate::model::{DomainEvent, QuotaDefinition, Tenant};

pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

use crate::state;

/// Operators read everything; a tenant's callers read their own rows with `tenancy:read`.
pub(crate) fn reader(ctx: &Context<'_>) -> Result<Access> {
    ctx.authorize_read(READ)
}

/// Loads a tenant the caller may see, or `NOT_FOUND` — also for another tenant's id, so ids cannot be probed.
pub(crate) async fn visible_tenant(ctx: &Context<'_>, id: &str) -> Result<Tenant> {
    let access = reader(ctx)?;
    let id = TenantId::parse(id)?;
    let not_found = || Error::not_found(format!("no tenant `{id}`"));
    if let Access::Tenant(own) = &access {
        if *own != id {
            return Err(not_found());
        }
    }
    loader(ctx)?.load_one(id.clone()).await?.ok_or_else(not_found)
}

#[derive(InputObject)]
pub struct ProvisionTenantInput {
    /// Slug: 3–63 lower-case letters, digits and hyphens. Immutable.
    pub id: ID,
    pub display_name: String,
    pub region: String,
    /// The edition whose newest published version the tenant subscribes to.
    pub edition_id: String,
    #[graphql(default)]
    pub isolation_model: IsolationModel,
}

async fn lifecycle(ctx: &Context<'_>, id: &str, to: TenantStatus, reason: Option<String>) -> Result<Tenant> {
    let req = ctx.request();
    let operator = req.authorize_operator()?;
    let id = TenantId::parse(id)?;
    let reason = reason.map(|r| kernel::error::text("reason", &r, 500)).transpose()?;
    let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
    let tenant = crate::tenants::transition(&mut work, &id, to, reason).await?;
    work.commit().await?;
    Ok(tenant)
}

#[derive(Default)]
pub struct TenantQuery;

#[Object]
impl TenantQuery {
    /// The caller's own tenant.
    async fn current_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        let id = ctx.authorize(READ)?.into_tenant();
        visible_tenant(ctx, id.as_str()).await
    }

    /// A tenant by id. Tenants see only themselves; anything else is `NOT_FOUND`.
    async fn tenant(&self, ctx: &Context<'_>, id: ID) -> Result<Tenant> {
        visible_tenant(ctx, &id).await
    }

    /// Every tenant, in id order (platform operators).
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        status: Option<TenantStatus>,
    ) -> Result<Connection<String, Tenant>> {
        ctx.authorize_operator()?;
        let page = Page::forward(after, first, 20)?;
        let mut tx = state(ctx).kernel.db.platform_tx().await?;
        let rows =
            crate::tenants::store::list_tenants(&mut tx, page.after.as_deref(), page.fetch_limit(), status).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |t| t.id.to_string()))
    }

    /// Resolves `Tenant` references from other subgraphs, with the same visibility rules as `tenant`.
    #[graphql(entity)]
    async fn find_tenant_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Tenant> {
        visible_tenant(ctx, &id).await
    }
}

#[derive(Default)]
pub struct TenantMutation;

#[Object]
impl TenantMutation {
    /// Creates a tenant in `PROVISIONING`, subscribed to the edition's newest published version, with that
    /// version's quotas. Emits `TenantProvisioned`.
    async fn provision_tenant(&self, ctx: &Context<'_>, input: ProvisionTenantInput) -> Result<Tenant> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let p = crate::tenants::Provision::parse(
            &input.id,
            &input.display_name,
            &input.region,
            &input.edition_id,
            input.isolation_model,
        )?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let tenant = crate::tenants::provision(&mut work, &p).await?;
        work.commit().await?;
        Ok(tenant)
    }

    /// `PROVISIONING` or `SUSPENDED` → `ACTIVE`. Emits `TenantActivated` or `TenantReactivated`.
    async fn activate_tenant(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Tenant> {
        lifecycle(ctx, &id, TenantStatus::Active, reason).await
    }

    /// `ACTIVE` → `SUSPENDED`. Emits `TenantSuspended`.
    async fn suspend_tenant(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<Tenant> {
        lifecycle(ctx, &id, TenantStatus::Suspended, Some(reason)).await
    }

    /// Any state but `RETIRED` → `RETIRED`, unless on legal hold; ends the subscription. Emits `TenantRetired`.
    async fn retire_tenant(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Tenant> {
        lifecycle(ctx, &id, TenantStatus::Retired, reason).await
    }

    /// Puts a tenant on legal hold or releases it. Emits `TenantLegalHoldChanged`.
    async fn set_legal_hold(&self, ctx: &Context<'_>, id: ID, legal_hold: bool) -> Result<Tenant> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let id = TenantId::parse(&id)?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let mut tenant = crate::tenants::store::lock_tenant(&mut work, &id).await?;
        tenant.legal_hold = legal_hold;
        let tenant = crate::tenants::store::update_tenant(&mut work, &tenant).await?;
        let event = events::TenantLegalHoldChanged { tenant_id: id.to_string(), legal_hold };
        work.emit(&id, &event).await?;
        work.commit().await?;
        Ok(tenant)
    }

    /// Renames the caller's own tenant (`tenancy:write`). Emits `TenantUpdated`.
    async fn update_tenant(&self, ctx: &Context<'_>, display_name: String) -> Result<Tenant> {
        let req = ctx.request();
        let id = req.authorize(WRITE)?;
        let display_name = domain::display_name(&display_name)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &id, req.event_meta()).await?;
        let mut tenant = crate::tenants::store::lock_tenant(&mut work, &id).await?;
        if tenant.status == TenantStatus::Retired {
            return Err(Error::conflict("a retired tenant cannot change"));
        }
        tenant.display_name = display_name.clone();
        let tenant = crate::tenants::store::update_tenant(&mut work, &tenant).await?;
        work.emit(&id, &events::TenantUpdated { tenant_id: id.to_string(), display_name }).await?;
        work.commit().await?;
        Ok(tenant)
    }

    /// Moves a tenant to the newest published version of another edition: ends the current subscription,
    /// starts a new one and applies the edition's quota limits. Emits `TenantEditionChanged`.
    async fn change_tenant_edition(&self, ctx: &Context<'_>, id: ID, edition_id: String) -> Result<Tenant> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let id = TenantId::parse(&id)?;
        let edition_id = domain::key("editionId", &edition_id, 64)?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let mut tenant = crate::tenants::store::lock_tenant(&mut work, &id).await?;
        if tenant.status == TenantStatus::Retired {
            return Err(Error::conflict("a retired tenant cannot change edition"));
        }
        let edition = crate::editions::store::share_latest_published(&mut work, &edition_id).await?;
        crate::editions::store::switch_subscription(&mut work, &id, &edition).await?;
        for (key, spec) in &edition.quota_template.0 {
            let def = QuotaDefinition { key: key.clone(), limit: spec.limit, period: spec.period };
            crate::quotas::store::upsert_quota(&mut work, &id, &def).await?;
        }
        tenant.edition_id = edition.id.clone();
        let tenant = crate::tenants::store::update_tenant(&mut work, &tenant).await?;
        let event = events::TenantEditionChanged {
            tenant_id: id.to_string(),
            edition_id: edition.id.clone(),
            edition_version: edition.version,
        };
        work.emit(&id, &event).await?;
        work.commit().await?;
        Ok(tenant)
    }
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Streams a tenant's domain events as they are published, for live dashboards. Tenant callers get
    /// their own tenant's (`tenancy:read`); platform operators name the tenant. Events come from RabbitMQ,
    /// so every replica streams every event, whichever replica made the change. The stream ends when the
    /// caller's token expires.
    async fn tenant_events(
        &self,
        ctx: &Context<'_>,
        tenant_id: Option<ID>,
        #[graphql(desc = "Only these event types; every type when omitted.")] event_types: Option<Vec<String>>,
    ) -> Result<impl Stream<Item = DomainEvent>> {
        let req = ctx.request();
        if req.is_operator() && tenant_id.is_none() {
            return Err(Error::bad_input("tenantId", "platform operators must name the tenant"));
        }
        let tenant = req.authorize_tenant(READ, tenant_id.as_ref().map(|id| id.as_str()))?.into_tenant();
        // A suspended or retired tenant's members get no live events (their open streams were closed when
        // it happened, and they cannot simply subscribe again).
        if !req.is_operator() {
            let t = visible_tenant(ctx, tenant.as_str()).await?;
            if matches!(t.status, TenantStatus::Suspended | TenantStatus::Retired) {
                return Err(Error::forbidden(format!("tenant `{tenant}` is {}", t.status.as_str())));
            }
        }
        let events = BroadcastStream::new(state(ctx).events.subscribe()).filter_map(move |item| {
            let wanted = match &item {
                Ok(env) => {
                    env.tenant_id == tenant
                        && event_types.as_ref().is_none_or(|types| types.iter().any(|t| *t == env.event_type))
                }
                // A subscriber too slow for the stream skips what it missed rather than holding up others.
                Err(_) => false,
            };
            std::future::ready(item.ok().filter(|_| wanted).map(|env| DomainEvent::from(&*env)))
        });
        Ok(req.until_expiry(events))
    }
}
