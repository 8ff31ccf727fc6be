//! Everything governance publishes (routing key `governance.<eventType>`) and the commands it accepts. The
//! README's events table documents each payload; a breaking change makes a new type (`…V2`).
//!
//! The approval outcomes (`ApprovalGranted`, `ApprovalRejected`, `ApprovalExpired`, `ApprovalCancelled`) and
//! the model policies (`ModelPolicyPublished`, `ModelPolicyDeprecated`) are declared in
//! `kernel::contracts::governance`, because other domains read them.

use serde_json::Value;

use crate::approvals::Vote;
use crate::ids::{ApprovalId, ConnectionId, DecisionId, PolicyId};
use crate::integrations::{IntegrationKind, IntegrationStatus};
use crate::policies::Effect;
pub use kernel::contracts::governance::{
    ApprovalCancelled, ApprovalExpired, ApprovalGranted, ApprovalRejected, ModelPolicyDeprecated, ModelPolicyPublished,
    DOMAIN,
};

kernel::events! {
    domain = "governance";

    /// A draft policy version was created or its text changed. `platform`: an operator's policy, which every
    /// tenant's set includes (the envelope's tenant is then `platform`).
    PolicyDrafted { policy_id: PolicyId, name: String, version: i32, effect: Effect, platform: bool }
    /// A policy version was published (immutable from now on): the tenant's policy set changed.
    PolicyPublished {
        policy_id: PolicyId, name: String, version: i32, effect: Effect, cedar: String, policy_set_version: i64,
        platform: bool,
    }
    /// A published policy version was deprecated (final): it no longer takes part in decisions.
    PolicyDeprecated { policy_id: PolicyId, name: String, version: i32, policy_set_version: i64, platform: bool }
    /// A policy was evaluated and its decision appended. `effect`: `Allow`, `Deny` or `RequiresApproval`.
    PolicyDecided {
        decision_id: DecisionId, principal: String, action: String, resource: String, effect: Effect,
        determining_policies: Vec<PolicyId>, policy_set_version: i64, policy_set_hash: String,
    }

    /// An approval was requested (by a domain's `RequestApproval` command or the `requestApproval` mutation).
    #[project = project_id]
    ApprovalRequested {
        approval_id: ApprovalId, subject_kind: String, subject_id: String, project_id: Option<String>,
        approver_roles: Vec<String>, quorum: i32, requested_by: String, expires_at: chrono::DateTime<chrono::Utc>,
    }
    /// An approver voted (`vote`: `Approve` or `Reject`); the outcome event follows when the vote decides.
    ApprovalVoted { approval_id: ApprovalId, principal: String, vote: Vote, approvals: i32, quorum: i32 }

    /// An integration connection was created. `secretRefs` are references (`configRef`s), never values.
    IntegrationConnectionCreated {
        connection_id: ConnectionId, name: String, kind: IntegrationKind, provider: String, settings: Value,
        secret_refs: Value,
    }
    /// A connection's settings or status changed.
    IntegrationConnectionUpdated { connection_id: ConnectionId, name: String, settings: Value, status: IntegrationStatus }
    /// A connection's secret now lives at another reference (the value itself is never seen here).
    IntegrationSecretRotated { connection_id: ConnectionId, name: String, secret: String, config_ref: String, previous_ref: Option<String> }
    /// `testIntegrationConnection` ran: `ok`, or the code of what failed (never a secret value).
    IntegrationConnectionTested { connection_id: ConnectionId, name: String, ok: bool, failures: Vec<String> }

    /// Command (`governance.EvaluatePolicy`): evaluate and append a decision, answered by `PolicyDecided`
    /// with the command's correlation id.
    EvaluatePolicy {
        principal: EntityRef, action: String, resource: EntityRef, #[serde(default)] context: Value,
    }
}

/// A Cedar entity in a request: its type (`Principal`, `Environment`, …), id, and parents (the roles a
/// principal holds, the project a resource belongs to), each `Type::"id"`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRef {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
    #[serde(default)]
    pub parents: Vec<ParentRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
}
