//! Workflow: definitions, instances started, inspected and cancelled, and their process state watched
//! live.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
//! use cp_sdk::ops::workflow::*;
//! use futures::StreamExt;
//!
//! // A definition: wait a minute, then done.
//! client
//!     .publish_workflow_definition(PublishWorkflowDefinitionInput {
//!         key: "cool-down".into(),
//!         name: "Cool down".into(),
//!         description: String::new(),
//!         start: "pause".into(),
//!         steps: vec![WorkflowStepInput::wait("pause", 60)],
//!         continue_as_new_after: None,
//!     })
//!     .await?;
//! let instance = client.start_workflow(StartWorkflowInput::new("cool-down")).await?;
//!
//! // Its state now and after each transition, until it ends — across reconnections.
//! let mut states = Box::pin(client.watch_workflow(instance.id.clone()));
//! while let Some(state) = states.next().await {
//!     let state = state?;
//!     println!("{:?} at version {}", state.status, state.version);
//! }
//! let history = client.workflow_history(instance.id, 0, 100).await?;
//! # Ok(()) }
//! ```

use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
use futures::{Stream, StreamExt};

use crate::pages::{paged, PageInfo};
use crate::schema;
use crate::{Client, DateTime, Error, Json};

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStatus {
    Created,
    Running,
    AssigningTask,
    AwaitingAgent,
    AwaitingApproval,
    Waiting,
    Compensating,
    Completed,
    Failed,
    Cancelled,
    ContinuedAsNew,
}

