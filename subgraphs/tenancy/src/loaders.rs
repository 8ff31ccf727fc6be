//! Per-request DataLoaders: every cross-object field batches into one query per request and key type, so a
//! request's query count does not grow with the number of objects it returns. A loader is built for one
//! request and one caller's [`Access`], so its cache is never shared between requests or tenants.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Context;
use chrono::Utc;
use kernel::db::{Access, Db};
use kernel::error::LoadError;
use kernel::{Error, TenantId};

use crate::model::{Edition, Quota, Tenant, TenantSubscription};

pub struct TenancyLoader {
    pub db: Db,
    pub access: Access,
}

impl TenancyLoader {
    pub fn per_request(db: Db, access: Access) -> DataLoader<Self> {
        // Batches run in the span of the request that triggered them, so their SQL is logged under its trace.
        DataLoader::new(Self { db, access }, |batch| tokio::spawn(tracing::Instrument::in_current_span(batch)))
    }
}

/// The request's loader; absent only when the caller has neither a tenant nor operator rights.
pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a DataLoader<TenancyLoader>, Error> {
    ctx.data_opt::<DataLoader<TenancyLoader>>()
        .ok_or_else(|| Error::forbidden("this operation needs a tenant-scoped or platform-operator token"))
}

fn keys_as_strings(keys: &[TenantId]) -> Vec<String> {
    keys.iter().map(|k| k.as_str().to_owned()).collect()
}

impl Loader<TenantId> for TenancyLoader {
    type Value = Tenant;
    type Error = LoadError;

    async fn load(&self, keys: &[TenantId]) -> Result<HashMap<TenantId, Tenant>, LoadError> {
        let mut tx = self.access.begin(&self.db).await?;
        let rows = crate::tenants::store::tenants_by_id(&mut tx, &keys_as_strings(keys)).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|t| (t.id.clone(), t)).collect())
    }
}

/// An edition version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EditionKey(pub String, pub i32);

impl Loader<EditionKey> for TenancyLoader {
    type Value = Edition;
    type Error = LoadError;

    async fn load(&self, keys: &[EditionKey]) -> Result<HashMap<EditionKey, Edition>, LoadError> {
        let ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        let versions: Vec<i32> = keys.iter().map(|k| k.1).collect();
        let rows = crate::editions::store::editions_by_key(self.db.shared(), &ids, &versions).await?;
        Ok(rows.into_iter().map(|e| (EditionKey(e.id.clone(), e.version), e)).collect())
    }
}

/// All subscriptions of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionsOf(pub TenantId);

impl Loader<SubscriptionsOf> for TenancyLoader {
    type Value = Vec<TenantSubscription>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[SubscriptionsOf],
    ) -> Result<HashMap<SubscriptionsOf, Vec<TenantSubscription>>, LoadError> {
        let tenants: Vec<String> = keys.iter().map(|k| k.0.as_str().to_owned()).collect();
        let mut tx = self.access.begin(&self.db).await?;
        let rows = crate::editions::store::subscriptions_of(&mut tx, &tenants).await?;
        tx.commit().await?;
        let mut out: HashMap<SubscriptionsOf, Vec<TenantSubscription>> = HashMap::new();
        for row in rows {
            out.entry(SubscriptionsOf(row.tenant_id.clone())).or_default().push(row);
        }
        Ok(out)
    }
}

/// All quotas of a tenant, with the current period's usage.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuotasOf(pub TenantId);

impl Loader<QuotasOf> for TenancyLoader {
    type Value = Vec<Quota>;
    type Error = LoadError;

    async fn load(&self, keys: &[QuotasOf]) -> Result<HashMap<QuotasOf, Vec<Quota>>, LoadError> {
        let tenants: Vec<String> = keys.iter().map(|k| k.0.as_str().to_owned()).collect();
        let now = Utc::now();
        let mut tx = self.access.begin(&self.db).await?;
        let defs = crate::quotas::store::quotas_of(&mut tx, &tenants).await?;
        let (t, (q, s)): (Vec<String>, (Vec<String>, Vec<_>)) = defs
            .iter()
            .map(|d| (d.tenant_id.as_str().to_owned(), (d.def.key.clone(), d.def.period.start(now))))
            .unzip();
        let usage: HashMap<(String, String), i64> = crate::quotas::store::usage_of(&mut tx, &t, &q, &s)
            .await?
            .into_iter()
            .map(|(t, q, _, used)| ((t, q), used))
            .collect();
        tx.commit().await?;
        let mut out: HashMap<QuotasOf, Vec<Quota>> = HashMap::new();
        for d in defs {
            let used = usage.get(&(d.tenant_id.as_str().to_owned(), d.def.key.clone())).copied().unwrap_or(0);
            out.entry(QuotasOf(d.tenant_id)).or_default().push(d.def.with_usage(used, now));
        }
        Ok(out)
    }
}
