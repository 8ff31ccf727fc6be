//! Tenancy: tenants, editions, flags, quotas, and the tenant's events live.

use clap::Subcommand;
use cp_sdk::ops::tenancy::{
    CreateEditionInput, DomainEvent, Edition, FeatureFlag, FeatureFlagInput, FlagEvaluation, IsolationModel, Period,
    ProvisionTenantInput, Quota, QuotaLimitInput, Tenant, TenantStatus,
};
use cp_sdk::Client;

use super::{all, done, list, PAGE};
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
    /// Your tenant with its quotas, or (operators) the one named.
    Show { id: Option<String> },
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
    Activate {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Suspend a tenant (operators).
    Suspend {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Retire a tenant for good, unless it is on legal hold (operators).
    Retire {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rename your tenant.
    Rename { name: String },
    /// Put a tenant on legal hold, so nothing of it is deleted, or (--lift) take it off (operators).
    LegalHold {
        id: String,
        #[arg(long)]
        lift: bool,
    },
    /// Move a tenant to another edition's newest published version (operators).
    ChangeEdition { id: String, edition: String },
}

mirror!(Status => TenantStatus { Provisioning, Active, Suspended, Retired });
mirror!(QuotaPeriod => Period { Day, Month, Lifetime });

#[derive(Subcommand, Debug)]
pub enum EditionCmd {
    /// Every edition version.
    List,
    /// An edition: its newest version, or the one given.
    Show {
        id: String,
        #[arg(long)]
        version: Option<i32>,
    },
    /// Create a draft version of an edition: its first, or the next of an existing one (operators).
    Create {
        id: String,
        #[arg(long)]
        name: String,
        /// A feature it includes (again for more).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// A quota it gives, `KEY=LIMIT/PERIOD` (`api-calls=10000/day`; again for more).
        #[arg(long = "quota", value_parser = quota_limit)]
        quotas: Vec<QuotaLimitInput>,
    },
    /// Publish an edition version (operators): tenants can be put on it.
    Publish { id: String, version: i32 },
    /// Retire an edition version no tenant uses (operators).
    Retire { id: String, version: i32 },
}

#[derive(Subcommand, Debug)]
pub enum FlagCmd {
    /// Every flag, evaluated for your tenant.
    List,
    /// One flag, evaluated for your tenant, with the reason.
    Show { key: String },
    /// Every flag's definition (operators).
    Definitions,
    /// Create a flag, or change the options given of an existing one (operators). The definition is read,
    /// changed and written back whole: two operators setting one flag at once may overwrite each other.
    Set {
        key: String,
        #[arg(long)]
        enabled: Option<bool>,
        /// The share of tenants it is on for, 0–100 (new flags: 0, so only --allow's tenants).
        #[arg(long)]
        rollout: Option<i32>,
        #[arg(long)]
        description: Option<String>,
        /// The editions it targets, comma-separated (`''` for all).
        #[arg(long, value_delimiter = ',')]
        editions: Option<Vec<String>>,
        /// Tenants it is always on for, comma-separated (`''` for none).
        #[arg(long, value_delimiter = ',')]
        allow: Option<Vec<String>>,
        /// Tenants it is always off for, comma-separated (`''` for none).
        #[arg(long, value_delimiter = ',')]
        deny: Option<Vec<String>>,
    },
    /// Delete a flag (operators).
    Delete { key: String },
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
    /// Override one of a tenant's quota limits (operators).
    Set {
        tenant: String,
        key: String,
        limit: i32,
        #[arg(long, value_enum)]
        period: QuotaPeriod,
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

/// `KEY=LIMIT/PERIOD`.
fn quota_limit(s: &str) -> Result<QuotaLimitInput, String> {
    let bad = || format!("`{s}` is not KEY=LIMIT/PERIOD (period: day, month or lifetime)");
    let (key, rest) = s.split_once('=').ok_or_else(bad)?;
    let (limit, period) = rest.split_once('/').ok_or_else(bad)?;
    let period = <QuotaPeriod as clap::ValueEnum>::from_str(period, true).map_err(|_| bad())?;
    Ok(QuotaLimitInput { key: key.to_owned(), limit: limit.parse().map_err(|_| bad())?, period: period.into() })
}

impl Tenancy {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        let id = cynic::Id::new;
        match self {
            Tenancy::Tenant(cmd) => tenant(client, format, cmd).await,
            Tenancy::Edition(EditionCmd::List) => output::list(format, &all(client.editions(PAGE)).await?),
            Tenancy::Edition(EditionCmd::Show { id, version }) => {
                output::one(format, &client.edition(&id, version).await?)
            }
            Tenancy::Edition(EditionCmd::Create { id, name, features, quotas }) => {
                let input = CreateEditionInput { id, name, feature_set: features, quota_template: quotas };
                output::one(format, &client.create_edition(input).await?)
            }
            Tenancy::Edition(EditionCmd::Publish { id, version }) => {
                output::one(format, &client.publish_edition(&id, version).await?)
            }
            Tenancy::Edition(EditionCmd::Retire { id, version }) => {
                output::one(format, &client.retire_edition(&id, version).await?)
            }
            Tenancy::Flag(FlagCmd::List) => output::list(format, &client.feature_flags().await?),
            Tenancy::Flag(FlagCmd::Show { key }) => output::one(format, &client.feature_flag(&key).await?),
            Tenancy::Flag(FlagCmd::Definitions) => output::list(format, &client.feature_flag_definitions().await?),
            Tenancy::Flag(FlagCmd::Set { key, enabled, rollout, description, editions, allow, deny }) => {
                // The API replaces a definition whole; the options not given keep their values.
                let current = client.feature_flag_definitions().await?.into_iter().find(|f| f.key == key);
                let input = match current {
                    Some(f) => FeatureFlagInput {
                        key,
                        enabled: enabled.unwrap_or(f.enabled),
                        rollout_percent: rollout.unwrap_or(f.rollout_percent),
                        description: description.unwrap_or(f.description),
                        editions: editions.map_or(f.editions, list),
                        allow_tenants: allow.map_or(f.allow_tenants, list),
                        deny_tenants: deny.map_or(f.deny_tenants, list),
                    },
                    None => FeatureFlagInput {
                        key,
                        enabled: enabled.unwrap_or(false),
                        rollout_percent: rollout.unwrap_or(0),
                        description: description.unwrap_or_default(),
                        editions: editions.map_or_else(Vec::new, list),
                        allow_tenants: allow.map_or_else(Vec::new, list),
                        deny_tenants: deny.map_or_else(Vec::new, list),
                    },
                };
                output::one(format, &client.set_feature_flag(input).await?)
            }
            Tenancy::Flag(FlagCmd::Delete { key }) => {
                anyhow::ensure!(client.delete_feature_flag(&key).await?, "no flag `{key}`");
                done(format, serde_json::json!({ "deleted": key }), format!("deleted flag `{key}`"))
            }
            Tenancy::Quota(QuotaCmd::List) => output::list(format, &client.current_tenant().await?.quotas),
            Tenancy::Quota(QuotaCmd::Consume { key, amount }) => {
                output::one(format, &client.consume_quota(&key, amount).await?)
            }
            Tenancy::Quota(QuotaCmd::Set { tenant, key, limit, period }) => {
                let quota = QuotaLimitInput { key, limit, period: period.into() };
                output::one(format, &client.set_quota(id(tenant), quota).await?)
            }
            Tenancy::Events(EventsCmd::Watch { types, tenant }) => {
                output::follow(format, client.tenant_events(tenant.map(id), types), |e| {
                    format!("{}  {:<32} {}", time(&e.occurred_at), e.event_type, e.payload)
                })
                .await
            }
        }
    }
}

async fn tenant(client: &Client, format: Format, cmd: TenantCmd) -> anyhow::Result<()> {
    let id = cynic::Id::new;
    let tenant = match cmd {
        TenantCmd::Show { id: None } => client.current_tenant().await?,
        TenantCmd::Show { id: Some(t) } => client.tenant(id(t)).await?,
        TenantCmd::List { status } => {
            return output::list(format, &all(client.tenants(status.map(Into::into), PAGE)).await?)
        }
        TenantCmd::Provision { id: t, name, region, edition, dedicated } => {
            let input = ProvisionTenantInput {
                id: id(t),
                display_name: name,
                region,
                edition_id: edition,
                isolation_model: if dedicated { IsolationModel::Dedicated } else { IsolationModel::Shared },
            };
            client.provision_tenant(input).await?
        }
        TenantCmd::Activate { id: t, reason } => client.activate_tenant(id(t), reason).await?,
        TenantCmd::Suspend { id: t, reason } => client.suspend_tenant(id(t), &reason).await?,
        TenantCmd::Retire { id: t, reason } => client.retire_tenant(id(t), reason).await?,
        TenantCmd::Rename { name } => client.rename_tenant(&name).await?,
        TenantCmd::LegalHold { id: t, lift } => client.set_legal_hold(id(t), !lift).await?,
        TenantCmd::ChangeEdition { id: t, edition } => client.change_tenant_edition(id(t), &edition).await?,
    };
    output::one(format, &tenant)
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
