//! Tenancy's query and mutation roots and its federation entity resolver.
//!
//! Who may do what: platform operators (`platform:admin`) provision and manage tenants, editions, quotas and
//! flag definitions; a tenant's callers read their own tenant (`tenancy:read`), rename it (`tenancy:write`)
//! and consume its quotas (`quota:consume`). A tenant caller's tenant comes from the verified token only.
//! Every mutation owns its transaction, and commits its state change with its outbox event.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, Subscription, ID};
use futures::{Stream, StreamExt};
use kernel::context::ContextExt;
use kernel::db::Access;
use kernel::error::OnConstraint;
use kernel::pagination::Page;
use kernel::{Authorize, Error, Result, TenantId, Work};
use sqlx::types::Json;
use tokio_stream::wrappers::BroadcastStream;

use crate::domain::{self, EditionStatus, IsolationModel, TenantStatus};
use crate::events;
use crate::flags::FlagEvaluation;
use crate::loaders::loader;
use crate::model::{
    DomainEvent, Edition, FeatureFlag, Quota, QuotaDefinition, QuotaLimit, QuotaSpec, QuotaTemplate, Tenant,
};
use crate::{ops, quota, store, State};

pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

fn state<'a>(ctx: &'a Context<'_>) -> &'a State {
    ctx.data_unchecked::<Arc<State>>()
}

/// Operators read everything; a tenant's callers read their own rows with `tenancy:read`.
fn reader(ctx: &Context<'_>) -> Result<Access> {
    ctx.authorize_read(READ)
}

/// Loads a tenant the caller may see, or `NOT_FOUND` — also for another tenant's id, so ids cannot be probed.
async fn visible_tenant(ctx: &Context<'_>, id: &str) -> Result<Tenant> {
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

fn edition_cursor(e: &Edition) -> String {
    format!("{}/{}", e.id, e.version)
}

fn quota_template(items: Vec<QuotaLimit>) -> Result<Json<QuotaTemplate>> {
    let mut out = BTreeMap::new();
    for item in items {
        let key = domain::key("quotaTemplate.key", &item.key, 64)?;
        let limit = domain::non_negative("quotaTemplate.limit", item.limit)?;
        if out.insert(key.clone(), QuotaSpec { limit, period: item.period }).is_some() {
            return Err(Error::bad_input("quotaTemplate", format!("quota `{key}` appears twice")));
        }
    }
    Ok(Json(out))
}

fn feature_set(items: Vec<String>) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let key = domain::key("featureSet", &item, 64)?;
        if seen.insert(key.clone()) {
            out.push(key);
        }
    }
    if out.len() > 200 {
        return Err(Error::bad_input("featureSet", "at most 200 features"));
    }
    Ok(out)
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
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
        let rows = store::list_tenants(&mut tx, page.after.as_deref(), page.fetch_limit(), status).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |t| t.id.to_string()))
    }

    /// An edition version; without `version`, the newest published one. Drafts are visible to operators only.
    async fn edition(&self, ctx: &Context<'_>, id: String, version: Option<i32>) -> Result<Edition> {
        let access = reader(ctx)?;
        let not_found = || Error::not_found(format!("no edition `{id}`"));
        let db = &state(ctx).kernel.db;
        let edition = match version {
            Some(v) => store::editions_by_key(db.shared(), std::slice::from_ref(&id), &[v]).await?.pop(),
            None => {
                let mut tx = db.platform_tx().await?;
                let e = store::share_latest_published(&mut tx, &id).await.ok();
                tx.commit().await?;
                e
            }
        };
        match edition {
            Some(e) if e.status != EditionStatus::Draft || access == Access::Platform => Ok(e),
            _ => Err(not_found()),
        }
    }

    /// Edition versions in (id, version) order. Drafts are listed for operators only.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn editions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Edition>> {
        let access = reader(ctx)?;
        let page = Page::forward(after, first, 20)?;
        let after = match page.after.as_deref() {
            None => None,
            Some(c) => {
                let (id, v) = c.rsplit_once('/').ok_or_else(|| Error::bad_input("after", "not an edition cursor"))?;
                Some((id.to_owned(), v.parse::<i32>().map_err(|_| Error::bad_input("after", "not an edition cursor"))?))
            }
        };
        let mut tx = access.begin(&state(ctx).kernel.db).await?;
        let rows = store::list_editions(
            &mut tx,
            after.as_ref().map(|(id, v)| (id.as_str(), *v)),
            page.fetch_limit(),
            access == Access::Platform,
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, edition_cursor))
    }

    /// Evaluates one feature flag for the caller's tenant. Unknown flags are off.
    async fn feature_flag(&self, ctx: &Context<'_>, key: String) -> Result<FlagEvaluation> {
        let tenant = visible_tenant(ctx, ctx.authorize(READ)?.as_str()).await?;
        let st = state(ctx);
        let set = st.flags.snapshot(&st.kernel.db).await?;
        Ok(set.evaluate(&key, tenant.id.as_str(), &tenant.edition_id))
    }

    /// Evaluates every feature flag for the caller's tenant.
    async fn feature_flags(&self, ctx: &Context<'_>) -> Result<Vec<FlagEvaluation>> {
        let tenant = visible_tenant(ctx, ctx.authorize(READ)?.as_str()).await?;
        let st = state(ctx);
        let set = st.flags.snapshot(&st.kernel.db).await?;
        let flags = set.evaluate_all(tenant.id.as_str(), &tenant.edition_id);
        kernel::server::charge(ctx, flags.len())?;
        Ok(flags)
    }

    /// Every flag definition (platform operators).
    async fn feature_flag_definitions(&self, ctx: &Context<'_>) -> Result<Vec<FeatureFlag>> {
        ctx.authorize_operator()?;
        let flags = store::all_flags(state(ctx).kernel.db.shared()).await?;
        kernel::server::charge(ctx, flags.len())?;
        Ok(flags)
    }

    /// Resolves `Tenant` references from other subgraphs, with the same visibility rules as `tenant`.
    #[graphql(entity)]
    async fn find_tenant_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Tenant> {
        visible_tenant(ctx, &id).await
    }
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

