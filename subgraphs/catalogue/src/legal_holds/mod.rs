//! Legal hold: tenancy's `TenantLegalHoldChanged`, projected into `legal_holds` by the kernel's consumer
//! (the latest event by `occurredAt` wins, so redelivered or reordered events leave the newest state).
//! While a tenant is on hold, the validation-result retention (`blueprints/retention.rs`) keeps every
//! partition holding its rows.

use kernel::contracts::tenancy::LegalHolds;

/// Catalogue's legal-hold consumer (queue `catalogue.legal-holds`).
pub const CONSUMER: LegalHolds = LegalHolds { name: "catalogue.legal-holds" };