impl WorkflowStatus {
    /// Whether the instance has ended (a continued instance ends here and goes on as another).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled | Self::ContinuedAsNew)
    }
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStepState {
    Ready,
    Assigning,
    AwaitingAgent,
    AwaitingApproval,
    Waiting,
    Done,
    Failed,
    Compensating,
    Compensated,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepStatus {
    pub step_id: String,
    pub state: WorkflowStepState,
}

/// An instance's process state.
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowInstance {
    pub id: cynic::Id,
    pub definition_key: String,
    pub definition_version: i32,
    pub status: WorkflowStatus,
    /// Events in its history: the state's position, which only grows.
    pub version: i32,
    pub last_event_type: String,
    pub steps: Vec<WorkflowStepStatus>,
    pub started_at: DateTime,
    pub updated_at: DateTime,
    pub ended_at: Option<DateTime>,
    pub continued_as: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowEvent {
    pub version: i32,
    #[cynic(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Json,
    pub event_id: String,
    pub recorded_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowDefinitionStatus {
    Published,
    Deprecated,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStepType {
    AgentTask,
    Approval,
    Wait,
    Parallel,
    Join,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    pub id: String,
    #[cynic(rename = "type")]
    #[serde(rename = "type")]
    pub step_type: WorkflowStepType,
    pub next: Option<String>,
    pub on_failure: Option<String>,
    pub skill: Option<String>,
    pub skill_version: Option<String>,
    pub pool: Option<String>,
    pub timeout_seconds: Option<i32>,
    pub wait_seconds: Option<i32>,
    pub approver_roles: Option<Vec<String>>,
    pub quorum: Option<i32>,
    pub branches: Option<Vec<String>>,
    pub join: Option<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDefinition {
    pub key: String,
    pub version: i32,
    pub name: String,
    pub description: String,
    pub status: WorkflowDefinitionStatus,
    pub platform: bool,
    pub start: String,
    pub steps: Vec<WorkflowStep>,
    pub content_hash: String,
    pub published_at: DateTime,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryInput {
    pub max_attempts: i32,
    pub initial_backoff_seconds: i32,
    pub max_backoff_seconds: i32,
}

#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepCompensationInput {
    pub skill: String,
    pub pool: Option<String>,
}

/// A step of a definition; [`WorkflowStepInput::wait`] and the like fill in what a kind of step needs.
#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowStepInput {
    pub id: String,
    #[cynic(rename = "type")]
    #[serde(rename = "type")]
    pub step_type: WorkflowStepType,
    pub next: Option<String>,
    pub on_failure: Option<String>,
    pub skill: Option<String>,
    pub skill_version: Option<String>,
    pub pool: Option<String>,
    pub timeout_seconds: Option<i32>,
    pub retry: Option<RetryInput>,
    pub compensation: Option<StepCompensationInput>,
    pub approver_roles: Option<Vec<String>>,
    pub quorum: Option<i32>,
    pub approval_ttl_hours: Option<i32>,
    pub wait_seconds: Option<i32>,
    pub branches: Option<Vec<String>>,
    pub join: Option<String>,
}

impl WorkflowStepInput {
    /// A step of `step_type` with nothing else set.
    pub fn new(id: &str, step_type: WorkflowStepType) -> Self {
        Self {
            id: id.into(),
            step_type,
            next: None,
            on_failure: None,
            skill: None,
            skill_version: None,
            pool: None,
            timeout_seconds: None,
            retry: None,
            compensation: None,
            approver_roles: None,
            quorum: None,
            approval_ttl_hours: None,
            wait_seconds: None,
            branches: None,
            join: None,
        }
    }

    /// A step that waits `seconds`.
    pub fn wait(id: &str, seconds: i32) -> Self {
        Self { wait_seconds: Some(seconds), ..Self::new(id, WorkflowStepType::Wait) }
    }

    /// A step that waits for approval by `quorum` holders of `roles`.
    pub fn approval(id: &str, roles: &[&str], quorum: i32) -> Self {
        let roles = Some(roles.iter().map(|r| (*r).to_owned()).collect());
        Self { approver_roles: roles, quorum: Some(quorum), ..Self::new(id, WorkflowStepType::Approval) }
    }

    /// An agent task of `skill` for an agent of `pool`.
    pub fn agent_task(id: &str, skill: &str, pool: &str) -> Self {
        Self { skill: Some(skill.into()), pool: Some(pool.into()), ..Self::new(id, WorkflowStepType::AgentTask) }
    }

    /// The step to go on to after this one.
    pub fn then(self, next: &str) -> Self {
        Self { next: Some(next.into()), ..self }
    }
}

/// A definition to publish. It also reads from JSON with the API's field names (`cpctl definition publish
/// --file` takes such a file), its steps' kinds as the API writes them (`AGENT_TASK`).
#[derive(cynic::InputObject, serde::Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishWorkflowDefinitionInput {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub start: String,
    pub steps: Vec<WorkflowStepInput>,
    pub continue_as_new_after: Option<i32>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct StartWorkflowInput {
    pub definition_key: String,
    pub version: Option<i32>,
    pub platform: bool,
    pub project_id: Option<cynic::Id>,
    pub input: Option<Json>,
}

impl StartWorkflowInput {
    /// The tenant's latest published version of `definition_key`, with no input.
    pub fn new(definition_key: &str) -> Self {
        Self { definition_key: definition_key.into(), version: None, platform: false, project_id: None, input: None }
    }
}

/// An event of the tenant's workflows, as `workflowEvents` streams it.
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowLiveEvent {
    pub event_id: String,
    pub event_type: String,
    pub instance_id: Option<cynic::Id>,
    pub occurred_at: DateTime,
    pub payload: Json,
}

#[derive(cynic::QueryVariables, Debug)]
struct PublishVars {
    input: PublishWorkflowDefinitionInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "PublishVars")]
struct Publish {
    #[arguments(input: $input)]
    publish_workflow_definition: WorkflowDefinition,
}

#[derive(cynic::QueryVariables, Debug)]
struct DefinitionsVars {
    first: Option<i32>,
    after: Option<String>,
    platform: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "DefinitionsVars")]
struct Definitions {
    #[arguments(first: $first, after: $after, platform: $platform)]
    workflow_definitions: WorkflowDefinitionConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct WorkflowDefinitionConnection {
    nodes: Vec<WorkflowDefinition>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct DefinitionVars {
    key: String,
    version: Option<i32>,
    platform: bool,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "DefinitionVars")]
struct DefinitionQuery {
    #[arguments(key: $key, version: $version, platform: $platform)]
    workflow_definition: Option<WorkflowDefinition>,
}

#[derive(cynic::QueryVariables, Debug)]
struct StartVars {
    input: StartWorkflowInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "StartVars")]
struct Start {
    #[arguments(input: $input)]
    start_workflow: WorkflowInstance,
}

#[derive(cynic::QueryVariables, Debug)]
struct IdVars {
    id: cynic::Id,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "IdVars")]
struct InstanceQuery {
    #[arguments(id: $id)]
    workflow_instance: Option<WorkflowInstance>,
}

#[derive(cynic::QueryVariables, Debug)]
struct HistoryVars {
    id: cynic::Id,
    after: i32,
    first: Option<i32>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "WorkflowInstance", variables = "HistoryVars")]
struct InstanceHistory {
    #[arguments(after: $after, first: $first)]
    history: Vec<WorkflowEvent>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "HistoryVars")]
struct History {
    #[arguments(id: $id)]
    workflow_instance: Option<InstanceHistory>,
}

#[derive(cynic::QueryVariables, Debug)]
struct InstancesVars {
    first: Option<i32>,
    after: Option<String>,
    status: Option<WorkflowStatus>,
    project_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "InstancesVars")]
