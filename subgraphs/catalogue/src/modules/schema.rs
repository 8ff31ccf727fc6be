//! Modules' share of the roots, `Project.modules`, and the module loaders.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::dataloader::Loader;
use async_graphql::{Context, InputObject, Json, Object, ID};
use kernel::error::LoadError;
use kernel::pagination::Page;
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use super::filter::{Compiled, ModuleFilter};
use super::{store, Module};
use crate::events;
use crate::ids::{ModuleId, ProjectId};
use crate::loaders::{loader, CatalogueLoader};
use crate::projects::{self, Project};

fn cursor(m: &Module) -> String {
    format!("{}:{}", m.module_id, m.name)
}

fn parse_cursor(after: Option<&str>) -> Result<Option<(String, ModuleId)>> {
    let Some(c) = after else { return Ok(None) };
    let (id, name) = c.split_once(':').ok_or_else(|| Error::bad_input("after", "not a module cursor"))?;
    let id = ModuleId::parse("after", id).map_err(|_| Error::bad_input("after", "not a module cursor"))?;
    Ok(Some((name.to_owned(), id)))
}

/// Compiles a filter and refuses metadata paths no module of the tenant has. The check goes through the
/// request's loader, so a filter repeated under every project of a nested query costs one statement.
async fn compile(ctx: &Context<'_>, tenant: &TenantId, filter: Option<ModuleFilter>) -> Result<Compiled> {
    let f = filter.unwrap_or_default().compile()?;
    if !f.paths.is_empty() {
        let keys = f.paths.iter().map(|p| KnownPath(tenant.clone(), p.clone()));
        let known = loader(ctx)?.load_many(keys).await?;
        if let Some(first) = f.paths.iter().find(|p| !known.contains_key(&KnownPath(tenant.clone(), (*p).clone()))) {
            return Err(Error::bad_input(
                "filter.metadataEquals.path",
                format!("no module has metadata at path {first}; check the spelling"),
            ));
        }
    }
    Ok(f)
}

/// A metadata path some module of the tenant has had (JSON array text); loaded only if known.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KnownPath(pub TenantId, pub String);

impl Loader<KnownPath> for CatalogueLoader {
    type Value = ();
    type Error = LoadError;

