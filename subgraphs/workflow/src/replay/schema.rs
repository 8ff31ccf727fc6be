//! Replay in the API: run an instance's history again through the current saga against a definition
//! version, keep the shadow stream, and read where the code parts from what happened.

use async_graphql::{Context, Json, Object, ID};
use chrono::{DateTime, Utc};
use kernel::permissions::workflow::{READ, WRITE};
use kernel::{Authorize, Error, Result};
use serde_json::Value;

use super::store::{self, Run};
use crate::definitions;
use crate::history::{self, DefinitionRef, HISTORY_LIMIT};
use crate::ids::InstanceId;
use crate::state;

/// A replay of one instance and its shadow stream.
#[Object(name = "WorkflowReplay")]
impl Run {
    async fn id(&self) -> ID {
        ID(self.replay_id.to_string())
    }
    async fn instance_id(&self) -> ID {
        ID(self.instance_id.to_string())
    }
    async fn definition_key(&self) -> &str {
        &self.definition_key
    }
    /// The definition version replayed against.
    async fn definition_version(&self) -> i32 {
        self.definition_version
    }
    /// Decisions the code made as the history records them, before the end or the divergence.
    async fn decisions_checked(&self) -> i32 {
        self.decisions_checked
    }
    /// Whether the code decides as the instance did, all the way.
    async fn matches(&self) -> bool {
        self.diverged_at.is_none()
    }
    /// The history's version where the code parts from it.
    async fn diverged_at(&self) -> Option<i64> {
        self.diverged_at
    }
    /// What the code decides there (`{ type, data }`; null: nothing, where the history has a decision).
    async fn decided(&self) -> Option<Json<Value>> {
        self.decided.as_ref().and_then(|s| serde_json::to_value(&s.0).ok()).map(Json)
    }
    /// What the history holds there (null: its end).
    async fn recorded(&self) -> Option<Json<Value>> {
        self.recorded.as_ref().and_then(|s| serde_json::to_value(&s.0).ok()).map(Json)
    }
    async fn replayed_by(&self) -> &str {
        &self.replayed_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// The shadow stream after version `after`, at most `first` (1 to 500, default 100): each fact as
    /// recorded, each decision as the code made it.
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] after: i64,
        first: Option<i32>,
    ) -> Result<Vec<Json<Value>>> {
        let tenant = ctx.authorize(READ)?;
        let limit = i64::from(first.unwrap_or(100));
        if !(1..=500).contains(&limit) {
            return Err(Error::bad_input("first", "`first` is 1 to 500"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::events(&mut tx, tenant.tenant(), self.replay_id, after.max(0), limit).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(version, s)| Json(serde_json::json!({ "version": version, "type": s.event_type, "data": s.data })))
            .collect())
    }
}

#[derive(Default)]
pub struct ReplayMutation;

#[Object]
impl ReplayMutation {
    /// Replays an instance's history through the current saga code against a version of its definition (the
    /// one it ran, by default; another published version of the same definition when given), keeps the
    /// shadow stream 90 days, and answers where the code parts from what happened. The instance's own
    /// history is never touched.
    async fn replay_workflow(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        definition_version: Option<i32>,
    ) -> Result<Run> {
        let tenant = ctx.authorize(WRITE)?;
        let instance = InstanceId::from_id("instanceId", &instance_id)?;
        let by = ctx.request_context().caller.subject.clone();
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let (_, ran) = history::store::lock(&mut tx, tenant.tenant(), instance)
            .await?
            .ok_or_else(|| Error::not_found(format!("no workflow instance `{instance}`")))?;
        let version = definition_version.unwrap_or(ran.version);
        let d = definitions::store::get(&mut tx, &ran.tenant, &ran.key, version).await?.ok_or_else(|| {
            Error::not_found(format!("workflow definition `{}` has no version {version}", ran.key))
                .with("definitionVersion", version)
        })?;
        let events = history::store::read(&mut tx, tenant.tenant(), instance, 0, HISTORY_LIMIT).await?;
        let (shadow, outcome) = super::shadow(&d.spec, &events);
        let (checked, divergence) = match &outcome {
            Ok(n) => (*n, None),
            Err(d) => (0, Some(d.as_ref())),
        };
        let checked = if divergence.is_some() {
            // The decisions before the divergence all matched.
            shadow.iter().filter(|s| super::is_decision(&s.event_type)).count().saturating_sub(1)
        } else {
            checked
        };
        let against = DefinitionRef { tenant: ran.tenant.clone(), key: ran.key.clone(), version };
        let run = store::insert(
            &mut tx,
            tenant.tenant(),
            uuid::Uuid::now_v7(),
            instance,
            &against,
            checked,
            divergence,
            &by,
            &shadow,
        )
        .await?;
        tx.commit().await?;
        Ok(run)
    }
}
