//! Contracts between domains that must fail to compile when broken: event payloads one domain publishes and
//! another crate reads. The publisher emits these very types; the readers deserialize them.

/// The platform's domains: each publishes under its own routing-key prefix (`<domain>.…`), enforced by its
/// broker user's topic permissions, and owns the subject kinds `<domain>.<Thing>`.
pub const DOMAINS: [&str; 6] = {
    let mut names = [""; 6];
    let mut i = 0;
    while i < SUBGRAPHS.len() {
        names[i] = SUBGRAPHS[i].name;
        i += 1;
    }
    names
};

/// A domain subgraph as the platform deploys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgraphEntry {
    pub name: &'static str,
    /// Its port on a developer's machine and in containers (`LISTEN_ADDR`, routing URLs).
    pub port: u16,
    /// Whether it exists yet: `xtask` provisions every domain but builds, serves, composes and prepares only
    /// the built ones, and the supergraph and router configuration list only them.
    pub built: bool,
}

/// Every domain subgraph: the one place a name, a port and a domain's existence are written. `Subgraph::PORT`
/// ([`port`]), `xtask` (provision, up, schema, sqlx-prepare), `supergraph.yaml` and the routers' container
/// URLs (written by `cargo xtask schema`, checked by `--check`) and the e2e stack read it.
pub const SUBGRAPHS: [SubgraphEntry; 6] = [
    SubgraphEntry { name: "identity", port: 4001, built: true },
    SubgraphEntry { name: "tenancy", port: 4002, built: true },
    SubgraphEntry { name: "catalogue", port: 4003, built: true },
    SubgraphEntry { name: "workflow", port: 4004, built: true },
    SubgraphEntry { name: "governance", port: 4005, built: true },
    SubgraphEntry { name: "lineage", port: 4006, built: true },
];

/// A domain's port ([`SUBGRAPHS`]); a name that is not there fails to compile where it is a constant.
pub const fn port(name: &str) -> u16 {
    let mut i = 0;
    while i < SUBGRAPHS.len() {
        if same(SUBGRAPHS[i].name, name) {
            return SUBGRAPHS[i].port;
        }
        i += 1;
    }
    panic!("not a domain in kernel::contracts::SUBGRAPHS")
}

/// What identity publishes and every subgraph's kernel consumes (revocation reaches all of them).
pub mod identity {
    use crate::ids::PrincipalId;

    crate::id! {
        /// An API token's id (identity's). Shown as the `UUID` scalar.
        pub struct ApiTokenId("API token") as UUID;
    }

    crate::events! {
        domain = "identity";
        /// Every subgraph drops its cached validation of the API token with this hash.
        ApiTokenRevoked { token_id: ApiTokenId, token_hash: String }
        /// Every subgraph refuses the access token with this `jti` until it expires (Unix seconds).
        AccessTokenRevoked { jti: String, expires_at: i64 }
        /// The principal's tokens stop carrying permissions; every subgraph closes its live subscriptions.
        PrincipalDisabled { principal_id: PrincipalId }
        /// The principal now holds the role (governance projects bindings: approvers need a role).
        RoleBound { principal_id: PrincipalId, role_key: String }
        /// The principal no longer holds the role.
        RoleUnbound { principal_id: PrincipalId, role_key: String }
    }
}

/// Catalogue's ids other domains carry: workflows and artifacts belong to projects and modules, and
/// envelopes name them (`projectId`, `moduleId`).
pub mod catalogue {
    crate::id! {
        /// A project's id (catalogue's).
        pub struct ProjectId("project");
    }

    crate::id! {
        /// A module's id (catalogue's): a node of a project's dependency graph.
        pub struct ModuleId("module");
    }

    pub const DOMAIN: &str = "catalogue";

    // Views of catalogue's skill events that name only what a reader needs (readers tolerate the rest of
    // catalogue's payload); catalogue checks at compile time that its event types carry these names.
    crate::events! {
        domain = "catalogue";
        /// A skill version was published (`platform`: the platform's, and the envelope's tenant `platform`).
        SkillDefinitionPublished { skill_key: String, version: String, platform: bool }
        /// A published skill version was deprecated (final).
        SkillDefinitionDeprecated { skill_key: String, version: String, platform: bool }
        /// An environment's configuration changed (its new `version`, and the `config` whole); lineage
        /// reads the artifact versions it names under `config.artifacts` (`[{ artifactId, version }]`).
        EnvironmentChanged { project_id: ProjectId, environment: String, version: i32, config: serde_json::Value }
    }
}

/// Tenancy's lifecycle events every subgraph reacts to (live subscriptions of a suspended or retired tenant
/// are closed). They are read as these views, which name only the field a reader needs (readers tolerate
/// the rest of tenancy's payload); tenancy checks at compile time that its event types carry these names
/// ([`same`]). The legal hold is read whole (retention skips a tenant on hold), so it is a shared type
/// tenancy publishes.
pub mod tenancy {
    pub const DOMAIN: &str = "tenancy";

