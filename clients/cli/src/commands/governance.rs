//! Governance: policies, decisions, approvals, integrations, usage and the audit log.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cp_sdk::ops::governance::{
    Approval, ApprovalStatus, AuditEntry, CreateIntegrationConnectionInput, Decision, DraftPolicyInput,
    IntegrationConnection, IntegrationKind, IntegrationStatus, ModelPolicy, ModelTaskInput, Policy, PolicyEffect,
    PolicyStatus, SecretRefInput, UpdateIntegrationConnectionInput, UpdatePolicyDraftInput, UsageGroup,
    UsageRecordInput,
};
use cp_sdk::Client;
use futures::{StreamExt, TryStreamExt};

use super::{all, json_arg, pair, read_input, read_json, spinner, verdict, PAGE};
use crate::output::{self, name, opt, time, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Governance {
    /// Cedar policies: drafted, published, deprecated; and requests evaluated against them.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Recorded policy decisions.
    #[command(subcommand)]
    Decision(DecisionCmd),
    /// Approvals: requested, approved or rejected, cancelled.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// Integration connections (their secrets by reference only).
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// Which AI models agents may use, and at what cost.
    #[command(subcommand, name = "model-policy")]
    ModelPolicy(ModelPolicyCmd),
    /// Metered usage: reported, and recorded.
    #[command(subcommand)]
    Usage(UsageCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
}

mirror!(Effect => PolicyEffect { Allow, Deny, RequiresApproval });
mirror!(PolicyState => PolicyStatus { Draft, Published, Deprecated });
mirror!(Status => ApprovalStatus { Pending, Approved, Rejected, Expired, Cancelled });
mirror!(Kind => IntegrationKind { GitHosting, Ci, Cloud, Chat, Other });

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// The tenant's and the platform's policies.
    List {
        #[arg(long, value_enum)]
        status: Option<PolicyState>,
    },
    /// One policy, with its Cedar text.
    Show { id: String },
    /// Draft a policy from a Cedar file (`-` for stdin).
    Draft {
        name: String,
        #[arg(long, value_enum)]
        effect: Effect,
        #[arg(long)]
        cedar: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
        /// A platform policy, for every tenant (operators).
        #[arg(long)]
        platform: bool,
    },
    /// Change a draft; the options not given keep their values.
    Update {
        id: String,
        #[arg(long)]
        cedar: Option<PathBuf>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_enum)]
        effect: Option<Effect>,
    },
    /// Publish a draft: it takes part in decisions from now on.
    Publish { id: String },
    /// Deprecate a published policy: it no longer takes part.
    Deprecate { id: String },
    /// Decide a request (a JSON file, or `-`: principal, action, resource, context) against the policies;
    /// exits 1 unless it is allowed.
    Evaluate {
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DecisionCmd {
    /// Recorded decisions, newest first.
    List {
        #[arg(long, value_enum)]
        effect: Option<Effect>,
    },
    /// One decision, with the policies that decided it.
    Show { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ApprovalCmd {
    /// Approvals (of one status).
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
    },
    /// One approval.
    Show { id: String },
    /// Request an approval (a JSON file, or `-`: subjectKind, subjectId, summary, approverRoles, quorum,
    /// expiresAt, …).
    Request {
        #[arg(long)]
        file: PathBuf,
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
    /// Cancel a pending approval you requested.
    Cancel { id: String },
}

#[derive(Subcommand, Debug)]
pub enum IntegrationCmd {
    /// The tenant's connections (their secrets are references).
    List,
    /// Create a connection; secrets are given as references (`NAME=CONFIG_REF`), never as values.
    Create {
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        provider: String,
        /// A secret reference, `NAME=CONFIG_REF` (again for more).
        #[arg(long = "secret", value_parser = secret_ref)]
        secrets: Vec<SecretRefInput>,
        /// Settings, as a JSON object.
        #[arg(long)]
        settings: Option<String>,
    },
    /// Change a connection's settings, or disable or enable it.
    Update {
        id: String,
        /// The whole new settings, as a JSON object.
        #[arg(long)]
        settings: Option<String>,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Point one of a connection's secrets at a new reference (`NAME=CONFIG_REF`).
    Rotate {
        id: String,
        #[arg(long, value_parser = secret_ref)]
        secret: SecretRefInput,
    },
    /// Check that a connection's secret references resolve; exits 1 when one does not.
    Test { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ModelPolicyCmd {
    /// Every model policy.
    List,
    /// Draft a model policy (a JSON file, or `-`: name, allowed [{provider, models}], maxTokensPerTask, …).
    Draft {
        #[arg(long)]
        file: PathBuf,
    },
    /// Publish a draft.
    Publish { id: String },
    /// Deprecate a published model policy.
    Deprecate { id: String },
    /// Would a task with this model be allowed? Exits 1 when it would not.
    Evaluate {
        #[arg(long)]
        provider: String,
        #[arg(long)]
        model: String,
        /// The tokens the task asks for.
        #[arg(long)]
        tokens: Option<i32>,
        /// What has been spent today, in cents.
        #[arg(long)]
        cost_today_cents: Option<i32>,
        #[arg(long)]
        project: Option<cp_sdk::Uuid>,
        #[arg(long)]
        skill: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsageCmd {
    /// A meter's usage over the last hours.
    Report {
        meter: String,
        /// Over the last this many hours.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        /// Grouped by one dimension.
        #[arg(long)]
        group_by: Option<String>,
    },
    /// Record usage: one record, or (--file) a JSON array of them. Records with the same time and key
    /// count once, so repeating a command (with the same --at and --key) is harmless.
    Record {
        #[arg(required_unless_present = "file")]
        meter: Option<String>,
        #[arg(required_unless_present = "file")]
        quantity: Option<i32>,
        /// The record's idempotency key.
        #[arg(long, required_unless_present = "file")]
        key: Option<String>,
        /// When it happened (RFC 3339, `2026-12-07T10:00:00Z`): part of what makes a record the same one.
        #[arg(long, required_unless_present = "file")]
        at: Option<cp_sdk::DateTime>,
        /// Dimensions, as a JSON object.
        #[arg(long)]
        dimensions: Option<String>,
        /// Records, as a JSON array (`-` for stdin), instead of the arguments.
        #[arg(long, conflicts_with_all = ["meter", "quantity", "key", "at", "dimensions"])]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// The log's entries, oldest first.
    Entries {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The log's latest signed checkpoint (or the one at a size), its signature checked when a verifier key
    /// is given.
    Checkpoint {
        #[arg(long)]
        size: Option<i32>,
        /// The audit verifier key (`<name>+<id>+<base64>`), as the deployment publishes it.
        #[arg(long, env = "CP_AUDIT_VERIFIER_KEY")]
        key: Option<String>,
    },
    /// Prove an entry is in the signed log, checked here with the deployment's verifier key.
    Prove {
        sequence: i32,
        /// The audit verifier key (`<name>+<id>+<base64>`), as the deployment publishes it.
        #[arg(long, env = "CP_AUDIT_VERIFIER_KEY")]
        key: String,
    },
    /// Have the server recompute the hash chain over a range of entries; exits 1 when it is broken.
    Verify {
        #[arg(long, default_value_t = 1)]
        from: i32,
        #[arg(long)]
        to: Option<i32>,
    },
    /// Export the entries not yet exported to blob storage.
    Export,
}

/// `NAME=CONFIG_REF`.
fn secret_ref(s: &str) -> Result<SecretRefInput, String> {
    pair(s).map(|(name, config_ref)| SecretRefInput { name, config_ref })
}

impl Governance {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        let id = cynic::Id::new;
        match self {
            Governance::Policy(cmd) => policy(client, format, cmd).await,
            Governance::Decision(DecisionCmd::List { effect }) => {
                output::list(format, &all(client.decisions(effect.map(Into::into), PAGE)).await?)
            }
            Governance::Decision(DecisionCmd::Show { id: d }) => output::one(format, &client.decision(id(d)).await?),
            Governance::Approval(cmd) => {
                let approval = match cmd {
                    ApprovalCmd::List { status } => {
                        return output::list(format, &all(client.approvals(status.map(Into::into), PAGE)).await?)
                    }
                    ApprovalCmd::Show { id: a } => client.approval(id(a)).await?,
                    ApprovalCmd::Request { file } => client.request_approval(read_json(&file)?).await?,
                    ApprovalCmd::Approve { id: a, note } => client.approve(id(a), note).await?,
                    ApprovalCmd::Reject { id: a, note } => client.reject(id(a), note).await?,
                    ApprovalCmd::Cancel { id: a } => client.cancel_approval(id(a)).await?,
                };
                output::one(format, &approval)
            }
            Governance::Integration(cmd) => {
                let connection = match cmd {
                    IntegrationCmd::List => return output::list(format, &all(client.integrations(PAGE)).await?),
                    IntegrationCmd::Test { id: i } => {
                        let test = client.test_integration(id(i)).await?;
                        output::value(&test)?;
                        return verdict(test.ok, || "a secret reference does not resolve".into());
                    }
                    IntegrationCmd::Create { name, kind, provider, secrets, settings } => {
                        let settings = settings.map(|s| json_arg("settings", &s)).transpose()?;
                        let input =
                            CreateIntegrationConnectionInput { kind: kind.into(), name, provider, secrets, settings };
                        client.create_integration(input).await?
                    }
                    IntegrationCmd::Update { id: i, settings, disable, enable } => {
                        let settings = settings.map(|s| json_arg("settings", &s)).transpose()?;
                        let status = (disable || enable).then_some(if disable {
                            IntegrationStatus::Disabled
                        } else {
                            IntegrationStatus::Active
                        });
                        client.update_integration(id(i), UpdateIntegrationConnectionInput { settings, status }).await?
                    }
                    IntegrationCmd::Rotate { id: i, secret } => client.rotate_integration_secret(id(i), secret).await?,
                };
                output::one(format, &connection)
            }
            Governance::ModelPolicy(cmd) => {
                let policy = match cmd {
                    ModelPolicyCmd::List => return output::list(format, &all(client.model_policies(PAGE)).await?),
                    ModelPolicyCmd::Evaluate { provider, model, tokens, cost_today_cents, project, skill } => {
                        let task = ModelTaskInput {
                            provider,
                            model,
                            tokens,
                            cost_today_cents,
                            project_id: project,
                            skill_key: skill,
                        };
                        let decision = client.evaluate_model_policy(task).await?;
                        match format {
                            Format::Json => output::value(&decision)?,
                            Format::Table => {
                                let said = if decision.allowed { "allowed" } else { "not allowed" };
                                println!("{said}: {} ({})", decision.reason, decision.policies.join(", "));
                            }
                        }
                        return verdict(decision.allowed, || "not allowed".into());
                    }
                    ModelPolicyCmd::Draft { file } => client.draft_model_policy(read_json(&file)?).await?,
                    ModelPolicyCmd::Publish { id: p } => client.publish_model_policy(id(p)).await?,
                    ModelPolicyCmd::Deprecate { id: p } => client.deprecate_model_policy(id(p)).await?,
                };
                output::one(format, &policy)
            }
            Governance::Usage(UsageCmd::Report { meter, hours, group_by }) => {
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
            Governance::Usage(UsageCmd::Record { meter, quantity, key, at, dimensions, file }) => {
                let records: Vec<UsageRecordInput> = match file {
                    Some(file) => read_json(&file)?,
                    None => vec![UsageRecordInput {
                        meter: meter.context("the meter")?,
                        quantity: quantity.context("the quantity")?,
                        occurred_at: at.context("--at")?,
                        idempotency_key: key.context("--key")?,
                        dimensions: dimensions.map(|d| json_arg("dimensions", &d)).transpose()?,
                    }],
                };
                let recorded = client.record_usage(records).await?;
                match format {
                    Format::Json => output::value(&recorded),
                    Format::Table => {
                        println!("{} recorded, {} already recorded", recorded.accepted, recorded.duplicates);
                        Ok(())
                    }
                }
            }
            Governance::Audit(cmd) => audit(client, format, cmd).await,
        }
    }
}

async fn policy(client: &Client, format: Format, cmd: PolicyCmd) -> anyhow::Result<()> {
    let id = cynic::Id::new;
    let policy = match cmd {
        PolicyCmd::List { status } => {
            return output::list(format, &all(client.policies(status.map(Into::into), PAGE)).await?)
        }
        PolicyCmd::Evaluate { file } => {
            let decision = client.evaluate_policy(read_json(&file)?).await?;
            output::one(format, &decision)?;
            return verdict(decision.effect == PolicyEffect::Allow, || {
                format!("the decision is {}", output::name(&decision.effect))
            });
        }
        PolicyCmd::Show { id: p } => client.policy(id(p)).await?,
        PolicyCmd::Draft { name, effect, cedar, description, platform } => {
            let input =
                DraftPolicyInput { name, description, effect: effect.into(), cedar: read_input(&cedar)?, platform };
            client.draft_policy(input).await?
        }
        PolicyCmd::Update { id: p, cedar, description, effect } => {
            let cedar = cedar.map(|c| read_input(&c)).transpose()?;
            let input = UpdatePolicyDraftInput { cedar, description, effect: effect.map(Into::into) };
            client.update_policy_draft(id(p), input).await?
        }
        PolicyCmd::Publish { id: p } => client.publish_policy(id(p)).await?,
        PolicyCmd::Deprecate { id: p } => client.deprecate_policy(id(p)).await?,
    };
    match format {
        Format::Table => {
            output::one(format, &policy)?;
            println!("{}", policy.cedar);
            Ok(())
        }
        Format::Json => output::value(&policy),
    }
}

async fn audit(client: &Client, format: Format, cmd: AuditCmd) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Entries { limit } => {
            let entries: Vec<_> = Box::pin(client.audit_entries(PAGE)).take(limit).try_collect().await?;
            output::list(format, &entries)
        }
        AuditCmd::Checkpoint { size, key } => {
            let checkpoint = client.audit_checkpoint(size).await?;
            // Checked before it is shown: a checkpoint that does not verify is an error, not output.
            if let Some(key) = &key {
                let tenant = client.current_tenant().await?;
                cp_sdk::audit::verify_checkpoint(&checkpoint, key, Some(tenant.id.inner()))?;
            }
            match format {
                Format::Json => output::value(&checkpoint)?,
                Format::Table => println!("{}", checkpoint.note.trim_end()),
            }
            match key {
                Some(_) => eprintln!("(its signature verified with your key, and it is your tenant's log)"),
                None => eprintln!("(not verified: pass --key or set CP_AUDIT_VERIFIER_KEY to check its signature)"),
            }
            Ok(())
        }
        AuditCmd::Prove { sequence, key } => {
            let entry = client.audit_entry(sequence).await?;
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
        AuditCmd::Verify { from, to } => {
            let bar = spinner("verifying the audit log's hash chain");
            let verification = client.verify_audit(from, to).await;
            bar.finish_and_clear();
            let v = verification?;
            if format == Format::Json {
                output::value(&v)?;
            } else if v.ok {
                let more =
                    if v.complete { "" } else { " (the range was cut short: verify again from where it stopped)" };
                println!(
                    "entries {}–{}: {} verified, the chain is intact{more}",
                    v.from_sequence, v.to_sequence, v.verified
                );
            }
            match &v.first_broken {
                Some(b) => anyhow::bail!(
                    "the chain breaks at entry {}: {} (expected {}, found {})",
                    b.sequence,
                    b.reason,
                    b.expected,
                    b.found
                ),
                None => Ok(()),
            }
        }
        AuditCmd::Export => {
            let bar = spinner("exporting the audit log");
            let exports = client.export_audit_log().await;
            bar.finish_and_clear();
            output::value(&exports?)
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

impl Row for ModelPolicy {
    fn headers() -> &'static [&'static str] {
        &["ID", "NAME", "STATUS", "VERSION", "ALLOWED", "MAX TOKENS", "MAX ¢/DAY", "SKILL"]
    }
    fn row(&self) -> Vec<String> {
        let allowed = self.allowed.iter().map(|a| format!("{}: {}", a.provider, a.models.join(" ")));
        vec![
            self.id.inner().to_owned(),
            self.name.clone(),
            name(&self.status),
            self.version.to_string(),
            allowed.collect::<Vec<_>>().join("; "),
            opt(&self.max_tokens_per_task),
            opt(&self.max_cost_per_day_cents),
            opt(&self.skill_key),
        ]
    }
}
