//! Quotas' share of the roots: setting a tenant's limits (operators) and consuming them.

use std::time::Duration;

use async_graphql::{Context, Object, ID};
use kernel::context::ContextExt;
use kernel::error::OnConstraint;
use kernel::{Authorize, Error, Result, TenantId, Work};

use crate::domain::{self, TenantStatus};
use crate::events;
use crate::loaders::loader;
use crate::model::{Quota, QuotaDefinition, QuotaLimit};

pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

use crate::state;

#[derive(Default)]
pub struct QuotaMutation;

#[Object]
impl QuotaMutation {
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
        crate::quotas::store::upsert_quota(&mut work, &tenant, &def)
            .await
            .on_constraint("quota_definitions_tenant_id_fkey", || Error::not_found(format!("no tenant `{tenant}`")))?;
        let now = chrono::Utc::now();
        let used = crate::quotas::store::quota_used(&mut work, &tenant, &def.key, def.period.start(now)).await?;
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
                let def = crate::quotas::store::quota_definition(&mut tx, &tenant_id, &key)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("no quota `{}`", kernel::error::clip(&key, 64))))?;
                tx.commit().await?;
                st.kernel.cache.put_json(&cache_key, &def, Duration::from_secs(300)).await;
                def
            }
        };
        crate::quotas::consume(
            &st.kernel.db,
            ctx.request().event_meta(),
            &st.kernel.cache,
            &st.quota,
            &tenant_id,
            &def,
            amount,
        )
        .await
    }
}
