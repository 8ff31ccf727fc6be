//! Tenancy: tenants and their lifecycle, editions, feature flags, quotas, and the tenant's domain events
//! live.
//!
//! A tenant caller sees its own tenant; platform operators (an operator's token or client) manage every
//! tenant, the editions and the flag definitions.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
//! use cp_sdk::ops::tenancy::*;
//! use futures::{StreamExt, TryStreamExt};
//!
//! // Editions (operators): a draft with its quota template, published.
//! let edition = client
//!     .create_edition(CreateEditionInput {
//!         id: "team".into(),
//!         name: "Team".into(),
//!         feature_set: vec!["sso".into()],
//!         quota_template: vec![QuotaLimitInput { key: "api-calls".into(), limit: 10_000, period: Period::Day }],
//!     })
//!     .await?;
//! client.publish_edition("team", edition.version).await?;
//!
//! // Tenants (operators): provisioned, activated, suspended.
//! let input = ProvisionTenantInput {
//!     id: cynic::Id::new("acme"),
//!     display_name: "Acme".into(),
//!     region: "eu-west".into(),
//!     edition_id: "team".into(),
//!     isolation_model: IsolationModel::Shared,
//! };
//! client.provision_tenant(input).await?;
//! client.activate_tenant(cynic::Id::new("acme"), None).await?;
//! let active: Vec<_> = client.tenants(Some(TenantStatus::Active), 100).try_collect().await?;
//!
//! // Flags and quotas.
//! client
//!     .set_feature_flag(FeatureFlagInput {
//!         key: "new-ui".into(),
//!         enabled: true,
//!         rollout_percent: 25,
//!         description: String::new(),
//!         editions: vec![],
//!         allow_tenants: vec![],
//!         deny_tenants: vec![],
//!     })
//!     .await?;
//! let quota = client.consume_quota("api-calls", 1).await?;
//!
//! // The tenant's events as they happen (a tenant caller's own).
//! let mut events = Box::pin(client.tenant_events(None, vec![]));
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} {}", event.event_type, event.payload);
//! }
//! # Ok(()) }
//! ```

use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
use futures::Stream;

