//! Tenancy's GraphQL types. Rows map onto them straight from `store.rs`; fields that reach other rows
//! resolve through the per-request DataLoaders in `loaders.rs`.

use std::collections::BTreeMap;

use async_graphql::{ComplexObject, Context, InputObject, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::TenantId;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::domain::{EditionStatus, IsolationModel, Period, TenantStatus};
use crate::loaders::{loader, EditionKey, QuotasOf, SubscriptionsOf};

/// A customer organisation: the isolation root every other domain's rows hang off.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Tenant {
    #[graphql(skip)]
    pub id: TenantId,
    pub display_name: String,
    /// Data-residency region, e.g. `eu-west`.
    pub region: String,
    pub status: TenantStatus,
    /// Why the tenant was last suspended or retired.
    pub status_reason: Option<String>,
    pub isolation_model: IsolationModel,
    /// While on hold the tenant cannot be retired.
    pub legal_hold: bool,
    /// Id of the edition the tenant currently subscribes to.
    pub edition_id: String,
    pub provisioned_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Tenant {
    /// The tenant's slug: globally unique and immutable.
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    /// The edition version of the active subscription, if there is one.
    async fn edition(&self, ctx: &Context<'_>) -> kernel::Result<Option<Edition>> {
        let subs = loader(ctx)?.load_one(SubscriptionsOf(self.id.clone())).await?.unwrap_or_default();
        let Some(active) = subs.into_iter().find(|s| s.status == SubscriptionStatus::Active) else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(EditionKey(active.edition_id, active.edition_version)).await?)
    }

    /// Every subscription the tenant has had, newest first.
    async fn subscriptions(&self, ctx: &Context<'_>) -> kernel::Result<Vec<TenantSubscription>> {
        Ok(loader(ctx)?.load_one(SubscriptionsOf(self.id.clone())).await?.unwrap_or_default())
    }

    /// Quota limits with the current period's consumption.
    async fn quotas(&self, ctx: &Context<'_>) -> kernel::Result<Vec<Quota>> {
        Ok(loader(ctx)?.load_one(QuotasOf(self.id.clone())).await?.unwrap_or_default())
    }
}

/// One quota line of an edition's template.
#[derive(SimpleObject, InputObject, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[graphql(input_name = "QuotaLimitInput")]
pub struct QuotaLimit {
    pub key: String,
    /// Non-negative; 0 forbids the resource.
    pub limit: i64,
    pub period: Period,
}

/// A versioned bundle of features and quota limits that tenants subscribe to. Published versions are
/// immutable: a change is a new version.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Edition {
    pub id: String,
    pub version: i32,
    pub name: String,
    pub status: EditionStatus,
    /// Feature keys the edition includes.
    pub feature_set: Vec<String>,
    #[graphql(skip)]
    pub quota_template: Json<QuotaTemplate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// An edition's quota limits by key, as stored in `editions.quota_template`.
pub type QuotaTemplate = BTreeMap<String, QuotaSpec>;

/// A template entry as stored: the key is the map's key.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaSpec {
    pub limit: i64,
    pub period: Period,
}

#[ComplexObject]
impl Edition {
    /// Quota limits a tenant on this edition starts with.
    async fn quota_template(&self) -> Vec<QuotaLimit> {
        self.quota_template
            .0
            .iter()
            .map(|(key, spec)| QuotaLimit { key: key.clone(), limit: spec.limit, period: spec.period })
            .collect()
    }
}

kernel::text_enum! {
    #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum SubscriptionStatus {
        Active = "Active",
        Ended = "Ended",
    }
}

/// A tenant's subscription to one edition version over a span of time; it drives quotas and billing.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct TenantSubscription {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    pub id: SubscriptionId,
    pub edition_id: String,
    pub edition_version: i32,
    pub status: SubscriptionStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl TenantSubscription {
    async fn edition(&self, ctx: &Context<'_>) -> kernel::Result<Option<Edition>> {
        Ok(loader(ctx)?.load_one(EditionKey(self.edition_id.clone(), self.edition_version)).await?)
    }
}

/// A quota limit and how much of it the current period has used.
#[derive(SimpleObject, Clone, Debug)]
pub struct Quota {
    pub key: String,
    pub limit: i64,
    pub period: Period,
    pub used: i64,
    pub remaining: i64,
    pub period_start: DateTime<Utc>,
    /// When the counter resets; null for `LIFETIME`.
    pub resets_at: Option<DateTime<Utc>>,
}

/// A quota definition as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QuotaDefinition {
    pub key: String,
    pub limit: i64,
    pub period: Period,
}

impl QuotaDefinition {
    pub fn with_usage(&self, used: i64, now: DateTime<Utc>) -> Quota {
        Quota {
            key: self.key.clone(),
            limit: self.limit,
            period: self.period,
            used,
            remaining: (self.limit - used).max(0),
            period_start: self.period.start(now),
            resets_at: self.period.end(now),
        }
    }
}

/// A feature flag's definition (platform operators only).
#[derive(SimpleObject, Clone, Debug, Serialize, Deserialize)]
pub struct FeatureFlag {
    pub key: String,
    pub description: String,
    /// Kill switch: when false the flag is off for everybody.
    pub enabled: bool,
    /// Share of eligible tenants (0–100) that get the flag, chosen by a stable hash of flag and tenant.
    pub rollout_percent: i32,
    /// Editions the flag targets; empty means all.
    pub editions: Vec<String>,
    /// Tenants that always get it (unless denied).
    pub allow_tenants: Vec<String>,
    /// Tenants that never get it.
    pub deny_tenants: Vec<String>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

/// A domain event as tenancy published it: the canonical envelope.
#[derive(SimpleObject, Clone, Debug)]
pub struct DomainEvent {
    /// `evt-` + UUIDv7.
    pub event_id: String,
    /// NounVerbPastTense, e.g. `TenantSuspended`.
    pub event_type: String,
    pub tenant_id: String,
    pub trace_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The event's own fields; their shape is fixed per event type and schema version.
    pub payload: async_graphql::Json<serde_json::Value>,
}

impl From<&kernel::envelope::Envelope> for DomainEvent {
    fn from(e: &kernel::envelope::Envelope) -> Self {
        Self {
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            tenant_id: e.tenant_id.to_string(),
            trace_id: e.trace_id.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
            occurred_at: e.occurred_at,
            payload: async_graphql::Json(e.payload.clone()),
        }
    }
}

kernel::id! {
    /// A tenant's subscription to an edition version. Shown as the `UUID` scalar.
    pub struct SubscriptionId("subscription") as UUID;
}
