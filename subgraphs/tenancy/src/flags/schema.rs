//! Feature flags' share of the roots: evaluation for the caller's tenant, and definitions (operators).

use async_graphql::{Context, InputObject, Object};
use kernel::context::ContextExt;
use kernel::{Authorize, Error, Result, TenantId, Work};

use crate::domain::{self};
use crate::events;
use crate::flags::FlagEvaluation;
use crate::model::FeatureFlag;

pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

use crate::state;
use crate::tenants::schema::visible_tenant;

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

#[derive(Default)]
pub struct FlagQuery;

#[Object]
impl FlagQuery {
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
        let flags = crate::flags::store::all_flags(state(ctx).kernel.db.shared()).await?;
        kernel::server::charge(ctx, flags.len())?;
        Ok(flags)
    }
}

#[derive(Default)]
pub struct FlagMutation;

#[Object]
impl FlagMutation {
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
        let flag = crate::flags::store::upsert_flag(&mut work, &flag).await?;
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
        if !crate::flags::store::delete_flag(&mut work, &key).await? {
            return Err(Error::not_found(format!("no feature flag `{}`", kernel::error::clip(&key, 64))));
        }
        work.emit(&TenantId::platform(), &events::FeatureFlagDeleted { key }).await?;
        work.commit().await?;
        Ok(true)
    }
}
