//! Environments: each project has `dev`, `test`, `staging` and `prod`, each with a JSON configuration.
//!
//! Outside prod a change applies at once. A change to `prod` is recorded as a pending change and a
//! `RequestApproval` command goes to governance in the same transaction; the change is applied when governance's
//! `ApprovalGranted` for it arrives and discarded on `ApprovalRejected` or `ApprovalExpired` (`approvals.rs`).
//! One pending change per environment at a time. Reads go through a Redis cache (`cache.rs`) that the
//! `EnvironmentChanged` event drops after commit.
//!
//! Configuration holds no secrets: a key that names one (`password`, `secret`, `token`, `apiKey`, …) must
//! hold a `configRef` (`env:NAME`, `file:/path`, a Key Vault or Vault reference: `kernel::secrets`), never
//! the value.

pub mod approvals;
pub mod cache;
pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::contracts::governance::{ApprovalRequest, ApprovalSubject};
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use crate::events::{self, ENVIRONMENT_CHANGE};
use crate::ids::{ChangeId, ProjectId};
use crate::Config;

/// Largest configuration accepted, as JSON text.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[graphql(rename_items = "lowercase")]
    #[serde(rename_all = "lowercase")]
    pub enum EnvironmentName {
        Dev = "dev",
        Test = "test",
        Staging = "staging",
        /// Changes wait for an approval.
        Prod = "prod",
    }
}

impl EnvironmentName {
    pub fn gated(self) -> bool {
        self == EnvironmentName::Prod
    }
}

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum ChangeStatus {
        /// Waiting for governance's decision (prod only).
        Pending = "Pending",
        Applied = "Applied",
        Rejected = "Rejected",
        Expired = "Expired",
        /// Dropped because the project was archived.
        Cancelled = "Cancelled",
    }
}

/// One environment of a project and its current configuration.
#[derive(SimpleObject, Clone, Debug, serde::Serialize, serde::Deserialize)]
#[graphql(complex)]
pub struct Environment {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    pub name: EnvironmentName,
    #[graphql(skip)]
    pub config: Value,
    /// Bumped by every applied change.
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Environment {
    /// The configuration (a JSON object; secrets appear only as `configRef`s).
    async fn config(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.config)
    }

    async fn project_id(&self) -> ID {
        ID(self.project_id.to_string())
    }
}

/// A change to an environment's configuration and what became of it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct EnvironmentChange {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub change_id: ChangeId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    pub environment: EnvironmentName,
    #[graphql(skip)]
    pub config: Value,
    pub reason: String,
    /// The requesting principal.
    pub requested_by: String,
    pub status: ChangeStatus,
    /// The environment's version the change was asked against.
    pub base_version: i32,
    /// The version it produced, once applied.
    pub applied_version: Option<i32>,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl EnvironmentChange {
    async fn id(&self) -> ID {
        ID(self.change_id.to_string())
    }

    async fn project_id(&self) -> ID {
        ID(self.project_id.to_string())
    }

    /// The configuration the change sets.
    async fn config(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.config)
    }
}

/// A configuration from the API: a JSON object of at most [`MAX_CONFIG_BYTES`], with secrets by reference only.
pub fn config(raw: Value) -> Result<Value> {
    if !raw.is_object() {
        return Err(Error::bad_input("config", "config must be a JSON object"));
    }
    let size = serde_json::to_vec(&raw).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_CONFIG_BYTES {
        return Err(Error::bad_input(
            "config",
            format!("config is {size} bytes; at most {MAX_CONFIG_BYTES} are accepted"),
        ));
    }
    kernel::secrets::check_no_inline_secrets("config", &raw)?;
    Ok(raw)
}

/// A change someone asks for.
pub struct ChangeRequest<'a> {
    pub project_id: ProjectId,
    pub env: EnvironmentName,
    pub config: Value,
    pub reason: &'a str,
    pub requested_by: &'a str,
}

/// What a change request led to.
pub enum Requested {
    /// Outside prod: applied at once.
    Applied(Environment, EnvironmentChange),
    /// Prod: waiting for the approval.
    Pending(Environment, EnvironmentChange),
}

