//! Governance: policies, decisions, approvals, integrations, usage and the audit log.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use cp_sdk::ops::governance::{
    Approval, ApprovalStatus, AuditEntry, Decision, IntegrationConnection, Policy, PolicyEffect, UsageGroup,
};
use cp_sdk::Client;
use futures::{StreamExt, TryStreamExt};

use super::{all, spinner, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Governance {
    /// Cedar policies.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Recorded policy decisions.
    #[command(subcommand)]
    Decision(DecisionCmd),
    /// Approvals: list them, approve or reject.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// Integration connections.
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// A meter's usage.
    Usage {
        meter: String,
        /// Over the last this many hours.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        /// Grouped by one dimension.
        #[arg(long)]
        group_by: Option<String>,
    },
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// The tenant's and the platform's policies.
    List,
}

#[derive(Subcommand, Debug)]
pub enum DecisionCmd {
    /// Recorded decisions, newest first.
    List {
        #[arg(long, value_enum)]
        effect: Option<Effect>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Effect {
    Allow,
    Deny,
    RequiresApproval,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalCmd {
    /// Approvals (of one status).
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
    },
    /// Vote to approve.
    Approve {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Vote to reject (one rejection decides).
    Reject {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

#[derive(Subcommand, Debug)]
pub enum IntegrationCmd {
    /// The tenant's connections (their secrets are references).
    List,
    /// Check that a connection's secret references resolve.
    Test { id: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// The log's entries, oldest first.
    Entries {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Prove an entry is in the signed log, checked here with the deployment's verifier key.
    Prove {
        sequence: i32,
        /// The audit verifier key (`<name>+<id>+<base64>`), as the deployment publishes it.
        #[arg(long, env = "CP_AUDIT_VERIFIER_KEY")]
        key: String,
    },
    /// Export the entries not yet exported to blob storage.
    Export,
}

impl Governance {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Governance::Policy(PolicyCmd::List) => output::list(format, &all(client.policies(None, PAGE)).await?),
            Governance::Decision(DecisionCmd::List { effect }) => {
                let effect = effect.map(|e| match e {
                    Effect::Allow => PolicyEffect::Allow,
                    Effect::Deny => PolicyEffect::Deny,
                    Effect::RequiresApproval => PolicyEffect::RequiresApproval,
                });
                output::list(format, &all(client.decisions(effect, PAGE)).await?)
            }
            Governance::Approval(ApprovalCmd::List { status }) => {
                let status = status.map(|s| match s {
                    Status::Pending => ApprovalStatus::Pending,
                    Status::Approved => ApprovalStatus::Approved,
                    Status::Rejected => ApprovalStatus::Rejected,
                    Status::Expired => ApprovalStatus::Expired,
                    Status::Cancelled => ApprovalStatus::Cancelled,
                });
                output::list(format, &all(client.approvals(status, PAGE)).await?)
            }
            Governance::Approval(ApprovalCmd::Approve { id, note }) => {
                output::one(format, &client.approve(cynic::Id::new(id), note).await?)
            }
            Governance::Approval(ApprovalCmd::Reject { id, note }) => {
                output::one(format, &client.reject(cynic::Id::new(id), note).await?)
            }
            Governance::Integration(IntegrationCmd::List) => {
                output::list(format, &all(client.integrations(PAGE)).await?)
            }
            Governance::Integration(IntegrationCmd::Test { id }) => {
                output::value(&client.test_integration(cynic::Id::new(id)).await?)
            }
            Governance::Usage { meter, hours, group_by } => {
                let to = chrono::Utc::now();
                let report = client.usage(&meter, to - chrono::Duration::hours(hours), to, group_by.as_deref()).await?;
                match format {
                    Format::Json => output::value(&report),
                    Format::Table => {
                        eprintln!("{}: {} over {} records", report.meter, report.quantity, report.records);
                        output::list(format, &report.groups)
                    }
                }
            }
            Governance::Audit(AuditCmd::Entries { limit }) => {
                let entries: Vec<_> = Box::pin(client.audit_entries(PAGE)).take(limit).try_collect().await?;
                output::list(format, &entries)
            }
            Governance::Audit(AuditCmd::Prove { sequence, key }) => {
                let entry = Box::pin(client.audit_entries(PAGE))
                    .try_skip_while(|e| futures::future::ready(Ok(e.sequence < sequence)))
                    .try_next()
                    .await?
                    .filter(|e| e.sequence == sequence)
                    .with_context(|| format!("no audit entry {sequence}"))?;
                let checkpoint = client.prove_audit_entry(&entry, &key).await?;
                match format {
                    Format::Json => output::value(&checkpoint),
                    Format::Table => {
                        println!(
                            "entry {sequence} ({}) is in {} at size {}, root {}: verified",
                            entry.event_type, checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash
                        );
                        Ok(())
                    }
                }
            }
            Governance::Audit(AuditCmd::Export) => {
                let bar = spinner("exporting the audit log");
                let exports = client.export_audit_log().await;
                bar.finish_and_clear();
                output::value(&exports?)
            }
        }
    }
}

impl Row for Policy {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "EFFECT", "STATUS", "VERSION", "PLATFORM"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            self.name.clone(),
            name(&self.effect),
            name(&self.status),
            self.version.to_string(),
            self.platform.to_string(),
        ]
    }
}

impl Row for Decision {
    fn headers() -> &'static [&'static str] {
        &["ID", "DECIDED", "PRINCIPAL", "ACTION", "RESOURCE", "EFFECT"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            time(&self.decided_at),
            self.principal.clone(),
            self.action.clone(),
            self.resource.clone(),
            name(&self.effect),
        ]
    }
}

impl Row for Approval {
    fn headers() -> &'static [&'static str] {
        &["ID", "SUBJECT", "SUMMARY", "STATUS", "VOTES", "EXPIRES"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.inner().to_owned(),
            format!("{} {}", self.subject_kind, self.subject_id),
            self.summary.clone(),
            name(&self.status),
            format!("{}/{}", self.approvals, self.quorum),
            time(&self.expires_at),
        ]
    }
}

impl Row for IntegrationConnection {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "KIND", "PROVIDER", "STATUS", "SECRETS", "LAST TEST"]
    }
    fn row(&self) -> Vec<String> {
        let secrets = self.secrets.iter().map(|s| format!("{}={}", s.name, s.config_ref));
        vec![
            self.id.inner().to_owned(),
            self.name.clone(),
            name(&self.kind),
            self.provider.clone(),
            name(&self.status),
            secrets.collect::<Vec<_>>().join(", "),
            opt(&self.last_test_ok.map(|ok| if ok { "ok" } else { "failed" })),
        ]
    }
}

impl Row for UsageGroup {
    fn headers() -> &'static [&'static str] {
        &["VALUE", "QUANTITY", "RECORDS"]
    }
    fn row(&self) -> Vec<String> {
        vec![opt(&self.value), self.quantity.to_string(), self.records.to_string()]
    }
}

impl Row for AuditEntry {
    fn headers() -> &'static [&'static str] {
        &["SEQ", "OCCURRED", "TYPE", "ACTOR", "HASH"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.sequence.to_string(),
            time(&self.occurred_at),
            self.event_type.clone(),
            opt(&self.actor),
            self.hash.chars().take(16).collect(),
        ]
    }
}
