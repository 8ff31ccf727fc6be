//! Events tenancy publishes (routing key `tenancy.<eventType>`) and the commands it accepts.
//! Each payload names its type and schema version; a breaking change makes a new type (`…V2`).

use kernel::envelope::Event;
use serde::{Deserialize, Serialize};

use crate::domain::{IsolationModel, TenantStatus};
use crate::model::QuotaLimit;

/// The routing-key prefix of everything tenancy publishes.
pub const DOMAIN: &str = "tenancy";

macro_rules! event {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($(#[$fdoc])* pub $field: $ty),* }
        impl Event for $name {
            const TYPE: &'static str = stringify!($name);
        }
    };
}

event!(
    /// A tenant was created (status `Provisioning`) with a subscription and quotas from its edition.
    TenantProvisioned {
        tenant_id: String,
        display_name: String,
        region: String,
        edition_id: String,
        edition_version: i32,
        isolation_model: IsolationModel,
    }
);
event!(
    /// A tenant's lifecycle status changed. `TenantActivated`, `TenantSuspended`, `TenantReactivated` and
    /// `TenantRetired` share this shape.
    TenantActivated { tenant_id: String, from: TenantStatus, reason: Option<String> }
);
event!(TenantSuspended { tenant_id: String, from: TenantStatus, reason: Option<String> });
event!(TenantReactivated { tenant_id: String, from: TenantStatus, reason: Option<String> });
event!(TenantRetired { tenant_id: String, from: TenantStatus, reason: Option<String> });
event!(TenantUpdated { tenant_id: String, display_name: String });
event!(TenantLegalHoldChanged { tenant_id: String, legal_hold: bool });
event!(TenantEditionChanged { tenant_id: String, edition_id: String, edition_version: i32 });
event!(
    /// A draft edition version was created.
    EditionCreated { edition_id: String, version: i32, name: String }
);
event!(EditionUpdated { edition_id: String, version: i32, name: String });
event!(EditionPublished { edition_id: String, version: i32 });
event!(EditionRetired { edition_id: String, version: i32 });
event!(FeatureFlagChanged { key: String, version: i32, enabled: bool, rollout_percent: i32 });
event!(FeatureFlagDeleted { key: String });
event!(
    /// A tenant's quota limit was set (by an operator, or from an edition's template).
    QuotaDefined { tenant_id: String, quota: QuotaLimit }
);

event!(
    /// Command: provision a tenant. Sent by platform automation; the envelope's `tenantId` is the new tenant.
    /// Applying it twice is harmless (the inbox sees to it).
    ProvisionTenant {
        display_name: String,
        region: String,
        edition_id: String,
        #[serde(default)]
        isolation_model: IsolationModel,
    }
);
