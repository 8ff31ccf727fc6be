//! Governance: Cedar policies and their decisions, approvals, integration connections (secrets by
//! `configRef` only), model policies, usage, and the tamper-evident audit log.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
//! use cp_sdk::ops::governance::*;
//! use futures::TryStreamExt;
//!
//! // Policies: draft, publish, and ask for a decision.
//! let policy = client
//!     .draft_policy(DraftPolicyInput {
//!         name: "no-friday-prod".into(),
//!         description: String::new(),
//!         effect: PolicyEffect::Deny,
//!         cedar: r#"forbid(principal, action == Action::"deploy", resource);"#.into(),
//!         platform: false,
//!     })
//!     .await?;
//! client.publish_policy(policy.id).await?;
//! let decision = client
//!     .evaluate_policy(PolicyRequestInput {
//!         principal: PolicyEntityInput::new("User", "alice"),
//!         action: "deploy".into(),
//!         resource: PolicyEntityInput::new("Environment", "prod"),
//!         context: Some(serde_json::json!({ "friday": true })),
//!     })
//!     .await?;
//! let denials: Vec<_> = client.decisions(Some(PolicyEffect::Deny), 100).try_collect().await?;
//!
//! // Approvals: the pending ones, approved with a note.
//! let pending: Vec<_> = client.approvals(Some(ApprovalStatus::Pending), 50).try_collect().await?;
//! for a in &pending {
//!     client.approve(a.id.clone(), Some("looks right".into())).await?;
//! }
//!
//! // Integrations: a connection whose secret is a reference, tested.
//! let git = client
//!     .create_integration(CreateIntegrationConnectionInput {
//!         kind: IntegrationKind::GitHosting,
//!         name: "github".into(),
//!         provider: "github".into(),
//!         secrets: vec![SecretRefInput { name: "token".into(), config_ref: "env:GITHUB_TOKEN".into() }],
//!         settings: None,
//!     })
//!     .await?;
//! let test = client.test_integration(git.id).await?;
//!
//! // Model policies: which models agents may use.
//! let mp = client
//!     .draft_model_policy(DraftModelPolicyInput {
//!         name: "agents".into(),
//!         allowed: vec![ModelAllowanceInput { provider: "openai".into(), models: vec!["*".into()] }],
//!         max_tokens_per_task: Some(20_000),
//!         max_cost_per_day_cents: None,
//!         project_id: None,
//!         skill_key: None,
//!     })
//!     .await?;
//! client.publish_model_policy(mp.id).await?;
//!
//! // Usage: recorded once however often it is sent (idempotency keys), then reported.
//! let now = chrono::Utc::now();
//! client
//!     .record_usage(vec![UsageRecordInput {
//!         meter: "build-minutes".into(),
//!         quantity: 12,
//!         occurred_at: now,
//!         idempotency_key: "build-4711".into(),
//!         dimensions: None,
//!     }])
//!     .await?;
//! let report = client.usage("build-minutes", now - chrono::Duration::days(1), now, None).await?;
//!
//! // Audit: the log's entries, one proven against the signed checkpoint (see `cp_sdk::audit`).
//! let entries: Vec<_> = client.audit_entries(100).try_collect().await?;
//! # Ok(()) }
//! ```

use cynic::{MutationBuilder, QueryBuilder};
use futures::Stream;

use crate::pages::{paged, PageInfo};
use crate::schema;
use crate::{Client, DateTime, Error, Json};

