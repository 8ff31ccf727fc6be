//! Per-request DataLoaders: principals by id and the roles bound to each principal batch into one query
//! per request, tenant and key type, so a request's statement count does not grow with the number of
//! principals it returns.
//!
//! A loader is built for one request and one caller, so its batches are never shared between requests or
//! callers. Keys name their tenant, because platform operators name the tenant per field (`tenantId`); a
//! loader reads only the caller's own tenant (the platform's for a token without one) unless the caller is
//! a platform operator, so a key of another tenant finds nothing, whoever built it. Resolvers still check
//! who may read what before they load.

use std::collections::{BTreeMap, HashMap};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::Context;
use kernel::db::Db;
use kernel::error::LoadError;
use kernel::{Error, RequestContext, TenantId};

use crate::ids::PrincipalId;
use crate::principals::{self, Principal};
use crate::roles::{self, Role};

pub struct IdentityLoader {
    db: Db,
    /// The caller's tenant; the platform's for a token without one.
    tenant: TenantId,
    /// Platform operators read the tenants they name.
    operator: bool,
}

impl IdentityLoader {
    pub fn per_request(db: Db, ctx: &RequestContext) -> DataLoader<Self> {
        let tenant = ctx.caller.tenant.clone().unwrap_or_else(TenantId::platform);
        let loader = Self { db, tenant, operator: kernel::Authorize::is_operator(ctx) };
        // Batches run in the span of the request that triggered them, so their SQL is logged under its trace.
        DataLoader::new(loader, |batch| tokio::spawn(tracing::Instrument::in_current_span(batch)))
    }

    /// The principals of `keys` by tenant, leaving out tenants this caller may not read.
    fn by_tenant<'k>(
        &self,
        keys: impl IntoIterator<Item = (&'k TenantId, PrincipalId)>,
    ) -> BTreeMap<TenantId, Vec<PrincipalId>> {
        let mut out: BTreeMap<TenantId, Vec<PrincipalId>> = BTreeMap::new();
        for (tenant, id) in keys {
            if self.operator || *tenant == self.tenant {
                out.entry(tenant.clone()).or_default().push(id);
            }
        }
        out
    }
}

/// The request's loader (every request gets one).
pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a DataLoader<IdentityLoader>, Error> {
    ctx.data_opt::<DataLoader<IdentityLoader>>()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("the request has no identity loader")))
}

/// A principal, by tenant and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrincipalKey {
    pub tenant: TenantId,
    pub id: PrincipalId,
}

impl Loader<PrincipalKey> for IdentityLoader {
    type Value = Principal;
    type Error = LoadError;

    async fn load(&self, keys: &[PrincipalKey]) -> Result<HashMap<PrincipalKey, Principal>, LoadError> {
        let mut out = HashMap::with_capacity(keys.len());
        for (tenant, ids) in self.by_tenant(keys.iter().map(|k| (&k.tenant, k.id))) {
            let mut tx = self.db.tenant_tx(&tenant).await?;
            let rows = principals::store::principals_by_id(&mut tx, &tenant, &ids).await?;
            tx.commit().await?;
            out.extend(rows.into_iter().map(|p| (PrincipalKey { tenant: p.tenant_id.clone(), id: p.id }, p)));
        }
        Ok(out)
    }
}

/// The roles bound to a principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RolesOf {
    pub tenant: TenantId,
    pub principal: PrincipalId,
}

impl Loader<RolesOf> for IdentityLoader {
    type Value = Vec<Role>;
    type Error = LoadError;

    async fn load(&self, keys: &[RolesOf]) -> Result<HashMap<RolesOf, Vec<Role>>, LoadError> {
        let mut out: HashMap<RolesOf, Vec<Role>> = HashMap::with_capacity(keys.len());
        for (tenant, principals) in self.by_tenant(keys.iter().map(|k| (&k.tenant, k.principal))) {
            let mut tx = self.db.tenant_tx(&tenant).await?;
            let rows = roles::store::roles_of(&mut tx, &tenant, &principals).await?;
            tx.commit().await?;
            for row in rows {
                out.entry(RolesOf { tenant: tenant.clone(), principal: row.principal_id }).or_default().push(row.role);
            }
        }
        Ok(out)
    }
}
