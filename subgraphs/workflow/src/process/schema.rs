//! Instances in the API: their state, steps, tasks and history.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Json, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::pagination::Page;
use kernel::permissions::workflow::READ;
use kernel::{Authorize, Error, Result};
use serde_json::Value;

use super::{store, ProcessState, Status, StepState};
use crate::agents::store::{self as tasks, TaskRow};
use crate::events::{WorkflowContinuedAsNew, WorkflowInstanceStarted};
use crate::history::{self, Recorded, HISTORY_LIMIT};
use crate::ids::{InstanceId, ProjectId};
use crate::state;

/// One step's state in an instance.
#[derive(SimpleObject)]
#[graphql(name = "WorkflowStepStatus")]
pub struct StepStatus {
    pub step_id: String,
    pub state: StepState,
}

/// One event of an instance's history.
#[derive(SimpleObject)]
#[graphql(name = "WorkflowEvent")]
pub struct EventView {
    /// Its place in the instance's history, from 1.
    pub version: i64,
    pub event_id: String,
    #[graphql(name = "type")]
    pub event_type: String,
    /// The payload, as it left in the event's envelope.
    pub data: Json<Value>,
    pub recorded_at: DateTime<Utc>,
}

impl From<Recorded> for EventView {
    fn from(e: Recorded) -> Self {
        Self {
            version: e.version,
            event_id: e.event_id,
            event_type: e.event_type,
            data: Json(e.data),
            recorded_at: e.recorded_at,
        }
    }
}