/// Records a change to `env`: applies it at once outside prod; in prod records it as pending and asks
/// governance for an approval. The caller has checked the project is writable.
pub async fn request_change(
    work: &mut Work,
    cfg: &Config,
    tenant: &TenantId,
    req: ChangeRequest<'_>,
) -> Result<Requested> {
    let ChangeRequest { project_id, env, config, reason, requested_by } = req;
    let current =
        store::lock(work, tenant, project_id, env).await?.ok_or_else(|| Error::not_found("no such environment"))?;
    // Recorded as pending either way; outside prod it is applied (decided) below in the same transaction.
    let status = ChangeStatus::Pending;
    let change_id = ChangeId::new_v7();
    let mut new = store::NewChange {
        change_id,
        project_id,
        environment: env,
        config: &config,
        reason,
        requested_by,
        status,
        base_version: current.version,
        approval_request: None,
    };
    if !env.gated() {
        let change = store::insert_change(work, tenant, &new).await?;
        let (env, change) = apply(work, tenant, change, None).await?;
        return Ok(Requested::Applied(env, change));
    }
    let requested = events::EnvironmentChangeRequested {
        change_id,
        project_id,
        environment: env.as_str().to_owned(),
        base_version: current.version,
        requested_by: requested_by.to_owned(),
        reason: reason.to_owned(),
    };
    work.emit(tenant, &requested).await?;
    let request = ApprovalRequest {
        subject: ApprovalSubject {
            kind: ENVIRONMENT_CHANGE.to_owned(),
            id: change_id.to_string(),
            project_id: Some(project_id.to_string()),
        },
        summary: format!("change the prod configuration of project {project_id}: {}", kernel::error::clip(reason, 200)),
        approver_roles: cfg.prod_approver_roles.clone(),
        quorum: cfg.prod_approval_quorum,
        requested_by: requested_by.to_owned(),
        expires_at: Utc::now() + chrono::Duration::hours(i64::from(cfg.prod_approval_ttl_hours)),
        details: serde_json::json!({
            "projectId": project_id,
            "environment": env.as_str(),
            "baseVersion": current.version,
            "config": config,
        }),
    };
    // The command's id is the approval's: governance's answer names it as its causation (`approvals.rs`).
    // Recorded in this transaction, so a refused change (another one pending) sends nothing either.
    let command = work.emit(tenant, &events::RequestApproval { project_id, request }).await?;
    new.approval_request = Some(&command.event_id);
    let change = store::insert_change(work, tenant, &new).await?;
    Ok(Requested::Pending(current, change))
}

/// Applies a change (pending or just recorded): the environment takes its configuration and a new version.
pub async fn apply(
    work: &mut Work,
    tenant: &TenantId,
    change: EnvironmentChange,
    decided_by: Option<(&[String], Option<&str>)>,
) -> Result<(Environment, EnvironmentChange)> {
    let env = store::set_config(work, tenant, change.project_id, change.environment, &change.config).await?;
    let (by, note) = match decided_by {
        Some((by, note)) => (Some(by.join(",")), note),
        None => (None, None),
    };
    let change =
        store::decide(work, tenant, change.change_id, ChangeStatus::Applied, Some(env.version), by.as_deref(), note)
            .await?;
    let event = events::EnvironmentChanged {
        change_id: change.change_id,
        project_id: change.project_id,
        environment: env.name.as_str().to_owned(),
        version: env.version,
        config: env.config.clone(),
    };
    work.emit(tenant, &event).await?;
    Ok((env, change))
}

/// Drops a pending change with `outcome` (`Rejected`, `Expired`, `Cancelled`).
pub async fn discard(
    work: &mut Work,
    tenant: &TenantId,
    change: &EnvironmentChange,
    outcome: ChangeStatus,
    decided_by: Option<&str>,
    note: Option<&str>,
) -> Result<EnvironmentChange> {
    let decided = store::decide(work, tenant, change.change_id, outcome, None, decided_by, note).await?;
    let event = events::EnvironmentChangeDiscarded {
        change_id: change.change_id,
        project_id: change.project_id,
        environment: change.environment.as_str().to_owned(),
        outcome,
        note: note.map(str::to_owned),
    };
    work.emit(tenant, &event).await?;
    Ok(decided)
}

/// Cancels every pending change of a project (it is being archived).
pub async fn cancel_pending(work: &mut Work, tenant: &TenantId, project_id: ProjectId, why: &str) -> Result<()> {
    for change in store::pending_of_project(work, tenant, project_id).await? {
        discard(work, tenant, &change, ChangeStatus::Cancelled, None, Some(why)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_are_objects_within_the_cap_with_secrets_by_reference() {
        assert!(config(json!({ "replicas": 3, "db": { "passwordRef": "env:DB_PASSWORD" } })).is_ok());
        assert!(config(json!({ "db": { "password": "file:/run/secrets/db" } })).is_ok());
        assert!(config(json!([1, 2])).is_err());
        let leaked = config(json!({ "db": { "api_key": "sk-live-123" } })).unwrap_err();
        assert!(leaked.message().contains("db.api_key"), "{}", leaked.message());
        assert!(!leaked.message().contains("sk-live"), "the value is never echoed");
        assert!(config(json!({ "blob": "x".repeat(MAX_CONFIG_BYTES) })).is_err());
    }
}
