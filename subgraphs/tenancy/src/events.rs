//! Events tenancy publishes (routing key `tenancy.<eventType>`) and the commands it accepts.
//! Each payload names its type and schema version; a breaking change makes a new type (`…V2`).

use crate::domain::{IsolationModel, TenantStatus};
use crate::model::QuotaLimit;

use kernel::envelope::Event;

/// Governance reads the legal hold (its retention skips a tenant on hold): a shared contract type.
pub use kernel::contracts::tenancy::TenantLegalHoldChanged;

/// Usage governance meters: a granted quota consumption (see [`UsageRecorded`]).
pub use kernel::contracts::usage::UsageRecord;

/// The routing-key prefix of everything tenancy publishes.
pub const DOMAIN: &str = "tenancy";

kernel::events! {
    domain = "tenancy";
    /// A tenant was created (status `Provisioning`) with a subscription and quotas from its edition.
    TenantProvisioned {
        tenant_id: String,
        display_name: String,
        region: String,
        edition_id: String,
        edition_version: i32,
        isolation_model: IsolationModel,
    }
    /// A tenant's lifecycle status changed. `TenantActivated`, `TenantSuspended`, `TenantReactivated` and
    /// `TenantRetired` share this shape.
    TenantActivated { tenant_id: String, from: TenantStatus, reason: Option<String> }
    TenantSuspended { tenant_id: String, from: TenantStatus, reason: Option<String> }
    TenantReactivated { tenant_id: String, from: TenantStatus, reason: Option<String> }
    TenantRetired { tenant_id: String, from: TenantStatus, reason: Option<String> }
    TenantUpdated { tenant_id: String, display_name: String }
    TenantEditionChanged { tenant_id: String, edition_id: String, edition_version: i32 }
    /// A draft edition version was created.
    EditionCreated { edition_id: String, version: i32, name: String }
    EditionUpdated { edition_id: String, version: i32, name: String }
    EditionPublished { edition_id: String, version: i32 }
    EditionRetired { edition_id: String, version: i32 }
    FeatureFlagChanged { key: String, version: i32, enabled: bool, rollout_percent: i32 }
    FeatureFlagDeleted { key: String }
    /// A tenant's quota limit was set (by an operator, or from an edition's template).
    QuotaDefined { tenant_id: String, quota: QuotaLimit }
    /// A quota consumption was granted: governance records it as usage of the meter named like the quota
    /// (in the transaction that adds to the balance, so a quota's `used` and the meter's usage reconcile).
    UsageRecorded { #[serde(flatten)] record: UsageRecord }
    /// Command: provision a tenant. Sent by platform automation; the envelope's `tenantId` is the new tenant.
    /// Applying it twice is harmless (the inbox sees to it).
    ProvisionTenant {
        display_name: String,
        region: String,
        edition_id: String,
        #[serde(default)]
        isolation_model: IsolationModel,
    }
}

// Every subgraph closes a suspended or retired tenant's live subscriptions by these names.
const _: () =
    assert!(kernel::contracts::same(TenantSuspended::TYPE, kernel::contracts::tenancy::TenantSuspended::TYPE));
const _: () = assert!(kernel::contracts::same(TenantRetired::TYPE, kernel::contracts::tenancy::TenantRetired::TYPE));
const _: () = assert!(kernel::contracts::same(DOMAIN, kernel::contracts::tenancy::DOMAIN));
const _: () = assert!(kernel::contracts::same(UsageRecorded::TYPE, kernel::contracts::usage::USAGE_RECORDED));
