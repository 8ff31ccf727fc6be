//! The dependency graph's share of the roots, and the loader behind `Module.dependencies`/`dependents`.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Object, SimpleObject, ID};
use kernel::error::LoadError;
use kernel::{Error, Result, TenantId, Work};

use super::{store, Dependency, Direction, Reached};
use crate::events;
use crate::ids::ModuleId;
use crate::loaders::{loader, CatalogueLoader};
use crate::modules::{self, Module};
use crate::projects;

/// Deepest a transitive query may go.
pub const MAX_DEPTH: i32 = 50;
/// Most modules a transitive query returns.
pub const MAX_REACHED: i64 = 10_000;

/// The direct edges of (tenant, module) in one direction.
impl Loader<(TenantId, ModuleId, Direction)> for CatalogueLoader {
    type Value = Vec<Dependency>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(TenantId, ModuleId, Direction)],
    ) -> Result<HashMap<(TenantId, ModuleId, Direction), Vec<Dependency>>, LoadError> {
        let mut groups: HashMap<(TenantId, Direction), Vec<ModuleId>> = HashMap::new();
        for (t, m, d) in keys {
            groups.entry((t.clone(), *d)).or_default().push(*m);
        }
        let mut tx = self.begin().await?;
        let mut out: HashMap<(TenantId, ModuleId, Direction), Vec<Dependency>> = HashMap::new();
        for ((tenant, dir), ids) in groups {
            if self.visible(std::iter::once(&tenant)).is_empty() {
                continue;
            }
            for e in store::direct(&mut tx, &tenant, &ids, dir).await? {
                out.entry((tenant.clone(), e.of, dir)).or_default().push(Dependency {
                    other: e.other,
                    version_constraint: e.version_constraint,
                    dependency_version: Some(match dir {
                        Direction::Dependencies => e.other_version,
                        // Seen from the dependency, the constraint is about the module itself.
                        Direction::Dependents => String::new(),
                    }),
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// `Module.dependencies` and `Module.dependents`.
pub async fn direct(ctx: &Context<'_>, module: &Module, dir: Direction) -> Result<Vec<Dependency>> {
    let mut deps = loader(ctx)?.load_one((module.tenant_id.clone(), module.module_id, dir)).await?.unwrap_or_default();
    if dir == Direction::Dependents {
        for d in &mut deps {
            d.dependency_version = Some(module.version.clone());
        }
    }
    Ok(deps)
}

/// A step of a project's build order.
#[derive(SimpleObject)]
pub struct BuildStage {
    /// 0 first; every module of a stage can build in parallel once the earlier stages are built (each is
    /// one more than the highest stage it depends on within the project).
    pub stage: i32,
    pub modules: Vec<Module>,
}

/// What changing a module could break.
#[derive(SimpleObject)]
pub struct ImpactReport {
    pub module: Module,
    /// The version the change would give the module, if one was asked about.
    pub new_version: Option<String>,
    /// Every module that depends on it, directly or not, nearest first.
    pub affected: Vec<Reached>,
    /// Direct dependents whose range does not accept `newVersion`: these break at once.
    pub breaking: Vec<Dependency>,
    /// Whether `affected` stopped at the limit (10,000 modules).
    pub truncated: bool,
}

#[derive(Default)]
pub struct GraphQuery;

async fn reach(
    ctx: &Context<'_>,
    tenant: &TenantId,
    id: ModuleId,
    dir: Direction,
    max_depth: i32,
) -> Result<(Vec<Reached>, bool)> {
    if !(1..=MAX_DEPTH).contains(&max_depth) {
        return Err(Error::bad_input("maxDepth", format!("maxDepth must be between 1 and {MAX_DEPTH}")));
    }
    let mut tx = state(ctx).kernel.db.tenant_tx(tenant).await?;
    let mut rows = store::transitive(&mut tx, tenant, id, dir, max_depth, MAX_REACHED + 1).await?;
    tx.commit().await?;
    let truncated = rows.len() as i64 > MAX_REACHED;
    rows.truncate(MAX_REACHED as usize);
    Ok((super::reached(id, rows), truncated))
}

#[Object]
impl GraphQuery {
    /// Everything a module depends on (`DEPENDENCIES`) or that depends on it (`DEPENDENTS`), directly or
    /// not, up to `maxDepth` edges away (default 10, at most 50), nearest first, with a shortest path to
    /// each; at most 10,000 modules.
    async fn transitive_dependencies(
        &self,
        ctx: &Context<'_>,
        module_id: ID,
        #[graphql(default_with = "Direction::Dependencies")] direction: Direction,
        #[graphql(default = 10)] max_depth: i32,
    ) -> Result<Vec<Reached>> {
        let tenant = ctx.authorize(READ)?;
        let m = modules::schema::visible(ctx, &module_id).await?;
        let reached = reach(ctx, &tenant, m.module_id, direction, max_depth).await?.0;
        kernel::server::charge(ctx, reached.len())?;
        Ok(reached)
    }

    /// A project's modules in build order: stage by stage, each module after everything it depends on in
    /// the project (modules of other projects it depends on are those projects' builds); by name within a
    /// stage.
    async fn build_order(&self, ctx: &Context<'_>, project_id: ID) -> Result<Vec<BuildStage>> {
        let tenant = ctx.authorize(READ)?;
        let project = projects::schema::visible(ctx, &project_id).await?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let (modules, edges) = store::build_order(&mut tx, &tenant, project.project_id).await?;
        tx.commit().await?;
        // Every module costs what a stage's selection does (an upper bound: a stage's own fields counted per
        // module).
        kernel::server::charge(ctx, modules.len())?;
        Ok(super::stages(modules, &edges)
            .into_iter()
            .enumerate()
            .map(|(stage, modules)| BuildStage { stage: stage as i32, modules })
            .collect())
    }

    /// What breaks if a module changes: every module that depends on it (up to `maxDepth`, default 50), and
    /// — given the `newVersion` it would get — the direct dependents whose range would no longer accept it.
    async fn impact_analysis(
        &self,
        ctx: &Context<'_>,
        module_id: ID,
        new_version: Option<String>,
        #[graphql(default = 50)] max_depth: i32,
    ) -> Result<ImpactReport> {
        let tenant = ctx.authorize(READ)?;
        let m = modules::schema::visible(ctx, &module_id).await?;
        let new_version = new_version.map(|v| modules::version(&v)).transpose()?;
        let (affected, truncated) = reach(ctx, &tenant, m.module_id, Direction::Dependents, max_depth).await?;
        let breaking = match &new_version {
            None => Vec::new(),
            Some(v) => direct(ctx, &m, Direction::Dependents)
                .await?
                .into_iter()
                .filter(|d| !super::satisfies(&d.version_constraint, v))
                .collect(),
        };
        kernel::server::charge_within(ctx, &["affected"], affected.len())?;
        kernel::server::charge_within(ctx, &["breaking"], breaking.len())?;
        Ok(ImpactReport { module: m, new_version, affected, breaking, truncated })
    }
}

#[derive(Default)]
pub struct GraphMutation;

#[Object]
impl GraphMutation {
    /// Makes `fromModuleId` depend on `toModuleId` within `versionConstraint` (a semver range such as
    /// `^1.2`). Refused with `CONFLICT` if it would close a cycle, the cycle's modules in
    /// `extensions.cycle`. Emits `DependencyAdded`.
    async fn add_dependency(
        &self,
        ctx: &Context<'_>,
        from_module_id: ID,
        to_module_id: ID,
        version_constraint: String,
    ) -> Result<Dependency> {
        let tenant = ctx.authorize(WRITE)?;
        let from = ModuleId::parse("fromModuleId", &from_module_id)?;
        let to = ModuleId::parse("toModuleId", &to_module_id)?;
        let constraint = super::constraint(&version_constraint)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        // The graph lock first, then the rows: two inserts never hold row locks the other waits for.
        let lock = store::lock_graph(&mut work, &tenant).await?;
        let from_m = modules::writable(&mut work, &tenant, from, false).await?;
        let to_m = modules::store::get(&mut work, &tenant, to)
            .await?
            .ok_or_else(|| Error::not_found(format!("no module `{to}`")))?;
        let edge = super::add(&mut work, &lock, &tenant, &from_m, &to_m, &constraint).await?;
        work.commit().await?;
        Ok(Dependency {
            other: edge.to,
            version_constraint: edge.version_constraint,
            dependency_version: Some(to_m.version),
        })
    }

    /// Removes a dependency. Emits `DependencyRemoved`.
    async fn remove_dependency(&self, ctx: &Context<'_>, from_module_id: ID, to_module_id: ID) -> Result<bool> {
        let tenant = ctx.authorize(WRITE)?;
        let from = ModuleId::parse("fromModuleId", &from_module_id)?;
        let to = ModuleId::parse("toModuleId", &to_module_id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        store::lock_graph(&mut work, &tenant).await?;
        let from_m = modules::writable(&mut work, &tenant, from, false).await?;
        if !store::delete_edge(&mut work, &tenant, from, to).await? {
            return Err(Error::not_found("no such dependency"));
        }
        let event = events::DependencyRemoved { from_module_id: from, to_module_id: to, project_id: from_m.project_id };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(true)
    }
}