// ---- Policies and decisions -------------------------------------------------------------------------

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyEffect {
    Allow,
    Deny,
    RequiresApproval,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStatus {
    Draft,
    Published,
    Deprecated,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: cynic::Id,
    pub name: String,
    pub description: String,
    pub effect: PolicyEffect,
    pub cedar: String,
    pub status: PolicyStatus,
    pub platform: bool,
    pub version: i32,
    pub created_at: DateTime,
    pub published_at: Option<DateTime>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct DraftPolicyInput {
    pub name: String,
    pub description: String,
    pub effect: PolicyEffect,
    pub cedar: String,
    pub platform: bool,
}

#[derive(cynic::InputObject, Debug, Clone, Default)]
pub struct UpdatePolicyDraftInput {
    pub cedar: Option<String>,
    pub description: Option<String>,
    pub effect: Option<PolicyEffect>,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyEntityInput {
    #[cynic(rename = "type")]
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
    pub attrs: Option<Json>,
    #[serde(default)]
    pub parents: Vec<PolicyEntityParentInput>,
}

impl PolicyEntityInput {
    /// An entity of `entity_type` with `id`, no attributes or parents.
    pub fn new(entity_type: &str, id: &str) -> Self {
        Self { entity_type: entity_type.into(), id: id.into(), attrs: None, parents: Vec::new() }
    }
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyEntityParentInput {
    #[cynic(rename = "type")]
    #[serde(rename = "type")]
    pub entity_type: String,
    pub id: String,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRequestInput {
    pub principal: PolicyEntityInput,
    pub action: String,
    pub resource: PolicyEntityInput,
    pub context: Option<Json>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Policy")]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    pub id: cynic::Id,
    pub name: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub id: cynic::Id,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub effect: PolicyEffect,
    pub determining_policies: Vec<PolicyRef>,
    pub errors: Vec<String>,
    pub policy_set_version: i32,
    pub decided_at: DateTime,
}

// ---- Approvals --------------------------------------------------------------------------------------

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
    Cancelled,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalVoteChoice {
    Approve,
    Reject,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalVote {
    pub principal: String,
    pub vote: ApprovalVoteChoice,
    pub note: Option<String>,
    pub voted_at: DateTime,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub id: cynic::Id,
    pub subject_kind: String,
    pub subject_id: String,
    pub summary: String,
    pub details: Json,
    pub status: ApprovalStatus,
    pub quorum: i32,
    pub approvals: i32,
    pub approver_roles: Vec<String>,
    pub requested_by: String,
    pub requested_at: DateTime,
    pub expires_at: DateTime,
    pub decided_at: Option<DateTime>,
    pub decision_note: Option<String>,
    pub votes: Vec<ApprovalVote>,
}

/// The schema's default quorum.
fn one() -> i32 {
    1
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestApprovalInput {
    pub subject_kind: String,
    pub subject_id: String,
    pub summary: String,
    pub details: Option<Json>,
    pub approver_roles: Vec<String>,
    #[serde(default = "one")]
    pub quorum: i32,
    pub expires_at: DateTime,
    pub project_id: Option<String>,
}

// ---- Integrations -----------------------------------------------------------------------------------

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationKind {
    GitHosting,
    Ci,
    Cloud,
    Chat,
    Other,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationStatus {
    Active,
    Disabled,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub name: String,
    pub config_ref: String,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct SecretRefInput {
    pub name: String,
    pub config_ref: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationConnection {
    pub id: cynic::Id,
    pub kind: IntegrationKind,
    pub name: String,
    pub provider: String,
    pub status: IntegrationStatus,
    pub settings: Json,
    pub secrets: Vec<SecretRef>,
    pub last_test_ok: Option<bool>,
    pub last_tested_at: Option<DateTime>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreateIntegrationConnectionInput {
    pub kind: IntegrationKind,
    pub name: String,
    pub provider: String,
    pub secrets: Vec<SecretRefInput>,
    pub settings: Option<Json>,
}

#[derive(cynic::InputObject, Debug, Clone, Default)]
pub struct UpdateIntegrationConnectionInput {
    pub settings: Option<Json>,
    pub status: Option<IntegrationStatus>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretCheck {
    pub name: String,
    pub config_ref: String,
    pub ok: bool,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationConnectionTest {
    pub ok: bool,
    pub secrets: Vec<SecretCheck>,
    pub connection: IntegrationConnection,
}

// ---- Model policies ---------------------------------------------------------------------------------

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelAllowance {
    pub provider: String,
    pub models: Vec<String>,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelAllowanceInput {
    pub provider: String,
    pub models: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPolicy {
    pub id: cynic::Id,
    pub name: String,
    pub status: PolicyStatus,
    pub version: i32,
    pub allowed: Vec<ModelAllowance>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i32>,
    pub skill_key: Option<String>,
    pub project_id: Option<crate::Uuid>,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftModelPolicyInput {
    pub name: String,
    pub allowed: Vec<ModelAllowanceInput>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i32>,
    pub project_id: Option<crate::Uuid>,
    pub skill_key: Option<String>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct ModelTaskInput {
    pub provider: String,
    pub model: String,
    pub tokens: Option<i32>,
    pub cost_today_cents: Option<i32>,
    pub project_id: Option<crate::Uuid>,
    pub skill_key: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPolicyDecision {
    pub allowed: bool,
    pub reason: String,
    pub policies: Vec<String>,
    pub max_tokens_per_task: Option<i32>,
    pub max_cost_per_day_cents: Option<i32>,
}

// ---- Usage ------------------------------------------------------------------------------------------

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRecordInput {
    pub meter: String,
    pub quantity: i32,
    pub occurred_at: DateTime,
    /// Records with the same time and key count once, however often they are sent.
    pub idempotency_key: String,
    pub dimensions: Option<Json>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordUsagePayload {
    pub accepted: i32,
    pub duplicates: i32,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    pub value: Option<String>,
    pub quantity: i32,
    pub records: i32,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub meter: String,
    pub from: DateTime,
    pub to: DateTime,
    pub quantity: i32,
    pub records: i32,
    pub groups: Vec<UsageGroup>,
    pub closed_until: DateTime,
}

// ---- Audit ------------------------------------------------------------------------------------------

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub sequence: i32,
    pub event_id: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub occurred_at: DateTime,
    pub recorded_at: DateTime,
    /// The canonical entry (RFC 8785 JSON) the tree's leaf hashes.
    pub canonical: String,
    pub hash: String,
    pub correlation_id: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditCheckpoint {
    pub note: String,
    pub origin: String,
    pub root_hash: String,
    pub tree_size: i32,
    pub verifier_key: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditInclusionProof {
    pub sequence: i32,
    pub tree_size: i32,
    pub leaf_hash: String,
    pub root_hash: String,
    pub proof: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditBrokenLink {
    pub sequence: i32,
    pub reason: String,
    pub expected: String,
    pub found: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    pub ok: bool,
    pub complete: bool,
    pub from_sequence: i32,
    pub to_sequence: i32,
    pub verified: i32,
    pub first_broken: Option<AuditBrokenLink>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditExport {
    pub from_sequence: i32,
    pub to_sequence: i32,
    pub bytes: i32,
    pub sha256: String,
    pub location: String,
    pub object_key: String,
    pub checkpoint: String,
    pub exported_at: DateTime,
}

// ---- Operations -------------------------------------------------------------------------------------

#[derive(cynic::QueryVariables, Debug)]
struct IdVars {
    id: cynic::Id,
}

#[derive(cynic::QueryVariables, Debug)]
struct NoteVars {
    id: cynic::Id,
    note: Option<String>,
}

#[derive(cynic::QueryVariables, Debug)]
struct PoliciesVars {
    first: Option<i32>,
    after: Option<String>,
    status: Option<PolicyStatus>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PoliciesVars")]
struct Policies {
    #[arguments(first: $first, after: $after, status: $status)]
    policies: PolicyConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct PolicyConnection {
    nodes: Vec<Policy>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct PolicyQuery {
    #[arguments(id: $id)]
    policy: Policy,
}

#[derive(cynic::QueryVariables, Debug)]
struct DraftPolicyVars {
    input: DraftPolicyInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "DraftPolicyVars")]
struct DraftPolicy {
    #[arguments(input: $input)]
    draft_policy: Policy,
}

#[derive(cynic::QueryVariables, Debug)]
struct UpdatePolicyVars {
    id: cynic::Id,
    input: UpdatePolicyDraftInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "UpdatePolicyVars")]
struct UpdatePolicy {
    #[arguments(id: $id, input: $input)]
    update_policy_draft: Policy,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct PublishPolicy {
    #[arguments(id: $id)]
    publish_policy: Policy,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct DeprecatePolicy {
    #[arguments(id: $id)]
    deprecate_policy: Policy,
}

#[derive(cynic::QueryVariables, Debug)]
struct EvaluateVars {
    request: PolicyRequestInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "EvaluateVars")]
struct EvaluatePolicy {
    #[arguments(request: $request)]
    evaluate_policy: Decision,
}

#[derive(cynic::QueryVariables, Debug)]
struct DecisionsVars {
    first: Option<i32>,
    after: Option<String>,
    effect: Option<PolicyEffect>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "DecisionsVars")]
struct Decisions {
    #[arguments(first: $first, after: $after, effect: $effect)]
    decisions: DecisionConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct DecisionConnection {
    nodes: Vec<Decision>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct DecisionQuery {
    #[arguments(id: $id)]
    decision: Decision,
}

#[derive(cynic::QueryVariables, Debug)]
struct ApprovalsVars {
    first: Option<i32>,
    after: Option<String>,
    status: Option<ApprovalStatus>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ApprovalsVars")]
struct Approvals {
    #[arguments(first: $first, after: $after, status: $status)]
    approvals: ApprovalConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct ApprovalConnection {
    nodes: Vec<Approval>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct ApprovalQuery {
    #[arguments(id: $id)]
    approval: Approval,
}

#[derive(cynic::QueryVariables, Debug)]
struct RequestApprovalVars {
    input: RequestApprovalInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RequestApprovalVars")]
struct RequestApproval {
    #[arguments(input: $input)]
    request_approval: Approval,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "NoteVars")]
struct Approve {
    #[arguments(id: $id, note: $note)]
    approve: Approval,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "NoteVars")]
struct Reject {
    #[arguments(id: $id, note: $note)]
    reject: Approval,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct CancelApproval {
    #[arguments(id: $id)]
    cancel_approval: Approval,
}

#[derive(cynic::QueryVariables, Debug)]
struct PageVars {
    first: Option<i32>,
    after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PageVars")]
struct Integrations {
    #[arguments(first: $first, after: $after)]
    integration_connections: IntegrationConnectionConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct IntegrationConnectionConnection {
    nodes: Vec<IntegrationConnection>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateIntegrationVars {
    input: CreateIntegrationConnectionInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateIntegrationVars")]
struct CreateIntegration {
    #[arguments(input: $input)]
    create_integration_connection: IntegrationConnection,
}

#[derive(cynic::QueryVariables, Debug)]
struct UpdateIntegrationVars {
    id: cynic::Id,
    input: UpdateIntegrationConnectionInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "UpdateIntegrationVars")]
struct UpdateIntegration {
    #[arguments(id: $id, input: $input)]
    update_integration_connection: IntegrationConnection,
}

#[derive(cynic::QueryVariables, Debug)]
struct RotateSecretVars {
    id: cynic::Id,
    secret: SecretRefInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RotateSecretVars")]
struct RotateIntegrationSecret {
    #[arguments(id: $id, secret: $secret)]
    rotate_integration_secret: IntegrationConnection,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct TestIntegration {
    #[arguments(id: $id)]
    test_integration_connection: IntegrationConnectionTest,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PageVars")]
struct ModelPolicies {
    #[arguments(first: $first, after: $after)]
    model_policies: ModelPolicyConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct ModelPolicyConnection {
    nodes: Vec<ModelPolicy>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct DraftModelPolicyVars {
    input: DraftModelPolicyInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "DraftModelPolicyVars")]
struct DraftModelPolicy {
    #[arguments(input: $input)]
    draft_model_policy: ModelPolicy,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct PublishModelPolicy {
    #[arguments(id: $id)]
    publish_model_policy: ModelPolicy,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "IdVars")]
struct DeprecateModelPolicy {
    #[arguments(id: $id)]
    deprecate_model_policy: ModelPolicy,
}

#[derive(cynic::QueryVariables, Debug)]
struct ModelTaskVars {
    task: ModelTaskInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ModelTaskVars")]
struct EvaluateModelPolicy {
    #[arguments(task: $task)]
    evaluate_model_policy: ModelPolicyDecision,
}

#[derive(cynic::QueryVariables, Debug)]
struct RecordUsageVars {
    records: Vec<UsageRecordInput>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RecordUsageVars")]
struct RecordUsage {
    #[arguments(records: $records)]
    record_usage: RecordUsagePayload,
}

#[derive(cynic::QueryVariables, Debug)]
struct UsageVars {
    meter: String,
    from: DateTime,
    to: DateTime,
    group_by: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "UsageVars")]
struct Usage {
    #[arguments(meter: $meter, from: $from, to: $to, groupBy: $group_by)]
    usage: UsageReport,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PageVars")]
struct AuditEntries {
    #[arguments(first: $first, after: $after)]
    audit_entries: AuditEntryConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct AuditEntryConnection {
    nodes: Vec<AuditEntry>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct SequenceVars {
    sequence: i32,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "SequenceVars")]
struct AuditEntryQuery {
    #[arguments(sequence: $sequence)]
    audit_entry: AuditEntry,
}

#[derive(cynic::QueryVariables, Debug)]
struct CheckpointVars {
    tree_size: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "CheckpointVars")]
struct Checkpoint {
    #[arguments(treeSize: $tree_size)]
    audit_checkpoint: AuditCheckpoint,
}

#[derive(cynic::QueryVariables, Debug)]
struct InclusionVars {
    sequence: i32,
    tree_size: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "InclusionVars")]
struct Inclusion {
    #[arguments(sequence: $sequence, treeSize: $tree_size)]
    audit_inclusion_proof: AuditInclusionProof,
}

#[derive(cynic::QueryVariables, Debug)]
struct VerifyVars {
    from_sequence: i32,
    to_sequence: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "VerifyVars")]
struct VerifyAudit {
    #[arguments(fromSequence: $from_sequence, toSequence: $to_sequence)]
    verify_audit: AuditVerification,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation")]
struct ExportAudit {
    export_audit_log: Vec<AuditExport>,
}

impl Client {
    /// The tenant's policies (and the platform's), `per_page` at a time, of one status when given.
    pub fn policies(
        &self,
        status: Option<PolicyStatus>,
        per_page: i32,
    ) -> impl Stream<Item = Result<Policy, Error>> + '_ {
        paged(
            self,
            move |after| Policies::build(PoliciesVars { first: Some(per_page), after, status }),
            |q| (q.policies.nodes, q.policies.page_info),
        )
    }

    /// One policy.
    pub async fn policy(&self, id: cynic::Id) -> Result<Policy, Error> {
        Ok(self.run(PolicyQuery::build(IdVars { id })).await?.policy)
    }

    /// Drafts a policy (checked against the policy schema; a draft decides nothing until published).
    pub async fn draft_policy(&self, input: DraftPolicyInput) -> Result<Policy, Error> {
        Ok(self.run(DraftPolicy::build(DraftPolicyVars { input })).await?.draft_policy)
    }

    /// Changes a draft's Cedar, description or effect.
    pub async fn update_policy_draft(&self, id: cynic::Id, input: UpdatePolicyDraftInput) -> Result<Policy, Error> {
        Ok(self.run(UpdatePolicy::build(UpdatePolicyVars { id, input })).await?.update_policy_draft)
    }

    /// Publishes a draft: it decides from the next evaluation on.
    pub async fn publish_policy(&self, id: cynic::Id) -> Result<Policy, Error> {
        Ok(self.run(PublishPolicy::build(IdVars { id })).await?.publish_policy)
    }

    /// Deprecates a published policy: it no longer decides.
    pub async fn deprecate_policy(&self, id: cynic::Id) -> Result<Policy, Error> {
        Ok(self.run(DeprecatePolicy::build(IdVars { id })).await?.deprecate_policy)
    }

    /// Evaluates a request against the tenant's published policies; the decision is recorded.
    pub async fn evaluate_policy(&self, request: PolicyRequestInput) -> Result<Decision, Error> {
        Ok(self.run(EvaluatePolicy::build(EvaluateVars { request })).await?.evaluate_policy)
    }

    /// The recorded decisions, newest first, of one effect when given.
    pub fn decisions(
        &self,
        effect: Option<PolicyEffect>,
        per_page: i32,
    ) -> impl Stream<Item = Result<Decision, Error>> + '_ {
        paged(
            self,
            move |after| Decisions::build(DecisionsVars { first: Some(per_page), after, effect }),
            |q| (q.decisions.nodes, q.decisions.page_info),
        )
    }

    /// One recorded decision.
    pub async fn decision(&self, id: cynic::Id) -> Result<Decision, Error> {
        Ok(self.run(DecisionQuery::build(IdVars { id })).await?.decision)
    }

    /// The tenant's approvals, of one status when given.
    pub fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        per_page: i32,
    ) -> impl Stream<Item = Result<Approval, Error>> + '_ {
        paged(
            self,
            move |after| Approvals::build(ApprovalsVars { first: Some(per_page), after, status }),
            |q| (q.approvals.nodes, q.approvals.page_info),
        )
    }

    /// One approval, with its votes.
    pub async fn approval(&self, id: cynic::Id) -> Result<Approval, Error> {
        Ok(self.run(ApprovalQuery::build(IdVars { id })).await?.approval)
    }

    /// Opens an approval request.
    pub async fn request_approval(&self, input: RequestApprovalInput) -> Result<Approval, Error> {
        Ok(self.run(RequestApproval::build(RequestApprovalVars { input })).await?.request_approval)
    }

    /// Votes to approve (the caller must hold one of its approver roles); approved once the quorum is met.
    pub async fn approve(&self, id: cynic::Id, note: Option<String>) -> Result<Approval, Error> {
        Ok(self.run(Approve::build(NoteVars { id, note })).await?.approve)
    }

    /// Votes to reject: one rejection decides.
    pub async fn reject(&self, id: cynic::Id, note: Option<String>) -> Result<Approval, Error> {
        Ok(self.run(Reject::build(NoteVars { id, note })).await?.reject)
    }

    /// Cancels a pending request (its requester).
    pub async fn cancel_approval(&self, id: cynic::Id) -> Result<Approval, Error> {
        Ok(self.run(CancelApproval::build(IdVars { id })).await?.cancel_approval)
    }

    /// The tenant's integration connections.
    pub fn integrations(&self, per_page: i32) -> impl Stream<Item = Result<IntegrationConnection, Error>> + '_ {
        paged(
            self,
            move |after| Integrations::build(PageVars { first: Some(per_page), after }),
            |q| (q.integration_connections.nodes, q.integration_connections.page_info),
        )
    }

    /// Creates a connection; its secrets are references (`env:NAME`, `file:/path`), never values.
    pub async fn create_integration(
        &self,
        input: CreateIntegrationConnectionInput,
    ) -> Result<IntegrationConnection, Error> {
        let op = CreateIntegration::build(CreateIntegrationVars { input });
        Ok(self.run(op).await?.create_integration_connection)
    }

    /// Changes a connection's settings or status.
    pub async fn update_integration(
        &self,
        id: cynic::Id,
        input: UpdateIntegrationConnectionInput,
    ) -> Result<IntegrationConnection, Error> {
        let op = UpdateIntegration::build(UpdateIntegrationVars { id, input });
        Ok(self.run(op).await?.update_integration_connection)
    }

    /// Points one of a connection's secrets at another reference.
    pub async fn rotate_integration_secret(
        &self,
        id: cynic::Id,
        secret: SecretRefInput,
    ) -> Result<IntegrationConnection, Error> {
        let op = RotateIntegrationSecret::build(RotateSecretVars { id, secret });
        Ok(self.run(op).await?.rotate_integration_secret)
    }

    /// Checks that each of a connection's secret references resolves (values are never shown).
    pub async fn test_integration(&self, id: cynic::Id) -> Result<IntegrationConnectionTest, Error> {
        Ok(self.run(TestIntegration::build(IdVars { id })).await?.test_integration_connection)
    }

    /// The tenant's model policies.
    pub fn model_policies(&self, per_page: i32) -> impl Stream<Item = Result<ModelPolicy, Error>> + '_ {
        paged(
            self,
            move |after| ModelPolicies::build(PageVars { first: Some(per_page), after }),
            |q| (q.model_policies.nodes, q.model_policies.page_info),
        )
    }

    /// Drafts a model policy.
    pub async fn draft_model_policy(&self, input: DraftModelPolicyInput) -> Result<ModelPolicy, Error> {
        Ok(self.run(DraftModelPolicy::build(DraftModelPolicyVars { input })).await?.draft_model_policy)
    }

    /// Publishes a model policy: agents' tasks are held to it.
    pub async fn publish_model_policy(&self, id: cynic::Id) -> Result<ModelPolicy, Error> {
        Ok(self.run(PublishModelPolicy::build(IdVars { id })).await?.publish_model_policy)
    }

    /// Deprecates a model policy.
    pub async fn deprecate_model_policy(&self, id: cynic::Id) -> Result<ModelPolicy, Error> {
        Ok(self.run(DeprecateModelPolicy::build(IdVars { id })).await?.deprecate_model_policy)
    }

    /// Whether a task may use a model under the published model policies.
    pub async fn evaluate_model_policy(&self, task: ModelTaskInput) -> Result<ModelPolicyDecision, Error> {
        Ok(self.run(EvaluateModelPolicy::build(ModelTaskVars { task })).await?.evaluate_model_policy)
    }

    /// Records usage. Safe to send again (each record's idempotency key), so it is retried like a query.
    pub async fn record_usage(&self, records: Vec<UsageRecordInput>) -> Result<RecordUsagePayload, Error> {
        Ok(self.run_idempotent(RecordUsage::build(RecordUsageVars { records })).await?.record_usage)
    }

    /// A meter's usage over `[from, to)`, grouped by one dimension when given.
    pub async fn usage(
        &self,
        meter: &str,
        from: DateTime,
        to: DateTime,
        group_by: Option<&str>,
    ) -> Result<UsageReport, Error> {
        let vars = UsageVars { meter: meter.into(), from, to, group_by: group_by.map(str::to_owned) };
        Ok(self.run(Usage::build(vars)).await?.usage)
    }

    /// The tenant's audit log, oldest first.
    pub fn audit_entries(&self, per_page: i32) -> impl Stream<Item = Result<AuditEntry, Error>> + '_ {
        paged(
            self,
            move |after| AuditEntries::build(PageVars { first: Some(per_page), after }),
            |q| (q.audit_entries.nodes, q.audit_entries.page_info),
        )
    }

    /// One audit entry, by its sequence (`NOT_FOUND` past the end of the log); an answer that is another
    /// entry is refused.
    pub async fn audit_entry(&self, sequence: i32) -> Result<AuditEntry, Error> {
        let entry = self.run(AuditEntryQuery::build(SequenceVars { sequence })).await?.audit_entry;
        if entry.sequence != sequence {
            return Err(Error::Verification(format!(
                "asked for audit entry {sequence}, answered with {}",
                entry.sequence
            )));
        }
        Ok(entry)
    }

    /// The signed checkpoint of the tenant's audit tree (the latest, or of `tree_size` entries). Check it
    /// with [`crate::audit::verify_checkpoint`] and a pinned key before trusting it.
    pub async fn audit_checkpoint(&self, tree_size: Option<i32>) -> Result<AuditCheckpoint, Error> {
        Ok(self.run(Checkpoint::build(CheckpointVars { tree_size })).await?.audit_checkpoint)
    }

    /// Entry `sequence`'s inclusion proof in the tree of `tree_size` entries (the latest when none).
    pub async fn audit_inclusion_proof(
        &self,
        sequence: i32,
        tree_size: Option<i32>,
    ) -> Result<AuditInclusionProof, Error> {
        Ok(self.run(Inclusion::build(InclusionVars { sequence, tree_size })).await?.audit_inclusion_proof)
    }

    /// The server's check of the log's hash chain over `[from, to]`.
    pub async fn verify_audit(&self, from_sequence: i32, to_sequence: Option<i32>) -> Result<AuditVerification, Error> {
        Ok(self.run(VerifyAudit::build(VerifyVars { from_sequence, to_sequence })).await?.verify_audit)
    }

    /// Exports the entries not yet exported to blob storage, with their checkpoint.
    pub async fn export_audit_log(&self) -> Result<Vec<AuditExport>, Error> {
        Ok(self.run(ExportAudit::build(())).await?.export_audit_log)
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