struct Instances {
    #[arguments(first: $first, after: $after, status: $status, projectId: $project_id)]
    workflow_instances: WorkflowInstanceConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct WorkflowInstanceConnection {
    nodes: Vec<WorkflowInstance>,
    page_info: PageInfo,
}

#[derive(cynic::QueryVariables, Debug)]
struct CancelVars {
    instance_id: cynic::Id,
    reason: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CancelVars")]
struct Cancel {
    #[arguments(instanceId: $instance_id, reason: $reason)]
    cancel_workflow: WorkflowInstance,
}

#[derive(cynic::QueryVariables, Debug)]
struct WatchVars {
    instance_id: cynic::Id,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Subscription", variables = "WatchVars")]
struct Watch {
    #[arguments(instanceId: $instance_id)]
    process_state: WorkflowInstance,
}

#[derive(cynic::QueryVariables, Debug)]
struct EventsVars {
    instance_id: Option<cynic::Id>,
    event_types: Option<Vec<String>>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Subscription", variables = "EventsVars")]
struct Events {
    #[arguments(instanceId: $instance_id, eventTypes: $event_types)]
    workflow_events: WorkflowLiveEvent,
}

impl Client {
    /// Publishes a definition's next version (checked: every step reachable, a loop holds a wait, …).
    pub async fn publish_workflow_definition(
        &self,
        input: PublishWorkflowDefinitionInput,
    ) -> Result<WorkflowDefinition, Error> {
        Ok(self.run(Publish::build(PublishVars { input })).await?.publish_workflow_definition)
    }

    /// The tenant's definitions (or the platform registry's).
    pub fn workflow_definitions(
        &self,
        platform: bool,
        per_page: i32,
    ) -> impl Stream<Item = Result<WorkflowDefinition, Error>> + '_ {
        paged(
            self,
            move |after| Definitions::build(DefinitionsVars { first: Some(per_page), after, platform }),
            |q| (q.workflow_definitions.nodes, q.workflow_definitions.page_info),
        )
    }

    /// One definition: a version, or the latest published.
    pub async fn workflow_definition(
        &self,
        key: &str,
        version: Option<i32>,
        platform: bool,
    ) -> Result<Option<WorkflowDefinition>, Error> {
        let op = DefinitionQuery::build(DefinitionVars { key: key.into(), version, platform });
        Ok(self.run(op).await?.workflow_definition)
    }

    /// Starts an instance. Not retried: a repeat would start a second one.
    pub async fn start_workflow(&self, input: StartWorkflowInput) -> Result<WorkflowInstance, Error> {
        Ok(self.run(Start::build(StartVars { input })).await?.start_workflow)
    }

    /// An instance's process state (none when there is no such instance of the tenant's).
    pub async fn workflow_instance(&self, id: cynic::Id) -> Result<Option<WorkflowInstance>, Error> {
        Ok(self.run(InstanceQuery::build(IdVars { id })).await?.workflow_instance)
    }

    /// An instance's history after event `after`, oldest first, at most `first` (1–500).
    pub async fn workflow_history(&self, id: cynic::Id, after: i32, first: i32) -> Result<Vec<WorkflowEvent>, Error> {
        let op = History::build(HistoryVars { id, after, first: Some(first) });
        Ok(self.run(op).await?.workflow_instance.map(|i| i.history).unwrap_or_default())
    }

    /// The tenant's instances (of one status, of one project, when given), newest first.
    pub fn workflow_instances(
        &self,
        status: Option<WorkflowStatus>,
        project_id: Option<cynic::Id>,
        per_page: i32,
    ) -> impl Stream<Item = Result<WorkflowInstance, Error>> + '_ {
        paged(
            self,
            move |after| {
                Instances::build(InstancesVars { first: Some(per_page), after, status, project_id: project_id.clone() })
            },
            |q| (q.workflow_instances.nodes, q.workflow_instances.page_info),
        )
    }

    /// Cancels an instance (its completed steps are compensated).
    pub async fn cancel_workflow(&self, instance_id: cynic::Id, reason: &str) -> Result<WorkflowInstance, Error> {
        Ok(self.run(Cancel::build(CancelVars { instance_id, reason: reason.into() })).await?.cancel_workflow)
    }

    /// An instance's process state now, then after each transition, ending after its final state. It
    /// survives dropped connections without losing its place: the subscription answers a resubscription
    /// with the state as it is then, and states the consumer has already seen (by version) are skipped.
    pub fn watch_workflow(
        &self,
        instance_id: cynic::Id,
    ) -> impl Stream<Item = Result<WorkflowInstance, Error>> + Send + 'static {
        let states = self.subscribe(
            move || Watch::build(WatchVars { instance_id: instance_id.clone() }),
            |s: &Watch| s.process_state.status.is_final(),
        );
        let mut seen = -1;
        states.filter_map(move |s| {
            let fresh = match s {
                Ok(Watch { process_state }) if process_state.version <= seen => None,
                Ok(Watch { process_state }) => {
                    seen = process_state.version;
                    Some(Ok(process_state))
                }
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(fresh)
        })
    }

    /// The tenant's workflow events as they are published (of one instance, of `event_types` when not
    /// empty). Reconnects when the connection drops; events published while it was down are not
    /// replayed, and none is yielded twice.
    pub fn workflow_events(
        &self,
        instance_id: Option<cynic::Id>,
        event_types: Vec<String>,
    ) -> impl Stream<Item = Result<WorkflowLiveEvent, Error>> + Send + 'static {
        let types = (!event_types.is_empty()).then_some(event_types);
        let events = self.subscribe(
            move || Events::build(EventsVars { instance_id: instance_id.clone(), event_types: types.clone() }),
            |_| false,
        );
        crate::live::once_each(events, |e| e.workflow_events, |e| &e.event_id)
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