    async fn load(&self, keys: &[KnownPath]) -> Result<HashMap<KnownPath, ()>, LoadError> {
        let mut by_tenant: HashMap<TenantId, Vec<String>> = HashMap::new();
        for k in keys {
            by_tenant.entry(k.0.clone()).or_default().push(k.1.clone());
        }
        let mut tx = self.begin().await?;
        let mut out = HashMap::new();
        for (tenant, paths) in by_tenant {
            if self.visible(std::iter::once(&tenant)).is_empty() {
                continue;
            }
            for p in store::known_paths(&mut tx, &tenant, &paths).await? {
                out.insert(KnownPath(tenant.clone(), p), ());
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A module by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModuleById(pub ModuleId);

impl Loader<ModuleById> for CatalogueLoader {
    type Value = Module;
    type Error = LoadError;

    async fn load(&self, keys: &[ModuleById]) -> Result<HashMap<ModuleById, Module>, LoadError> {
        let ids: Vec<ModuleId> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::by_ids(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|m| (ModuleById(m.module_id), m)).collect())
    }
}

/// A page of one project's modules under one filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModulesOf {
    pub project: ProjectId,
    pub filter: Compiled,
    pub after: Option<(String, ModuleId)>,
    pub limit: i64,
}

impl Loader<ModulesOf> for CatalogueLoader {
    type Value = Vec<Module>;
    type Error = LoadError;

    async fn load(&self, keys: &[ModulesOf]) -> Result<HashMap<ModulesOf, Vec<Module>>, LoadError> {
        // One statement per distinct page shape (normally one).
        type Shape = (Compiled, Option<(String, ModuleId)>, i64);
        let mut shapes: HashMap<Shape, Vec<&ModulesOf>> = HashMap::new();
        for k in keys {
            shapes.entry((k.filter.clone(), k.after.clone(), k.limit)).or_default().push(k);
        }
        let mut tx = self.begin().await?;
        store::custom_plans(&mut tx).await?;
        let mut out = HashMap::new();
        for ((filter, after, limit), ks) in shapes {
            let projects: Vec<ProjectId> = ks.iter().map(|k| k.project).collect();
            let after = after.as_ref().map(|(n, id)| (n.as_str(), *id));
            let rows =
                store::page_of_projects(&mut tx, self.scope().as_deref(), &projects, &filter, after, limit).await?;
            let mut by_project: HashMap<ProjectId, Vec<Module>> = HashMap::new();
            for m in rows {
                by_project.entry(m.project_id).or_default().push(m);
            }
            for k in ks {
                out.insert(k.clone(), by_project.get(&k.project).cloned().unwrap_or_default());
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// `Project.modules`.
pub async fn of_project(
    ctx: &Context<'_>,
    project: &Project,
    filter: Option<ModuleFilter>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Module>> {
    let page = Page::forward(after, first, 20)?;
    let filter = compile(ctx, &project.tenant_id, filter).await?;
    let key = ModulesOf {
        project: project.project_id,
        filter,
        after: parse_cursor(page.after.as_deref())?,
        limit: page.fetch_limit(),
    };
    let rows = loader(ctx)?.load_one(key).await?.unwrap_or_default();
    Ok(page.connection(rows, cursor))
}

/// A module the caller may see, or `NOT_FOUND`.
pub async fn visible(ctx: &Context<'_>, id: &str) -> Result<Module> {
    let id = ModuleId::parse("id", id)?;
    loader(ctx)?.load_one(ModuleById(id)).await?.ok_or_else(|| Error::not_found(format!("no module `{id}`")))
}

#[derive(Default)]
pub struct ModuleQuery;

#[Object]
impl ModuleQuery {
    async fn module(&self, ctx: &Context<'_>, id: ID) -> Result<Module> {
        ctx.authorize(READ)?;
        visible(ctx, &id).await
    }

    /// Lets the router resolve a `Module` other subgraphs reference (lineage's `Module.artifacts`).
    #[graphql(entity)]
    async fn find_module_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Module> {
        ctx.authorize(READ)?;
        visible(ctx, &id).await
    }

    /// The caller's modules in (name, id) order, optionally within one project, matching `filter`.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn modules(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        filter: Option<ModuleFilter>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Module>> {
        let tenant = ctx.authorize(READ)?;
        let project = project_id.as_ref().map(|p| ProjectId::parse("projectId", p)).transpose()?;
        let page = Page::forward(after, first, 20)?;
        let after = parse_cursor(page.after.as_deref())?;
        if let Some(p) = &project_id {
            projects::schema::visible(ctx, p).await?;
        }
        let f = compile(ctx, &tenant, filter).await?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        store::custom_plans(&mut tx).await?;
        let rows = store::search(
            &mut tx,
            &tenant,
            project,
            &f,
            after.as_ref().map(|(n, id)| (n.as_str(), *id)),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, cursor))
    }
}

#[derive(InputObject)]
pub struct RegisterModuleInput {
    pub project_id: ID,
    /// Unique within the project: 1–128 letters, digits and `. _ - / @`.
    pub name: String,
    /// A semantic version.
    pub version: String,
    /// `service`, `library`, `ui`, … (a lower-case key).
    pub kind: String,
    #[graphql(default)]
    pub owner: String,
    #[graphql(default)]
    pub tags: Vec<String>,
    /// A JSON object of at most 16 KiB.
    pub metadata: Option<Json<Value>>,
}

/// Fields to change; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateModuleInput {
    pub version: Option<String>,
    pub kind: Option<String>,
    pub owner: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Replaces the metadata (a JSON object of at most 16 KiB).
    pub metadata: Option<Json<Value>>,
}

fn owner(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(Error::bad_input("owner", "owner is at most 200 characters without control characters"));
    }
    Ok(s.to_owned())
}

#[derive(Default)]
pub struct ModuleMutation;

#[Object]
impl ModuleMutation {
    /// Adds a module to a project's catalogue. Emits `ModuleRegistered`.
    async fn register_module(&self, ctx: &Context<'_>, input: RegisterModuleInput) -> Result<Module> {
        let tenant = ctx.authorize(WRITE)?;
        let project_id = ProjectId::parse("projectId", &input.project_id)?;
        let name = super::name(&input.name)?;
        let version = super::version(&input.version)?;
        let kind = super::kind(&input.kind)?;
        let owner = owner(&input.owner)?;
        let tags = super::tags(input.tags)?;
        let metadata =
            super::metadata(input.metadata.map(|j| j.0).unwrap_or_else(|| Value::Object(Default::default())))?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        projects::writable(&mut work, &tenant, project_id).await?;
        let new = store::NewModule {
            module_id: ModuleId::new_v7(),
            project_id,
            name: &name,
            version: &version,
            kind: &kind,
            owner: &owner,
            tags: &tags,
            metadata: &metadata,
        };
        let m = store::insert(&mut work, &tenant, &new).await?;
        store::record_paths(&mut work, &tenant, &super::object_paths(&m.metadata)).await?;
        let event = events::ModuleRegistered {
            module_id: m.module_id,
            project_id,
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind.clone(),
            owner: m.owner.clone(),
            tags: m.tags.clone(),
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(m)
    }

    /// Changes a module's version, kind, owner, tags or metadata. Emits `ModuleUpdated`.
    async fn update_module(&self, ctx: &Context<'_>, id: ID, input: UpdateModuleInput) -> Result<Module> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ModuleId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let mut m = super::writable(&mut work, &tenant, id, true).await?;
        if let Some(v) = input.version {
            m.version = super::version(&v)?;
        }
        if let Some(k) = input.kind {
            m.kind = super::kind(&k)?;
        }
        if let Some(o) = input.owner {
            m.owner = owner(&o)?;
        }
        if let Some(t) = input.tags {
            m.tags = super::tags(t)?;
        }
        if let Some(md) = input.metadata {
            m.metadata = super::metadata(md.0)?;
        }
        let m = store::update(&mut work, &tenant, &m).await?;
        store::record_paths(&mut work, &tenant, &super::object_paths(&m.metadata)).await?;
        let event = events::ModuleUpdated {
            module_id: m.module_id,
            project_id: m.project_id,
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind.clone(),
            owner: m.owner.clone(),
            tags: m.tags.clone(),
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(m)
    }

    /// Removes a module nothing depends on, with its own dependency edges. Emits `ModuleRemoved` (and
    /// `DependencyRemoved` for each edge).
    async fn remove_module(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ModuleId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        crate::graph::store::lock_graph(&mut work, &tenant).await?;
        let m = super::writable(&mut work, &tenant, id, false).await?;
        let dependents =
            crate::graph::store::direct(&mut work, &tenant, &[id], crate::graph::Direction::Dependents).await?;
        if !dependents.is_empty() {
            return Err(Error::conflict(format!(
                "{} module(s) depend on `{}`; remove those dependencies first",
                dependents.len(),
                m.name
            )));
        }
        let edges =
            crate::graph::store::direct(&mut work, &tenant, &[id], crate::graph::Direction::Dependencies).await?;
        store::delete(&mut work, &tenant, id).await?;
        for e in edges {
            let event = events::DependencyRemoved { from_module_id: id, to_module_id: e.to, project_id: m.project_id };
            work.emit(&tenant, &event).await?;
        }
        work.emit(&tenant, &events::ModuleRemoved { module_id: id, project_id: m.project_id, name: m.name.clone() })
            .await?;
        work.commit().await?;
        Ok(ID(id.to_string()))
    }
}