#[derive(InputObject)]
pub struct CreateEditionInput {
    /// Edition id; if it exists, a new draft version of it is created.
    pub id: String,
    pub name: String,
    #[graphql(default)]
    pub feature_set: Vec<String>,
    #[graphql(default)]
    pub quota_template: Vec<QuotaLimit>,
}

/// Fields to change on a draft edition; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateEditionInput {
    pub name: Option<String>,
    pub feature_set: Option<Vec<String>>,
    pub quota_template: Option<Vec<QuotaLimit>>,
}

#[derive(InputObject)]
pub struct FeatureFlagInput {
    pub key: String,
    #[graphql(default)]
    pub description: String,
    pub enabled: bool,
    #[graphql(default)]
    pub rollout_percent: i32,
    #[graphql(default)]
    pub editions: Vec<String>,
    #[graphql(default)]
    pub allow_tenants: Vec<String>,
    #[graphql(default)]
    pub deny_tenants: Vec<String>,
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a tenant in `PROVISIONING`, subscribed to the edition's newest published version, with that
    /// version's quotas. Emits `TenantProvisioned`.
    async fn provision_tenant(&self, ctx: &Context<'_>, input: ProvisionTenantInput) -> Result<Tenant> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let p = ops::Provision::parse(
            &input.id,
            &input.display_name,
            &input.region,
            &input.edition_id,
            input.isolation_model,
        )?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let tenant = ops::provision(&mut work, &p).await?;
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
        let mut tenant = store::lock_tenant(&mut work, &id).await?;
        tenant.legal_hold = legal_hold;
        let tenant = store::update_tenant(&mut work, &tenant).await?;
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
        let mut tenant = store::lock_tenant(&mut work, &id).await?;
        if tenant.status == TenantStatus::Retired {
            return Err(Error::conflict("a retired tenant cannot change"));
        }
        tenant.display_name = display_name.clone();
        let tenant = store::update_tenant(&mut work, &tenant).await?;
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
        let mut tenant = store::lock_tenant(&mut work, &id).await?;
        if tenant.status == TenantStatus::Retired {
            return Err(Error::conflict("a retired tenant cannot change edition"));
        }
        let edition = store::share_latest_published(&mut work, &edition_id).await?;
        store::switch_subscription(&mut work, &id, &edition).await?;
        for (key, spec) in &edition.quota_template.0 {
            let def = QuotaDefinition { key: key.clone(), limit: spec.limit, period: spec.period };
            store::upsert_quota(&mut work, &id, &def).await?;
        }
        tenant.edition_id = edition.id.clone();
        let tenant = store::update_tenant(&mut work, &tenant).await?;
        let event = events::TenantEditionChanged {
            tenant_id: id.to_string(),
            edition_id: edition.id.clone(),
            edition_version: edition.version,
        };
        work.emit(&id, &event).await?;
        work.commit().await?;
        Ok(tenant)
    }

    /// Creates a draft edition (version 1), or the next draft version of an existing one. Emits `EditionCreated`.
    async fn create_edition(&self, ctx: &Context<'_>, input: CreateEditionInput) -> Result<Edition> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let id = domain::key("id", &input.id, 64)?;
        let name = domain::edition_name(&input.name)?;
        let features = feature_set(input.feature_set)?;
        let template = quota_template(input.quota_template)?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let version = match store::lock_latest_edition(&mut work, &id).await? {
            Some(latest) if latest.status == EditionStatus::Draft => {
                return Err(Error::conflict(format!(
                    "edition `{id}` already has draft version {}: update or publish it",
                    latest.version
                )))
            }
            Some(latest) => latest.version + 1,
            None => 1,
        };
        let edition = store::insert_edition(&mut work, &id, version, &name, &features, &template).await?;
        let event = events::EditionCreated { edition_id: id, version, name };
        work.emit(&TenantId::platform(), &event).await?;
        work.commit().await?;
        Ok(edition)
    }

    /// Changes a draft edition. Published and retired versions are immutable (`CONFLICT`). Emits `EditionUpdated`.
    async fn update_edition(
        &self,
        ctx: &Context<'_>,
        id: String,
        version: i32,
        input: UpdateEditionInput,
    ) -> Result<Edition> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let mut edition = store::lock_edition(&mut work, &id, version).await?;
        if edition.status != EditionStatus::Draft {
            return Err(Error::conflict(format!(
                "edition `{id}` version {version} is {} and immutable: create a new version",
                edition.status.as_str()
            )));
        }
        if let Some(name) = input.name {
            edition.name = domain::edition_name(&name)?;
        }
        if let Some(features) = input.feature_set {
            edition.feature_set = feature_set(features)?;
        }
        if let Some(template) = input.quota_template {
            edition.quota_template = quota_template(template)?;
        }
        let edition = store::update_edition(&mut work, &edition).await?;
        let event = events::EditionUpdated { edition_id: id, version, name: edition.name.clone() };
        work.emit(&TenantId::platform(), &event).await?;
        work.commit().await?;
        Ok(edition)
    }

    /// Draft → published; from then on the version is immutable. Emits `EditionPublished`.
    async fn publish_edition(&self, ctx: &Context<'_>, id: String, version: i32) -> Result<Edition> {
        edition_status(ctx, id, version, EditionStatus::Draft, EditionStatus::Published).await
    }

    /// Published → retired; refused while any tenant's active subscription uses it. Emits `EditionRetired`.
    async fn retire_edition(&self, ctx: &Context<'_>, id: String, version: i32) -> Result<Edition> {
        edition_status(ctx, id, version, EditionStatus::Published, EditionStatus::Retired).await
    }

    /// Creates or replaces a feature flag. Emits `FeatureFlagChanged`, which invalidates every cached copy.
    async fn set_feature_flag(&self, ctx: &Context<'_>, input: FeatureFlagInput) -> Result<FeatureFlag> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        if !(0..=100).contains(&input.rollout_percent) {
            return Err(Error::bad_input("rolloutPercent", "rolloutPercent must be between 0 and 100"));
        }
        let tenants = |field: &str, list: Vec<String>| -> Result<Vec<String>> {
            if list.len() > 1000 {
                return Err(Error::bad_input(field, format!("{field} may list at most 1000 tenants")));
            }
            list.iter().map(|t| TenantId::parse(t).map(String::from)).collect()
        };
        let flag = FeatureFlag {
            key: domain::key("key", &input.key, 64)?,
            description: kernel::error::clip(input.description.trim(), 500),
            enabled: input.enabled,
            rollout_percent: input.rollout_percent,
            editions: input.editions.iter().map(|e| domain::key("editions", e, 64)).collect::<Result<_>>()?,
            allow_tenants: tenants("allowTenants", input.allow_tenants)?,
            deny_tenants: tenants("denyTenants", input.deny_tenants)?,
            version: 0,
            updated_at: chrono::Utc::now(),
        };
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let flag = store::upsert_flag(&mut work, &flag).await?;
        let event = events::FeatureFlagChanged {
            key: flag.key.clone(),
            version: flag.version,
            enabled: flag.enabled,
            rollout_percent: flag.rollout_percent,
        };
        work.emit(&TenantId::platform(), &event).await?;
        work.commit().await?;
        Ok(flag)
    }

    /// Deletes a feature flag; evaluations then say `UNKNOWN_FLAG`. Emits `FeatureFlagDeleted`.
    async fn delete_feature_flag(&self, ctx: &Context<'_>, key: String) -> Result<bool> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        if !store::delete_flag(&mut work, &key).await? {
            return Err(Error::not_found(format!("no feature flag `{}`", kernel::error::clip(&key, 64))));
        }
        work.emit(&TenantId::platform(), &events::FeatureFlagDeleted { key }).await?;
        work.commit().await?;
        Ok(true)
    }

    /// Sets one of a tenant's quota limits (platform operators). Emits `QuotaDefined`.
    async fn set_quota(&self, ctx: &Context<'_>, tenant_id: ID, quota: QuotaLimit) -> Result<Quota> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let tenant = TenantId::parse(&tenant_id)?;
        let def = QuotaDefinition {
            key: domain::key("quota.key", &quota.key, 64)?,
            limit: domain::non_negative("quota.limit", quota.limit)?,
            period: quota.period,
        };
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        store::upsert_quota(&mut work, &tenant, &def)
            .await
            .on_constraint("quota_definitions_tenant_id_fkey", || Error::not_found(format!("no tenant `{tenant}`")))?;
        let now = chrono::Utc::now();
        let used = store::quota_used(&mut work, &tenant, &def.key, def.period.start(now)).await?;
        let event = events::QuotaDefined {
            tenant_id: tenant.to_string(),
            quota: QuotaLimit { key: def.key.clone(), limit: def.limit, period: def.period },
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(def.with_usage(used, now))
    }

    /// Consumes `amount` of one of the caller's tenant's quotas (`quota:consume`), or fails with
    /// `QUOTA_EXCEEDED` and consumes nothing. Only an `ACTIVE` tenant consumes.
    async fn consume_quota(
        &self,
        ctx: &Context<'_>,
        key: String,
        #[graphql(default = 1)] amount: i64,
    ) -> Result<Quota> {
        let tenant_id = ctx.authorize(CONSUME)?;
        let tenant = loader(ctx)?
            .load_one(tenant_id.tenant().clone())
            .await?
            .ok_or_else(|| Error::not_found(format!("no tenant `{tenant_id}`")))?;
        if tenant.status != TenantStatus::Active {
            return Err(Error::conflict(format!("tenant is {} and cannot consume quota", tenant.status.as_str())));
        }
        let st = state(ctx);
        let cache_key = st.kernel.cache.key(&tenant_id, kernel::cache::kind::QUOTA_DEFINITION, &key);
        let def = match st.kernel.cache.get_json::<QuotaDefinition>(&cache_key).await {
            Some(def) => def,
            None => {
                let mut tx = st.kernel.db.tenant_tx(&tenant_id).await?;
                let def = store::quota_definition(&mut tx, &tenant_id, &key)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("no quota `{}`", kernel::error::clip(&key, 64))))?;
                tx.commit().await?;
                st.kernel.cache.put_json(&cache_key, &def, Duration::from_secs(300)).await;
                def
            }
        };
        quota::consume(&st.kernel.db, ctx.request().event_meta(), &st.kernel.cache, &st.quota, &tenant_id, &def, amount)
            .await
    }
}

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

