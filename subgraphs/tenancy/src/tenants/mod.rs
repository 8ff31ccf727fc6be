//! Tenants: provisioning and the lifecycle (Provisioning → Active ⇄ Suspended, any → Retired). These run
//! from more than one entry point (the GraphQL API and the command consumer), each inside the caller's
//! unit of work, each emitting its event into it.

pub mod schema;
pub mod store;

use kernel::{Error, Result, TenantId, Work};

use crate::domain::{self, IsolationModel, TenantStatus};
use crate::events;
use crate::model::{QuotaDefinition, Tenant};

/// A validated request to provision a tenant.
pub struct Provision {
    pub id: TenantId,
    pub display_name: String,
    pub region: String,
    pub edition_id: String,
    pub isolation_model: IsolationModel,
}

impl Provision {
    pub fn parse(
        id: &str,
        display_name: &str,
        region: &str,
        edition_id: &str,
        isolation: IsolationModel,
    ) -> Result<Self> {
        Ok(Self {
            id: TenantId::parse(id)?,
            display_name: domain::display_name(display_name)?,
            region: domain::region(region)?,
            edition_id: domain::key("editionId", edition_id, 64)?,
            isolation_model: isolation,
        })
    }
}

/// Creates the tenant (status `Provisioning`), subscribes it to the edition's newest published version and
/// gives it that version's quotas. The transaction must be allowed to write platform rows.
pub async fn provision(tx: &mut Work, p: &Provision) -> Result<Tenant> {
    let edition = crate::editions::store::share_latest_published(tx, &p.edition_id).await?;
    let tenant = crate::tenants::store::insert_tenant(
        tx,
        &crate::tenants::store::NewTenant {
            id: &p.id,
            display_name: &p.display_name,
            region: &p.region,
            edition_id: &edition.id,
            isolation_model: p.isolation_model,
        },
    )
    .await?;
    crate::editions::store::switch_subscription(tx, &p.id, &edition).await?;
    for (key, spec) in &edition.quota_template.0 {
        crate::quotas::store::upsert_quota(
            tx,
            &p.id,
            &QuotaDefinition { key: key.clone(), limit: spec.limit, period: spec.period },
        )
        .await?;
    }
    let event = events::TenantProvisioned {
        tenant_id: p.id.to_string(),
        display_name: p.display_name.clone(),
        region: p.region.clone(),
        edition_id: edition.id.clone(),
        edition_version: edition.version,
        isolation_model: p.isolation_model,
    };
    tx.emit(&p.id, &event).await?;
    Ok(tenant)
}

/// Moves a tenant through its lifecycle, refusing illegal transitions and retiring a tenant on legal hold.
pub async fn transition(tx: &mut Work, id: &TenantId, to: TenantStatus, reason: Option<String>) -> Result<Tenant> {
    let mut tenant = crate::tenants::store::lock_tenant(tx, id).await?;
    let from = tenant.status;
    tenant.status = from.transition(to)?;
    if to == TenantStatus::Retired {
        if tenant.legal_hold {
            return Err(Error::conflict(format!("tenant `{id}` is on legal hold and cannot be retired")));
        }
        crate::editions::store::end_subscription(tx, id).await?;
    }
    tenant.status_reason = reason.clone();
    let tenant = crate::tenants::store::update_tenant(tx, &tenant).await?;
    let tenant_id = id.to_string();
    match (from, to) {
        (TenantStatus::Suspended, TenantStatus::Active) => {
            tx.emit(id, &events::TenantReactivated { tenant_id, from, reason }).await?
        }
        (_, TenantStatus::Active) => tx.emit(id, &events::TenantActivated { tenant_id, from, reason }).await?,
        (_, TenantStatus::Suspended) => tx.emit(id, &events::TenantSuspended { tenant_id, from, reason }).await?,
        (_, TenantStatus::Retired) => tx.emit(id, &events::TenantRetired { tenant_id, from, reason }).await?,
        (_, TenantStatus::Provisioning) => unreachable!("no transition leads back to Provisioning"),
    };
    Ok(tenant)
}
