//! The per-request DataLoader: every nested field (a tenant's projects, a project's modules, a module's
//! dependencies, …) batches into one query per request and key type, so a request's statement count does
//! not grow with the number of objects it returns. Each area implements `Loader<Key>` for its own keys
//! beside its store. A loader is built for one request and one caller's [`Access`], so its cache is never
//! shared between requests or tenants.

use async_graphql::dataloader::DataLoader;
use async_graphql::Context;
use kernel::db::{Access, Db, Tx};
use kernel::{Error, Result, TenantId};

pub struct CatalogueLoader {
    pub db: Db,
    pub access: Access,
}

impl CatalogueLoader {
    pub fn per_request(db: Db, access: Access) -> DataLoader<Self> {
        // Batches run in the span of the request that triggered them, so their SQL is logged under its trace.
        DataLoader::new(Self { db, access }, |batch| tokio::spawn(tracing::Instrument::in_current_span(batch)))
    }

    /// A transaction that sees what the caller may see: its tenant's rows, or every tenant's for operators.
    pub async fn begin(&self) -> Result<Tx> {
        self.access.begin(&self.db).await
    }

    /// The tenants a lookup by id alone may search: the caller's own, or `None` (every tenant) for operators.
    pub fn scope(&self) -> Option<Vec<String>> {
        match &self.access {
            Access::Platform => None,
            Access::Tenant(own) => Some(vec![own.as_str().to_owned()]),
        }
    }

    /// The tenants whose rows `keys` may name: a tenant caller only ever reaches its own.
    pub fn visible<'a>(&self, tenants: impl Iterator<Item = &'a TenantId>) -> Vec<String> {
        let mut out: Vec<String> = tenants
            .filter(|t| match &self.access {
                Access::Platform => true,
                Access::Tenant(own) => own == *t,
            })
            .map(|t| t.as_str().to_owned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The request's loader; absent only when the caller has neither a tenant nor operator rights.
pub fn loader<'a>(ctx: &'a Context<'_>) -> Result<&'a DataLoader<CatalogueLoader>, Error> {
    ctx.data_opt::<DataLoader<CatalogueLoader>>()
        .ok_or_else(|| Error::forbidden("this operation needs a tenant-scoped or platform-operator token"))
}