async fn lifecycle(ctx: &Context<'_>, id: &str, to: TenantStatus, reason: Option<String>) -> Result<Tenant> {
    let req = ctx.request();
    let operator = req.authorize_operator()?;
    let id = TenantId::parse(id)?;
    let reason = reason.map(|r| kernel::error::text("reason", &r, 500)).transpose()?;
    let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
    let tenant = ops::transition(&mut work, &id, to, reason).await?;
    work.commit().await?;
    Ok(tenant)
}

async fn edition_status(
    ctx: &Context<'_>,
    id: String,
    version: i32,
    from: EditionStatus,
    to: EditionStatus,
) -> Result<Edition> {
    let req = ctx.request();
    let operator = req.authorize_operator()?;
    let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
    let mut edition = store::lock_edition(&mut work, &id, version).await?;
    if edition.status != from {
        return Err(Error::conflict(format!(
            "edition `{id}` version {version} is {}, not {}",
            edition.status.as_str(),
            from.as_str()
        )));
    }
    if to == EditionStatus::Retired {
        let users = store::active_subscriptions_on(&mut work, &id, version).await?;
        if users > 0 {
            return Err(Error::conflict(format!(
                "edition `{id}` version {version} has {users} active subscription(s) and cannot be retired"
            )));
        }
    }
    edition.status = to;
    let edition = store::update_edition(&mut work, &edition).await?;
    let platform = TenantId::platform();
    match to {
        EditionStatus::Published => work.emit(&platform, &events::EditionPublished { edition_id: id, version }).await?,
        _ => work.emit(&platform, &events::EditionRetired { edition_id: id, version }).await?,
    };
    work.commit().await?;
    Ok(edition)
}