    crate::events! {
        domain = "tenancy";
        /// The tenant was suspended (tenancy's event also carries the state it left and why).
        TenantSuspended { tenant_id: String }
        /// The tenant was retired, for good.
        TenantRetired { tenant_id: String }
        /// The tenant's legal hold was set or lifted: while on hold, no retention deletes its rows anywhere.
        TenantLegalHoldChanged { tenant_id: String, legal_hold: bool }
    }

    crate::inbound! {
        /// What a legal-hold projection takes.
        pub enum Hold {
            Changed(TenantLegalHoldChanged),
        }
    }

    /// The consumer of `TenantLegalHoldChanged` every domain with retention runs (queue
    /// `<domain>.legal-holds`), projecting each into the domain's `legal_holds` ([`record_legal_hold`]).
    pub struct LegalHolds {
        /// `<domain>.legal-holds`: the handler's name in logs and metrics.
        pub name: &'static str,
    }

    impl LegalHolds {
        pub fn spec(&self, retry: crate::consumer::RetryPolicy) -> crate::consumer::ConsumerSpec {
            crate::consumer::ConsumerSpec {
                queue: self.name.to_owned(),
                bindings: Hold::routing_keys(),
                retry,
                prefetch: 16,
            }
        }
    }

    #[async_trait::async_trait]
    impl crate::consumer::Handler for LegalHolds {
        fn name(&self) -> &'static str {
            self.name
        }

        async fn handle(
            &self,
            work: &mut crate::Work,
            envelope: &crate::envelope::Envelope,
        ) -> Result<(), crate::consumer::Failure> {
            let Hold::Changed(e) = Hold::decode(envelope).into_result(self.name)?;
            record_legal_hold(work, &envelope.tenant_id, e.legal_hold, envelope.occurred_at).await?;
            Ok(())
        }
    }

    /// Projects a `TenantLegalHoldChanged` into the domain's `legal_holds` table (`tenant_id` key,
    /// `on_hold`, `changed_at`), as every domain with retention keeps one: the newest event (by
    /// `occurredAt`) wins, so redelivered or reordered events leave the newest state.
    pub async fn record_legal_hold(
        tx: &mut crate::db::Tx,
        tenant: &crate::TenantId,
        on_hold: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) -> crate::Result<()> {
        sqlx::query(
            "INSERT INTO legal_holds (tenant_id, on_hold, changed_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET on_hold = EXCLUDED.on_hold, changed_at = EXCLUDED.changed_at
             WHERE legal_holds.changed_at <= EXCLUDED.changed_at",
        )
        .bind(tenant.as_str())
        .bind(on_hold)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Approvals: any domain asks governance for one with a `RequestApproval` command (published under its own
/// domain, `catalogue.RequestApproval`, `workflow.RequestApproval`: a domain's broker user publishes only
/// under its own prefix, so governance binds `*.RequestApproval`), and governance answers with one of these
/// events, carrying the request's subject back, the request's correlation id in the envelope, and as its
/// causation the id of the command that asked (none for a request opened through the API): the requesting
/// domain acts only on the answer to the command it sent. The outcomes are addressed to the domain the
/// subject's kind names (`governance.ApprovalGranted.catalogue`): a domain binds
/// `routing_keys_to(itself)` and never receives, nor stores, another domain's outcomes.
pub mod governance {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    pub const DOMAIN: &str = "governance";

    crate::id! {
        /// An approval request's id (governance's).
        pub struct ApprovalId("approval");
    }

    crate::id! {
        /// A model policy version's id (governance's).
        pub struct ModelPolicyId("model policy");
    }

    pub mod models;

    /// The command's event type (under the requesting domain's prefix).
    pub const REQUEST_APPROVAL: &str = "RequestApproval";

    /// What an approval is about: the requesting domain's own kind of thing and its id.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ApprovalSubject {
        /// `<domain>.<Thing>`, e.g. `catalogue.EnvironmentChange`, `workflow.Gate`.
        pub kind: String,
        /// The thing's id in the requesting domain.
        pub id: String,
        /// The project it belongs to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub project_id: Option<String>,
    }

    /// The payload of a `RequestApproval` command.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ApprovalRequest {
        pub subject: ApprovalSubject,
        /// One line for the approver's inbox.
        pub summary: String,
        /// Roles any of which an approver must hold.
        pub approver_roles: Vec<String>,
        /// Approvals needed (N of the approvers); 1 unless the request asks for more.
        pub quorum: u32,
        /// The principal asking; it may not approve its own request.
        pub requested_by: String,
        /// After this the request expires (`ApprovalExpired`).
        pub expires_at: DateTime<Utc>,
        /// Anything the approver should see (the change itself); never secrets.
        #[serde(default)]
        pub details: serde_json::Value,
    }

    crate::events! {
        domain = "governance";
        /// The request reached its quorum of approvals.
        #[audience = subject.kind]
        ApprovalGranted { approval_id: ApprovalId, subject: ApprovalSubject, decided_by: Vec<String>, note: Option<String> }
        /// An approver rejected the request.
        #[audience = subject.kind]
        ApprovalRejected { approval_id: ApprovalId, subject: ApprovalSubject, decided_by: Vec<String>, note: Option<String> }
        /// Nobody decided before `expiresAt`.
        #[audience = subject.kind]
        ApprovalExpired { approval_id: ApprovalId, subject: ApprovalSubject }
        /// The requester withdrew the request before anyone decided it (the requesting domain drops what
        /// waited for it).
        #[audience = subject_kind]
        ApprovalCancelled { approval_id: ApprovalId, subject_kind: String, subject_id: String, cancelled_by: String }

        /// A model policy version was published: the full policy, so consumers evaluate it themselves
        /// ([`models`]).
        ModelPolicyPublished { #[serde(flatten)] policy: models::Policy }
        /// A published model policy version was deprecated (final).
        ModelPolicyDeprecated { model_policy_id: ModelPolicyId, name: String, version: i32 }
    }
}

/// Usage metering: any domain reports usage with a `UsageRecorded` event under its own prefix
/// (`tenancy.UsageRecorded`, `workflow.UsageRecorded`; governance binds `*.UsageRecorded`), whose payload is a
/// [`usage::UsageRecord`]. Governance stores, deduplicates and rolls up the records.
pub mod usage {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    /// The event type every domain's usage event carries.
    pub const USAGE_RECORDED: &str = "UsageRecorded";

    /// One measurement of a meter.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct UsageRecord {
        /// The meter (`api-calls`, `workflow-runs`, `model-tokens`): lower-case letters, digits, `.`, `_`, `-`.
        pub meter: String,
        /// How much, in the meter's unit (whole units: meter the smallest one — tokens, bytes, milliseconds),
        /// 0 to 10^15.
        pub quantity: i64,
        /// When it happened; the envelope's `occurredAt` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub occurred_at: Option<DateTime<Utc>>,
        /// What to group it by (`model`, `region`, `project`), at most 16 string pairs.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub dimensions: BTreeMap<String, String>,
        /// The same usage sent twice carries the same key and time and counts once; the event's id when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub idempotency_key: Option<String>,
    }
}

