//! Blueprints' share of the roots, `Project.blueprints` and `Project.contextMap`, and the blueprint loaders.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Json, Object, ID};
use chrono::{DateTime, Utc};
use kernel::error::LoadError;
use kernel::{Error, Result, Work};
use serde_json::Value;

use super::{
    store, Aggregate, Blueprint, BlueprintVersion, BoundedContext, ContextMap, ContextMapSource, ContextRelationship,
    NewBlueprint, RelationshipKind, ValidationResult, ValidationRun,
};
use crate::ids::{BlueprintId, ProjectId, ValidationRunId};
use crate::loaders::{loader, CatalogueLoader};
use crate::projects::Project;

/// A blueprint by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlueprintById(pub BlueprintId);

impl Loader<BlueprintById> for CatalogueLoader {
    type Value = Blueprint;
    type Error = LoadError;

    async fn load(&self, keys: &[BlueprintById]) -> Result<HashMap<BlueprintById, Blueprint>, LoadError> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::by_ids(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|b| (BlueprintById(b.blueprint_id), b)).collect())
    }
}

/// The blueprints of a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlueprintsOf(pub ProjectId);

impl Loader<BlueprintsOf> for CatalogueLoader {
    type Value = Vec<Blueprint>;
    type Error = LoadError;

    async fn load(&self, keys: &[BlueprintsOf]) -> Result<HashMap<BlueprintsOf, Vec<Blueprint>>, LoadError> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::of_projects(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        let mut out: HashMap<BlueprintsOf, Vec<Blueprint>> = HashMap::new();
        for b in rows {
            out.entry(BlueprintsOf(b.project_id)).or_default().push(b);
        }
        Ok(out)
    }
}

/// The versions of a blueprint, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionsOf(pub BlueprintId);

impl Loader<VersionsOf> for CatalogueLoader {
    type Value = Vec<BlueprintVersion>;
    type Error = LoadError;

    async fn load(&self, keys: &[VersionsOf]) -> Result<HashMap<VersionsOf, Vec<BlueprintVersion>>, LoadError> {
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::versions_of(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        let mut out: HashMap<VersionsOf, Vec<BlueprintVersion>> = HashMap::new();
        for v in rows {
            out.entry(VersionsOf(v.blueprint_id)).or_default().push(v);
        }
        Ok(out)
    }
}

/// Up to `limit` validation runs of one version, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunsOf {
    pub blueprint: BlueprintId,
    pub version: i32,
    pub limit: i64,
}

impl Loader<RunsOf> for CatalogueLoader {
    type Value = Vec<ValidationRun>;
    type Error = LoadError;

