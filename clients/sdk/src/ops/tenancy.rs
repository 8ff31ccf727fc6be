//! Tenancy: the caller's tenant.

use cynic::QueryBuilder;

use crate::schema;
use crate::{Client, DateTime, Error};

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Tenant")]
pub struct Tenant {
    pub id: cynic::Id,
    pub display_name: String,
    pub status: TenantStatus,
    pub edition_id: String,
    pub created_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
    Retired,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
struct CurrentTenant {
    current_tenant: Tenant,
}

impl Client {
    /// The caller's tenant.
    ///
    /// ```no_run
    /// # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
    /// let tenant = client.current_tenant().await?;
    /// println!("{} is {:?}", tenant.display_name, tenant.status);
    /// # Ok(()) }
    /// ```
    pub async fn current_tenant(&self) -> Result<Tenant, Error> {
        Ok(self.run(CurrentTenant::build(())).await?.current_tenant)
    }
}