/// Commands any domain may send workflow, under its own prefix (`catalogue.StartWorkflow`; workflow binds
/// `*.StartWorkflow`, `*.CancelWorkflow`, `*.AssignAgentTask`), each the same change as the mutation of the
/// same name. Workflow answers with its own events (`WorkflowInstanceStarted`, `WorkflowCancelled`,
/// `AgentTaskAssigned`) whose envelope's causation is the command's id; the inbox applies a command once
/// however often it is delivered, and a `StartWorkflow` delivered again starts nothing new (the instance's
/// id is derived from the command's). A command refused for good (an unknown definition, another tenant's
/// instance) is dead-lettered with the reason.
pub mod workflow {
    use serde::{Deserialize, Serialize};

    pub const DOMAIN: &str = "workflow";
    pub const START_WORKFLOW: &str = "StartWorkflow";
    pub const CANCEL_WORKFLOW: &str = "CancelWorkflow";
    pub const ASSIGN_AGENT_TASK: &str = "AssignAgentTask";

    /// Starts an instance of a published definition version (the latest when `version` is absent; the
    /// platform registry's with `platform`).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct StartWorkflow {
        pub definition_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<i32>,
        #[serde(default)]
        pub platform: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub project_id: Option<String>,
        /// The instance's input (a JSON object, at most 64 KiB).
        #[serde(default)]
        pub input: serde_json::Value,
    }

    /// Cancels a running instance (an ended one is left as it is).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CancelWorkflow {
        pub instance_id: String,
        pub reason: String,
    }

    /// Assigns the agent task of a ready step now, if it has no live task (otherwise a no-op).
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AssignAgentTask {
        pub instance_id: String,
        pub step_id: String,
    }

    /// An output an agent task produced: an artifact version lineage knows by id.
    #[derive(
        Clone, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject, async_graphql::InputObject,
    )]
    #[graphql(input_name = "ArtifactRefInput")]
    #[serde(rename_all = "camelCase")]
    pub struct ArtifactRef {
        pub artifact_id: String,
        pub version: String,
        /// `sha256:` and 64 hex digits.
        pub content_hash: String,
    }

    // A view of workflow's completion that names what lineage reads (readers tolerate the rest of
    // workflow's payload); workflow checks at compile time that its event type carries this name.
    crate::events! {
        domain = "workflow";
        /// An agent task finished with its outputs, made by `agentId` running `skill` (absent in events
        /// recorded before workflow named them).
        AgentTaskCompleted {
            instance_id: String, task_id: String, step_id: String, compensation: bool, outputs: Vec<ArtifactRef>,
            #[serde(default)] agent_id: Option<String>, #[serde(default)] skill: Option<String>,
        }
    }
}

/// `a == b` in a `const` context: `const _: () = assert!(same(MyEvent::TYPE, contracts::…));` makes a
/// renamed event type a compile error in the crate that renamed it.
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