    async fn load(&self, keys: &[RunsOf]) -> Result<HashMap<RunsOf, Vec<ValidationRun>>, LoadError> {
        // One statement per distinct page size (normally one).
        let mut by_limit: HashMap<i64, Vec<&RunsOf>> = HashMap::new();
        for k in keys {
            by_limit.entry(k.limit).or_default().push(k);
        }
        let mut tx = self.begin().await?;
        let mut out: HashMap<RunsOf, Vec<ValidationRun>> = HashMap::new();
        for (limit, ks) in by_limit {
            let blueprints: Vec<BlueprintId> = ks.iter().map(|k| k.blueprint).collect();
            let versions: Vec<i32> = ks.iter().map(|k| k.version).collect();
            for r in store::runs_of(&mut tx, self.scope().as_deref(), &blueprints, &versions, limit).await? {
                out.entry(RunsOf { blueprint: r.blueprint_id, version: r.version, limit }).or_default().push(r);
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// The findings of one run (its id and timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResultsOf(pub ValidationRunId, pub DateTime<Utc>);

impl Loader<ResultsOf> for CatalogueLoader {
    type Value = Vec<ValidationResult>;
    type Error = LoadError;

    async fn load(&self, keys: &[ResultsOf]) -> Result<HashMap<ResultsOf, Vec<ValidationResult>>, LoadError> {
        let runs: Vec<ValidationRunId> = keys.iter().map(|k| k.0).collect();
        let at: Vec<DateTime<Utc>> = keys.iter().map(|k| k.1).collect();
        let when: HashMap<ValidationRunId, DateTime<Utc>> = keys.iter().map(|k| (k.0, k.1)).collect();
        let mut tx = self.begin().await?;
        let rows = store::results_of(&mut tx, self.scope().as_deref(), &runs, &at).await?;
        tx.commit().await?;
        let mut out: HashMap<ResultsOf, Vec<ValidationResult>> = HashMap::new();
        for r in rows {
            let Some(recorded) = when.get(&r.run_id) else { continue };
            out.entry(ResultsOf(r.run_id, *recorded)).or_default().push(ValidationResult {
                rule: r.rule,
                severity: r.severity,
                message: r.message,
                location: r.location,
            });
        }
        Ok(out)
    }
}

/// The projected context map of a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextMapOf(pub ProjectId);

impl Loader<ContextMapOf> for CatalogueLoader {
    type Value = ContextMap;
    type Error = LoadError;

    async fn load(&self, keys: &[ContextMapOf]) -> Result<HashMap<ContextMapOf, ContextMap>, LoadError> {
        #[derive(serde::Deserialize)]
        struct Ctx {
            name: String,
            modules: Vec<String>,
            aggregates: Vec<Agg>,
        }
        #[derive(serde::Deserialize)]
        struct Agg {
            name: String,
            entities: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Rel {
            upstream: String,
            downstream: String,
            kind: String,
        }
        let ids: Vec<_> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::context_maps_of(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        let mut out: HashMap<ContextMapOf, ContextMap> = HashMap::new();
        for row in rows {
            let blueprint_id = ID(row.blueprint_id.to_string());
            let contexts: Vec<Ctx> = serde_json::from_value(row.contexts).map_err(Error::internal)?;
            let relationships: Vec<Rel> = serde_json::from_value(row.relationships).map_err(Error::internal)?;
            let map = out.entry(ContextMapOf(row.project_id)).or_default();
            map.sources.push(ContextMapSource {
                blueprint_id: blueprint_id.clone(),
                version: row.version,
                projected_at: row.projected_at,
            });
            map.contexts.extend(contexts.into_iter().map(|c| BoundedContext {
                blueprint_id: blueprint_id.clone(),
                name: c.name,
                modules: c.modules,
                aggregates:
                    c.aggregates.into_iter().map(|a| Aggregate { name: a.name, entities: a.entities }).collect(),
            }));
            for r in relationships {
                let kind = RelationshipKind::parse(&r.kind)
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown relationship kind {:?}", r.kind)))?;
                map.relationships.push(ContextRelationship {
                    blueprint_id: blueprint_id.clone(),
                    upstream: r.upstream,
                    downstream: r.downstream,
                    kind,
                });
            }
        }
        Ok(out)
    }
}

/// `Project.blueprints`.
pub async fn of_project(ctx: &Context<'_>, project: &Project) -> Result<Vec<Blueprint>> {
    Ok(loader(ctx)?.load_one(BlueprintsOf(project.project_id)).await?.unwrap_or_default())
}

/// `Project.contextMap`.
pub async fn context_map_of(ctx: &Context<'_>, project: &Project) -> Result<ContextMap> {
    Ok(loader(ctx)?.load_one(ContextMapOf(project.project_id)).await?.unwrap_or_default())
}

/// `Blueprint.versions` and the fields picking one of them.
pub async fn versions_of(ctx: &Context<'_>, blueprint: BlueprintId) -> Result<Vec<BlueprintVersion>> {
    Ok(loader(ctx)?.load_one(VersionsOf(blueprint)).await?.unwrap_or_default())
}

/// `BlueprintVersion.validationRuns`.
pub async fn runs_of(ctx: &Context<'_>, v: &BlueprintVersion, last: Option<i32>) -> Result<Vec<ValidationRun>> {
    let last = last.unwrap_or(20);
    if !(1..=100).contains(&last) {
        return Err(Error::bad_input("last", "last must be between 1 and 100"));
    }
    let key = RunsOf { blueprint: v.blueprint_id, version: v.version, limit: i64::from(last) };
    Ok(loader(ctx)?.load_one(key).await?.unwrap_or_default())
}

/// `ValidationRun.results` of a stored run.
pub async fn results_of(ctx: &Context<'_>, run: &ValidationRun) -> Result<Vec<ValidationResult>> {
    Ok(loader(ctx)?.load_one(ResultsOf(run.run_id, run.recorded_at)).await?.unwrap_or_default())
}

/// A blueprint the caller may see, or `NOT_FOUND` — also for another tenant's id.
pub async fn visible(ctx: &Context<'_>, id: &str) -> Result<Blueprint> {
    let id = BlueprintId::parse("id", id)?;
    loader(ctx)?.load_one(BlueprintById(id)).await?.ok_or_else(|| Error::not_found(format!("no blueprint `{id}`")))
}

#[derive(Default)]
pub struct BlueprintQuery;

#[Object]
impl BlueprintQuery {
    /// A blueprint by id.
    async fn blueprint(&self, ctx: &Context<'_>, id: ID) -> Result<Blueprint> {
        ctx.authorize(READ)?;
        visible(ctx, &id).await
    }
}

#[derive(Default)]
pub struct BlueprintMutation;

#[Object]
impl BlueprintMutation {
    /// Creates a blueprint in a project (names are unique within a project; `CONFLICT` otherwise). Emits
    /// `BlueprintCreated`.
    async fn create_blueprint(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: String,
        #[graphql(default)] description: String,
    ) -> Result<Blueprint> {
        let tenant = ctx.authorize(WRITE)?;
        let project_id = ProjectId::parse("projectId", &project_id)?;
        let b = NewBlueprint::parse(project_id, &name, &description)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let blueprint = super::create(&mut work, &tenant, &b).await?;
        work.commit().await?;
        Ok(blueprint)
    }

    /// Drafts a version: replaces the definition of the blueprint's draft, or creates the next version as a
    /// draft when there is none (a blueprint has at most one draft). `definition` is a JSON object of at
    /// most 256 KiB (`BAD_USER_INPUT` otherwise): `{modules: [name], dependencies: [{from, to,
    /// versionConstraint}], agents: [key], skills: [key], contexts: [{name, modules: [name], aggregates:
    /// [{name, entities: [name]}]}], relationships: [{upstream, downstream, kind}]}`, every key optional;
    /// validation reports anything else wrong with it. `version`, if given, must be the draft's number:
    /// naming a validated (immutable) version is `CONFLICT`. Emits `BlueprintVersionDrafted`.
    async fn draft_blueprint_version(
        &self,
        ctx: &Context<'_>,
        blueprint_id: ID,
        definition: Json<Value>,
        version: Option<i32>,
    ) -> Result<BlueprintVersion> {
        let tenant = ctx.authorize(WRITE)?;
        let id = BlueprintId::parse("blueprintId", &blueprint_id)?;
        let definition = super::definition(definition.0)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let v = super::draft(&mut work, &tenant, id, version, &definition).await?;
        work.commit().await?;
        Ok(v)
    }

    /// Runs the validation rules over a draft version and records each finding. Without an `ERROR` the
    /// version becomes `VALIDATED` (immutable; the previously validated version becomes `SUPERSEDED`) and
    /// the project's context map is rebuilt from it. `CONFLICT` if the version is not a draft. Emits
    /// `BlueprintValidationCompleted`, and `BlueprintVersionValidated` when the run validated it.
    async fn validate_blueprint(&self, ctx: &Context<'_>, blueprint_id: ID, version: i32) -> Result<ValidationRun> {
        let tenant = ctx.authorize(WRITE)?;
        let id = BlueprintId::parse("blueprintId", &blueprint_id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let run = super::validate(&mut work, &tenant, id, version).await?;
        work.commit().await?;
        Ok(run)
    }
}
