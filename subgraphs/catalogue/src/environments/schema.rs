//! Environments' share of the roots, and `Project.environments`.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Json, Object, SimpleObject, ID};
use kernel::error::LoadError;
use kernel::{Error, Result, Work};
use serde_json::Value;

use super::{cache, store, Environment, EnvironmentChange, EnvironmentName, Requested};
use crate::ids::ProjectId;
use crate::loaders::{loader, CatalogueLoader};
use crate::projects::{self, Project};

/// The environments of a project, in dev, test, staging, prod order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnvironmentsOf(pub ProjectId);

impl Loader<EnvironmentsOf> for CatalogueLoader {
    type Value = Vec<Environment>;
    type Error = LoadError;

    async fn load(&self, keys: &[EnvironmentsOf]) -> Result<HashMap<EnvironmentsOf, Vec<Environment>>, LoadError> {
        let ids: Vec<ProjectId> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::of_projects(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        let mut out: HashMap<EnvironmentsOf, Vec<Environment>> = HashMap::new();
        for e in rows {
            out.entry(EnvironmentsOf(e.project_id)).or_default().push(e);
        }
        Ok(out)
    }
}

/// `Project.environments`.
pub async fn of_project(ctx: &Context<'_>, project: &Project) -> Result<Vec<Environment>> {
    Ok(loader(ctx)?.load_one(EnvironmentsOf(project.project_id)).await?.unwrap_or_default())
}

/// What `changeEnvironment` did.
#[derive(SimpleObject)]
pub struct EnvironmentChangeResult {
    /// The recorded change: `APPLIED`, or `PENDING` for prod until governance decides.
    pub change: EnvironmentChange,
    /// The environment as it is now (unchanged while the change is pending).
    pub environment: Environment,
}

#[derive(Default)]
pub struct EnvironmentQuery;

#[Object]
impl EnvironmentQuery {
    /// One environment of a project (served from the cache when it can be).
    async fn environment(&self, ctx: &Context<'_>, project_id: ID, name: EnvironmentName) -> Result<Environment> {
        let tenant = ctx.authorize(READ)?;
        let project_id = ProjectId::parse("projectId", &project_id)?;
        cache::get(state(ctx), &tenant, project_id, name)
            .await?
            .ok_or_else(|| Error::not_found(format!("no project `{project_id}`")))
    }

    /// The changes of one environment, newest first (at most `last`, default 20, up to 100).
    async fn environment_changes(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: EnvironmentName,
        last: Option<i32>,
    ) -> Result<Vec<EnvironmentChange>> {
        let tenant = ctx.authorize(READ)?;
        let project_id = projects::schema::visible(ctx, &project_id).await?.project_id;
        let last = last.unwrap_or(20);
        if !(1..=100).contains(&last) {
            return Err(Error::bad_input("last", "last must be between 1 and 100"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::changes_of(&mut tx, &tenant, project_id, name, i64::from(last)).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

#[derive(Default)]
pub struct EnvironmentMutation;

#[Object]
impl EnvironmentMutation {
    /// Sets an environment's configuration (a JSON object; secrets only as `configRef`s). Outside prod it
    /// applies at once (`EnvironmentChanged`); in prod it waits for an approval (`EnvironmentChangeRequested`
    /// and a `RequestApproval` command to governance), and is applied when `ApprovalGranted` arrives.
    async fn change_environment(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: EnvironmentName,
        config: Json<Value>,
        #[graphql(default)] reason: String,
    ) -> Result<EnvironmentChangeResult> {
        let tenant = ctx.authorize(WRITE)?;
        let project_id = ProjectId::parse("projectId", &project_id)?;
        let config = super::config(config.0)?;
        let reason = reason.trim();
        if reason.chars().count() > 1000 {
            return Err(Error::bad_input("reason", "reason must be at most 1000 characters"));
        }
        let st = state(ctx);
        let mut work = Work::tenant(&st.kernel.db, &tenant, ctx.event_meta()).await?;
        projects::writable(&mut work, &tenant, project_id).await?;
        let who = ctx.principal().to_owned();
        let req = super::ChangeRequest { project_id, env: name, config, reason, requested_by: &who };
        let outcome = super::request_change(&mut work, &st.config, &tenant, req).await?;
        work.commit().await?;
        Ok(match outcome {
            Requested::Applied(environment, change) => {
                cache::forget(st, &tenant, project_id, name).await;
                EnvironmentChangeResult { change, environment }
            }
            Requested::Pending(environment, change) => EnvironmentChangeResult { change, environment },
        })
    }
}
