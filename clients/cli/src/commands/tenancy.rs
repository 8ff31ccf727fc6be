//! Tenancy: tenants, editions, flags, quotas, and the tenant's events live.

use clap::{Subcommand, ValueEnum};
use cp_sdk::ops::tenancy::{
    DomainEvent, Edition, FeatureFlag, FlagEvaluation, IsolationModel, ProvisionTenantInput, Quota, Tenant,
    TenantStatus,
};
use cp_sdk::Client;
use futures::StreamExt;

use super::{all, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Tenancy {
    /// Tenants: yours, or (operators) every one, and their lifecycle.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Editions (what a tenant's subscription includes).
    #[command(subcommand)]
    Edition(EditionCmd),
    /// Feature flags, as they are for your tenant.
    #[command(subcommand)]
    Flag(FlagCmd),
    /// Quotas.
    #[command(subcommand)]
    Quota(QuotaCmd),
    /// The tenant's domain events, live.
    #[command(subcommand)]
    Events(EventsCmd),
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Your tenant, with its quotas.
    Show,
    /// Every tenant (operators).
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
    },
    /// Provision a tenant on a published edition (operators).
    Provision {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        edition: String,
        /// A database of its own rather than the shared one.
        #[arg(long)]
        dedicated: bool,
    },
    /// Activate a provisioned or suspended tenant (operators).
    Activate { id: String },
    /// Suspend a tenant (operators).
    Suspend {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Status {
    Provisioning,
    Active,
    Suspended,
    Retired,
}

#[derive(Subcommand, Debug)]
pub enum EditionCmd {
    /// Every edition version.
    List,
}

#[derive(Subcommand, Debug)]
pub enum FlagCmd {
    /// Every flag, evaluated for your tenant.
    List,
    /// Every flag's definition (operators).
    Definitions,
}

#[derive(Subcommand, Debug)]
pub enum QuotaCmd {
    /// Your tenant's quotas.
    List,
    /// Consume some of a quota (`QUOTA_EXCEEDED` when it would go over; nothing is consumed then).
    Consume {
        key: String,
        #[arg(long, default_value_t = 1)]
        amount: i32,
    },
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Stream the tenant's events as they are published (Ctrl-C ends it); reconnects on its own.
    Watch {
        /// Only events of this type (again for more).
        #[arg(long = "type")]
        types: Vec<String>,
        /// The tenant (operators).
        #[arg(long)]
        tenant: Option<String>,
    },
}

impl Tenancy {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Tenancy::Tenant(TenantCmd::Show) => output::one(format, &client.current_tenant().await?),
            Tenancy::Tenant(TenantCmd::List { status }) => {
                let status = status.map(|s| match s {
                    Status::Provisioning => TenantStatus::Provisioning,
                    Status::Active => TenantStatus::Active,
                    Status::Suspended => TenantStatus::Suspended,
                    Status::Retired => TenantStatus::Retired,
                });
                output::list(format, &all(client.tenants(status, PAGE)).await?)
            }
            Tenancy::Tenant(TenantCmd::Provision { id, name, region, edition, dedicated }) => {
                let input = ProvisionTenantInput {
                    id: cynic::Id::new(id),
                    display_name: name,
                    region,
                    edition_id: edition,
                    isolation_model: if dedicated { IsolationModel::Dedicated } else { IsolationModel::Shared },
                };
                output::one(format, &client.provision_tenant(input).await?)
            }
            Tenancy::Tenant(TenantCmd::Activate { id }) => {
                output::one(format, &client.activate_tenant(cynic::Id::new(id), None).await?)
            }
            Tenancy::Tenant(TenantCmd::Suspend { id, reason }) => {
                output::one(format, &client.suspend_tenant(cynic::Id::new(id), &reason).await?)
            }
            Tenancy::Edition(EditionCmd::List) => output::list(format, &all(client.editions(PAGE)).await?),
            Tenancy::Flag(FlagCmd::List) => output::list(format, &client.feature_flags().await?),
            Tenancy::Flag(FlagCmd::Definitions) => output::list(format, &client.feature_flag_definitions().await?),
            Tenancy::Quota(QuotaCmd::List) => output::list(format, &client.current_tenant().await?.quotas),
            Tenancy::Quota(QuotaCmd::Consume { key, amount }) => {
                output::one(format, &client.consume_quota(&key, amount).await?)
            }
            Tenancy::Events(EventsCmd::Watch { types, tenant }) => {
                let mut events = Box::pin(client.tenant_events(tenant.map(cynic::Id::new), types));
                while let Some(event) = events.next().await {
                    let event = event?;
                    match format {
                        Format::Json => println!("{}", serde_json::to_string(&event)?),
                        Format::Table => println!(
                            "{}  {:<32} {}",
                            time(&event.occurred_at),
                            event.event_type,
                            serde_json::to_string(&event.payload)?
                        ),
                    }
                }
                Ok(())
            }
        }
    }
}

impl Row for Tenant {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "STATUS", "EDITION", "REGION", "LEGAL HOLD", "CREATED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            self.display_name.clone(),
            name(&self.status),
            self.edition_id.clone(),
            self.region.clone(),
            self.legal_hold.to_string(),
            time(&self.created_at),
        ]
    }
}

impl Row for Edition {
    fn headers() -> &'static [&'static str] {
        &["ID", "VERSION", "NAME", "STATUS", "FEATURES", "QUOTAS"]
    }
    fn row(&self) -> Vec<String> {
        let quotas = self.quota_template.iter().map(|q| format!("{} {}/{}", q.key, q.limit, name(&q.period)));
        vec![
            self.id.clone(),
            self.version.to_string(),
            self.name.clone(),
            name(&self.status),
            self.feature_set.join(", "),
            quotas.collect::<Vec<_>>().join(", "),
        ]
    }
}

impl Row for FlagEvaluation {
    fn headers() -> &'static [&'static str] {
        &["KEY", "ENABLED", "REASON"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.key.clone(), self.enabled.to_string(), name(&self.reason)]
    }
}

impl Row for FeatureFlag {
    fn headers() -> &'static [&'static str] {
        &["KEY", "ENABLED", "ROLLOUT %", "EDITIONS", "ALLOW", "DENY", "VERSION"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.key.clone(),
            self.enabled.to_string(),
            self.rollout_percent.to_string(),
            self.editions.join(", "),
            self.allow_tenants.join(", "),
            self.deny_tenants.join(", "),
            self.version.to_string(),
        ]
    }
}

impl Row for Quota {
    fn headers() -> &'static [&'static str] {
        &["KEY", "USED", "LIMIT", "REMAINING", "PERIOD", "RESETS"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.key.clone(),
            self.used.to_string(),
            self.limit.to_string(),
            self.remaining.to_string(),
            name(&self.period),
            opt(&self.resets_at.as_ref().map(time)),
        ]
    }
}

impl Row for DomainEvent {
    fn headers() -> &'static [&'static str] {
        &["OCCURRED", "TYPE", "EVENT"]
    }
    fn row(&self) -> Vec<String> {
        vec![time(&self.occurred_at), self.event_type.clone(), self.event_id.clone()]
    }
}