use crate::pages::{paged, PageInfo};
use crate::schema;
use crate::{Client, DateTime, Error, Json};

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Tenant")]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: cynic::Id,
    pub display_name: String,
    pub status: TenantStatus,
    pub status_reason: Option<String>,
    pub edition_id: String,
    pub region: String,
    pub isolation_model: IsolationModel,
    pub legal_hold: bool,
    pub quotas: Vec<Quota>,
    pub created_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
    Retired,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationModel {
    Shared,
    Dedicated,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
    Lifetime,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub key: String,
    pub limit: i32,
    pub used: i32,
    pub remaining: i32,
    pub period: Period,
    pub period_start: DateTime,
    pub resets_at: Option<DateTime>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLimit {
    pub key: String,
    pub limit: i32,
    pub period: Period,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct QuotaLimitInput {
    pub key: String,
    pub limit: i32,
    pub period: Period,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct ProvisionTenantInput {
    pub id: cynic::Id,
    pub display_name: String,
    pub region: String,
    pub edition_id: String,
    pub isolation_model: IsolationModel,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditionStatus {
    Draft,
    Published,
    Retired,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Edition {
    pub id: String,
    pub version: i32,
    pub name: String,
    pub status: EditionStatus,
    pub feature_set: Vec<String>,
    pub quota_template: Vec<QuotaLimit>,
    pub published_at: Option<DateTime>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreateEditionInput {
    pub id: String,
    pub name: String,
    pub feature_set: Vec<String>,
    pub quota_template: Vec<QuotaLimitInput>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlag {
    pub key: String,
    pub enabled: bool,
    pub rollout_percent: i32,
    pub description: String,
    pub editions: Vec<String>,
    pub allow_tenants: Vec<String>,
    pub deny_tenants: Vec<String>,
    pub version: i32,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct FeatureFlagInput {
    pub key: String,
    pub enabled: bool,
    pub rollout_percent: i32,
    pub description: String,
    pub editions: Vec<String>,
    pub allow_tenants: Vec<String>,
    pub deny_tenants: Vec<String>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagReason {
    Allowed,
    Denied,
    Disabled,
    EditionNotTargeted,
    InRollout,
    OutOfRollout,
    UnknownFlag,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagEvaluation {
    pub key: String,
    pub enabled: bool,
    pub reason: FlagReason,
}

/// A domain event, as `tenantEvents` streams it (the canonical envelope's fields).
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    pub event_id: String,
    pub event_type: String,
    pub tenant_id: String,
    pub occurred_at: DateTime,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub trace_id: String,
    pub payload: Json,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
struct CurrentTenant {
    current_tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct IdVars {
    id: cynic::Id,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct TenantQuery {
    #[arguments(id: $id)]
    tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct TenantsVars {
    first: Option<i32>,
    after: Option<String>,
    status: Option<TenantStatus>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "TenantsVars")]
struct Tenants {
    #[arguments(first: $first, after: $after, status: $status)]
    tenants: TenantConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct TenantConnection {
    nodes: Vec<Tenant>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct ProvisionVars {
    input: ProvisionTenantInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ProvisionVars")]
struct Provision {
    #[arguments(input: $input)]
    provision_tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct ReasonVars {
    id: cynic::Id,
    reason: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ReasonVars")]
struct Activate {
    #[arguments(id: $id, reason: $reason)]
    activate_tenant: Tenant,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ReasonVars")]
struct Retire {
    #[arguments(id: $id, reason: $reason)]
    retire_tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct SuspendVars {
    id: cynic::Id,
    reason: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "SuspendVars")]
struct Suspend {
    #[arguments(id: $id, reason: $reason)]
    suspend_tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct RenameVars {
    display_name: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RenameVars")]
struct Rename {
    #[arguments(displayName: $display_name)]
    update_tenant: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct LegalHoldVars {
    id: cynic::Id,
    legal_hold: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "LegalHoldVars")]
struct LegalHold {
    #[arguments(id: $id, legalHold: $legal_hold)]
    set_legal_hold: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct ChangeEditionVars {
    id: cynic::Id,
    edition_id: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ChangeEditionVars")]
struct ChangeEdition {
    #[arguments(id: $id, editionId: $edition_id)]
    change_tenant_edition: Tenant,
}

#[derive(cynic::QueryVariables, Debug)]
struct PageVars {
    first: Option<i32>,
    after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PageVars")]
struct Editions {
    #[arguments(first: $first, after: $after)]
    editions: EditionConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct EditionConnection {
    nodes: Vec<Edition>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct EditionVars {
    id: String,
    version: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "EditionVars")]
struct EditionQuery {
    #[arguments(id: $id, version: $version)]
    edition: Edition,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateEditionVars {
    input: CreateEditionInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateEditionVars")]
struct CreateEdition {
    #[arguments(input: $input)]
    create_edition: Edition,
}

#[derive(cynic::QueryVariables, Debug)]
struct EditionVersionVars {
    id: String,
    version: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "EditionVersionVars")]
struct PublishEdition {
    #[arguments(id: $id, version: $version)]
    publish_edition: Edition,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "EditionVersionVars")]
struct RetireEdition {
    #[arguments(id: $id, version: $version)]
    retire_edition: Edition,
}

#[derive(cynic::QueryVariables, Debug)]
struct FlagInputVars {
    input: FeatureFlagInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "FlagInputVars")]
struct SetFlag {
    #[arguments(input: $input)]
    set_feature_flag: FeatureFlag,
}

#[derive(cynic::QueryVariables, Debug)]
struct KeyVars {
    key: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "KeyVars")]
struct DeleteFlag {
    #[arguments(key: $key)]
    delete_feature_flag: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
struct FlagDefinitions {
    feature_flag_definitions: Vec<FeatureFlag>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query")]
struct Flags {
    feature_flags: Vec<FlagEvaluation>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "KeyVars")]
struct Flag {
    #[arguments(key: $key)]
    feature_flag: FlagEvaluation,
}

#[derive(cynic::QueryVariables, Debug)]
struct SetQuotaVars {
    tenant_id: cynic::Id,
    quota: QuotaLimitInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "SetQuotaVars")]
struct SetQuota {
    #[arguments(tenantId: $tenant_id, quota: $quota)]
    set_quota: Quota,
}

#[derive(cynic::QueryVariables, Debug)]
struct ConsumeVars {
    key: String,
    amount: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "ConsumeVars")]
struct Consume {
    #[arguments(key: $key, amount: $amount)]
    consume_quota: Quota,
}

#[derive(cynic::QueryVariables, Debug)]
struct EventsVars {
    tenant_id: Option<cynic::Id>,
    event_types: Option<Vec<String>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Subscription", variables = "EventsVars")]
struct TenantEvents {
    #[arguments(tenantId: $tenant_id, eventTypes: $event_types)]
    tenant_events: DomainEvent,
}

impl Client {
    /// The caller's tenant, with its quotas.
    pub async fn current_tenant(&self) -> Result<Tenant, Error> {
        Ok(self.run(CurrentTenant::build(())).await?.current_tenant)
    }

    /// A tenant by id (operators; a tenant caller may name its own).
    pub async fn tenant(&self, id: cynic::Id) -> Result<Tenant, Error> {
        Ok(self.run(TenantQuery::build(IdVars { id })).await?.tenant)
    }

    /// Every tenant (operators), of one status when given.
    pub fn tenants(
        &self,
        status: Option<TenantStatus>,
        per_page: i32,
    ) -> impl Stream<Item = Result<Tenant, Error>> + '_ {
        paged(
            self,
            move |after| Tenants::build(TenantsVars { first: Some(per_page), after, status }),
            |q| (q.tenants.nodes, q.tenants.page_info),
        )
    }

    /// Provisions a tenant on a published edition (operators); it starts `PROVISIONING`.
    pub async fn provision_tenant(&self, input: ProvisionTenantInput) -> Result<Tenant, Error> {
        Ok(self.run(Provision::build(ProvisionVars { input })).await?.provision_tenant)
    }

    /// Activates a provisioned or suspended tenant (operators).
    pub async fn activate_tenant(&self, id: cynic::Id, reason: Option<String>) -> Result<Tenant, Error> {
        Ok(self.run(Activate::build(ReasonVars { id, reason })).await?.activate_tenant)
    }

    /// Suspends a tenant, with the reason its people will see (operators).
    pub async fn suspend_tenant(&self, id: cynic::Id, reason: &str) -> Result<Tenant, Error> {
        Ok(self.run(Suspend::build(SuspendVars { id, reason: reason.into() })).await?.suspend_tenant)
    }

    /// Retires a tenant for good, unless it is on legal hold (operators).
    pub async fn retire_tenant(&self, id: cynic::Id, reason: Option<String>) -> Result<Tenant, Error> {
        Ok(self.run(Retire::build(ReasonVars { id, reason })).await?.retire_tenant)
    }

    /// Renames the caller's tenant.
    pub async fn rename_tenant(&self, display_name: &str) -> Result<Tenant, Error> {
        Ok(self.run(Rename::build(RenameVars { display_name: display_name.into() })).await?.update_tenant)
    }

    /// Puts a tenant on legal hold, or lifts it (operators): nothing of a held tenant is deleted.
    pub async fn set_legal_hold(&self, id: cynic::Id, legal_hold: bool) -> Result<Tenant, Error> {
        Ok(self.run(LegalHold::build(LegalHoldVars { id, legal_hold })).await?.set_legal_hold)
    }

    /// Moves a tenant to another edition's newest published version (operators).
    pub async fn change_tenant_edition(&self, id: cynic::Id, edition_id: &str) -> Result<Tenant, Error> {
        let op = ChangeEdition::build(ChangeEditionVars { id, edition_id: edition_id.into() });
        Ok(self.run(op).await?.change_tenant_edition)
    }

    /// Every edition version.
    pub fn editions(&self, per_page: i32) -> impl Stream<Item = Result<Edition, Error>> + '_ {
        paged(
            self,
            move |after| Editions::build(PageVars { first: Some(per_page), after }),
            |q| (q.editions.nodes, q.editions.page_info),
        )
    }

    /// An edition: one version, or its newest.
    pub async fn edition(&self, id: &str, version: Option<i32>) -> Result<Edition, Error> {
        Ok(self.run(EditionQuery::build(EditionVars { id: id.into(), version })).await?.edition)
    }

    /// Creates an edition's first draft (operators).
    pub async fn create_edition(&self, input: CreateEditionInput) -> Result<Edition, Error> {
        Ok(self.run(CreateEdition::build(CreateEditionVars { input })).await?.create_edition)
    }

    /// Publishes an edition version (operators): tenants can be put on it.
    pub async fn publish_edition(&self, id: &str, version: i32) -> Result<Edition, Error> {
        Ok(self.run(PublishEdition::build(EditionVersionVars { id: id.into(), version })).await?.publish_edition)
    }

    /// Retires an edition version no tenant uses (operators).
    pub async fn retire_edition(&self, id: &str, version: i32) -> Result<Edition, Error> {
        Ok(self.run(RetireEdition::build(EditionVersionVars { id: id.into(), version })).await?.retire_edition)
    }

    /// Creates or replaces a feature flag's definition (operators).
    pub async fn set_feature_flag(&self, input: FeatureFlagInput) -> Result<FeatureFlag, Error> {
        Ok(self.run(SetFlag::build(FlagInputVars { input })).await?.set_feature_flag)
    }

    /// Deletes a feature flag (operators); whether it existed.
    pub async fn delete_feature_flag(&self, key: &str) -> Result<bool, Error> {
        Ok(self.run(DeleteFlag::build(KeyVars { key: key.into() })).await?.delete_feature_flag)
    }

    /// Every flag's definition (operators).
    pub async fn feature_flag_definitions(&self) -> Result<Vec<FeatureFlag>, Error> {
        Ok(self.run(FlagDefinitions::build(())).await?.feature_flag_definitions)
    }

    /// Every flag, evaluated for the caller's tenant.
    pub async fn feature_flags(&self) -> Result<Vec<FlagEvaluation>, Error> {
        Ok(self.run(Flags::build(())).await?.feature_flags)
    }

    /// One flag, evaluated for the caller's tenant, with the reason.
    pub async fn feature_flag(&self, key: &str) -> Result<FlagEvaluation, Error> {
        Ok(self.run(Flag::build(KeyVars { key: key.into() })).await?.feature_flag)
    }

    /// Overrides one of a tenant's quota limits (operators).
    pub async fn set_quota(&self, tenant_id: cynic::Id, quota: QuotaLimitInput) -> Result<Quota, Error> {
        Ok(self.run(SetQuota::build(SetQuotaVars { tenant_id, quota })).await?.set_quota)
    }

    /// Consumes `amount` of the caller's quota `key`; `QUOTA_EXCEEDED` when it would go over (nothing is
    /// consumed then). Not retried: a repeat would consume twice.
    pub async fn consume_quota(&self, key: &str, amount: i32) -> Result<Quota, Error> {
        Ok(self.run(Consume::build(ConsumeVars { key: key.into(), amount })).await?.consume_quota)
    }

    /// The tenant's domain events as they are published (of `event_types` when not empty; operators name
    /// the tenant). Reconnects when the connection drops; events published while it was down are not
    /// replayed, and none is yielded twice.
    pub fn tenant_events(
        &self,
        tenant_id: Option<cynic::Id>,
        event_types: Vec<String>,
    ) -> impl Stream<Item = Result<DomainEvent, Error>> + Send + 'static {
        let types = (!event_types.is_empty()).then_some(event_types);
        let events = self.subscribe(
            move || TenantEvents::build(EventsVars { tenant_id: tenant_id.clone(), event_types: types.clone() }),
            |_| false,
        );
        crate::live::once_each(events, |e| e.tenant_events, |e| &e.event_id)
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