/// A workflow instance's process state.
#[Object(name = "WorkflowInstance")]
impl ProcessState {
    async fn id(&self) -> ID {
        ID(self.instance_id.to_string())
    }
    async fn definition_key(&self) -> &str {
        &self.definition_key
    }
    async fn definition_version(&self) -> i32 {
        self.definition_version
    }
    async fn status(&self) -> Status {
        self.status
    }
    /// Each step that has run, by id.
    async fn steps(&self) -> Vec<StepStatus> {
        self.steps.iter().map(|(id, s)| StepStatus { step_id: id.clone(), state: *s }).collect()
    }
    /// Events in its history.
    async fn version(&self) -> i64 {
        self.version
    }
    async fn last_event_type(&self) -> &str {
        &self.last_event_type
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.ended_at
    }
    /// The instance it went on as, once its history grew long (status `CONTINUED_AS_NEW`).
    async fn continued_as(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        if self.status != Status::ContinuedAsNew {
            return Ok(None);
        }
        let last = self.event_at(ctx, self.version).await?;
        Ok(last.and_then(|e| e.payload::<WorkflowContinuedAsNew>()).map(|c| ID(c.next_instance_id.to_string())))
    }
    /// The instance this one continues (it started where that one's history grew long), if any.
    async fn continued_from(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let first = self.event_at(ctx, 1).await?;
        Ok(first.and_then(|e| e.payload::<WorkflowInstanceStarted>()?.continued_from).map(|i| ID(i.to_string())))
    }
    /// Its agent tasks (compensations included), oldest first.
    async fn tasks(&self, ctx: &Context<'_>) -> Result<Vec<TaskRow>> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = tasks::of_instance(&mut tx, tenant.tenant(), self.instance_id).await?;
        tx.commit().await?;
        Ok(rows)
    }
    /// Its history after version `after`, oldest first, at most `first` (1 to 500, default 100).
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] after: i64,
        first: Option<i32>,
    ) -> Result<Vec<EventView>> {
        let tenant = ctx.authorize(READ)?;
        let limit = i64::from(first.unwrap_or(100));
        if !(1..=500).contains(&limit) {
            return Err(Error::bad_input("first", "`first` is 1 to 500"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let events = history::store::read(&mut tx, tenant.tenant(), self.instance_id, after.max(0), limit).await?;
        tx.commit().await?;
        Ok(events.into_iter().map(EventView::from).collect())
    }
}

impl ProcessState {
    /// The event at `version` of its history.
    async fn event_at(&self, ctx: &Context<'_>, version: i64) -> Result<Option<Recorded>> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let mut events = history::store::read(&mut tx, tenant.tenant(), self.instance_id, version - 1, 1).await?;
        tx.commit().await?;
        Ok(events.pop())
    }
}

/// Catalogue's project, with the workflows that run for it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Project {
    pub id: ID,
}

#[ComplexObject]
impl Project {
    /// The project's workflow instances (those in `status` only, when given), most recently changed first.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn workflows(
        &self,
        ctx: &Context<'_>,
        status: Option<Status>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ProcessState>> {
        let project = ProjectId::from_id("id", &self.id)?;
        instances(ctx, Some(project), status, first, after).await
    }
}

/// A page of the caller's tenant's instances, from the projection.
async fn instances(
    ctx: &Context<'_>,
    project: Option<ProjectId>,
    status: Option<Status>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, ProcessState>> {
    let tenant = ctx.authorize(READ)?;
    let page = Page::forward(after, first, 20)?;
    let cursor = page.after.as_deref().map(store::Cursor::parse).transpose()?;
    let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
    let rows = store::page(&mut tx, tenant.tenant(), project, status, cursor, page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(page.connection(rows, |s| store::Cursor::of(s).to_string()))
}

/// An instance as its history leaves it now (its events folded: never behind).
async fn instance(ctx: &Context<'_>, id: &ID) -> Result<Option<ProcessState>> {
    let tenant = ctx.authorize(READ)?;
    let instance = InstanceId::from_id("id", id)?;
    let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
    let events = history::store::read(&mut tx, tenant.tenant(), instance, 0, HISTORY_LIMIT).await?;
    tx.commit().await?;
    Ok(events.iter().fold(None, super::apply))
}

#[derive(Default)]
pub struct ProcessQuery;

#[Object]
impl ProcessQuery {
    /// An instance as its history leaves it now (folded from its events: never behind).
    async fn workflow_instance(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ProcessState>> {
        instance(ctx, &id).await
    }

    /// The tenant's instances (of one project, or in one status, when given), most recently changed first —
    /// from the process-state projection, which follows the histories within a fraction of a second.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn workflow_instances(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        status: Option<Status>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ProcessState>> {
        let project = project_id.as_ref().map(|p| ProjectId::from_id("projectId", p)).transpose()?;
        instances(ctx, project, status, first, after).await
    }

    /// Many instances at once, for a dashboard: each from the projection's hot copy in Redis, or from the
    /// table where there is none (within a fraction of a second of their histories); unknown ids are left
    /// out. At most 100.
    async fn process_states(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<ProcessState>> {
        let tenant = ctx.authorize(READ)?;
        if ids.len() > 100 {
            return Err(Error::bad_input("ids", "at most 100 ids"));
        }
        let ids = ids.iter().map(|i| InstanceId::from_id("ids", i)).collect::<Result<Vec<_>>>()?;
        let kernel = &state(ctx).kernel;
        let mut found = super::hot::read(&kernel.cache, tenant.tenant(), &ids).await;
        let missing: Vec<(kernel::TenantId, InstanceId)> =
            ids.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(i, _)| (tenant.tenant().clone(), *i)).collect();
        if !missing.is_empty() {
            let mut tx = kernel.db.tenant_tx(&tenant).await?;
            let rows = store::get_many(&mut tx, &missing).await?;
            tx.commit().await?;
            for (slot, id) in found.iter_mut().zip(&ids) {
                if slot.is_none() {
                    *slot = rows.iter().find(|r| r.instance_id == *id && r.tenant_id == *tenant.tenant()).cloned();
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Resolves `WorkflowInstance` references from other subgraphs (the caller's tenant's only).
    #[graphql(entity)]
    async fn find_workflow_instance_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<ProcessState> {
        instance(ctx, &id).await?.ok_or_else(|| Error::not_found(format!("no workflow instance `{}`", id.as_str())))
    }

    /// Lets the router ask workflow for `Project.workflows`.
    #[graphql(entity)]
    async fn find_project_by_id(&self, id: ID) -> Project {
        Project { id }
    }
}

#[derive(Default)]
pub struct ProcessMutation;

#[Object]
impl ProcessMutation {
    /// Drops the process-state projection — every tenant's rows and hot copies — and builds it again from
    /// the event store; answers how many events it applied. Platform operators only. Reads go on meanwhile
    /// (`workflowInstance` reads the histories; lists show the projection as it fills again).
    async fn rebuild_process_state(&self, ctx: &Context<'_>) -> Result<i64> {
        ctx.authorize_operator()?;
        let applied = super::projector::rebuild(&state(ctx).kernel).await?;
        Ok(i64::try_from(applied).unwrap_or(i64::MAX))
    }
}
