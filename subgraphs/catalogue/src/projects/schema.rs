//! Projects' share of the query and mutation roots, the `Project` and `Tenant` entities, and the loaders
//! behind `Tenant.projects` and project references.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject, ID};
use kernel::error::LoadError;
use kernel::pagination::Page;
use kernel::{Error, Result, TenantId, Work};

use super::{store, NewProject, Project, ProjectStatus};
use crate::events;
use crate::ids::{PrincipalId, ProjectId};
use crate::loaders::{loader, CatalogueLoader};

/// A tenant, as catalogue contributes to it (tenancy owns its other fields).
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Tenant {
    pub id: ID,
}

#[ComplexObject]
impl Tenant {
    /// The tenant's projects in slug order; archived ones only with `includeArchived`.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] include_archived: bool,
    ) -> Result<Connection<String, Project>> {
        let tenant = TenantId::try_from(self.id.to_string()).map_err(|m| Error::bad_input("id", m))?;
        if let kernel::db::Access::Tenant(own) = ctx.authorize_read(READ)? {
            if own != tenant {
                return Err(Error::not_found(format!("no tenant `{tenant}`")));
            }
        }
        let page = Page::forward(after, first, 20)?;
        let key = ProjectsOf { tenant, after: page.after.clone(), limit: page.fetch_limit(), include_archived };
        let rows = loader(ctx)?.load_one(key).await?.unwrap_or_default();
        Ok(page.connection(rows, |p| p.slug.clone()))
    }
}

/// A page of one tenant's projects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProjectsOf {
    pub tenant: TenantId,
    pub after: Option<String>,
    pub limit: i64,
    pub include_archived: bool,
}

impl Loader<ProjectsOf> for CatalogueLoader {
    type Value = Vec<Project>;
    type Error = LoadError;

    async fn load(&self, keys: &[ProjectsOf]) -> Result<HashMap<ProjectsOf, Vec<Project>>, LoadError> {
        // One statement per distinct page shape (normally one: every tenant asked the same way).
        let mut shapes: HashMap<(Option<String>, i64, bool), Vec<&ProjectsOf>> = HashMap::new();
        for k in keys {
            shapes.entry((k.after.clone(), k.limit, k.include_archived)).or_default().push(k);
        }
        let mut tx = self.begin().await?;
        let mut out = HashMap::new();
        for ((after, limit, include_archived), ks) in shapes {
            let tenants = self.visible(ks.iter().map(|k| &k.tenant));
            let rows = store::page_of_tenants(&mut tx, &tenants, after.as_deref(), limit, include_archived).await?;
            let mut by_tenant: HashMap<TenantId, Vec<Project>> = HashMap::new();
            for p in rows {
                by_tenant.entry(p.tenant_id.clone()).or_default().push(p);
            }
            for k in ks {
                out.insert(k.clone(), by_tenant.get(&k.tenant).cloned().unwrap_or_default());
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A project by id (the caller's own tenant's; any tenant's for operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectById(pub ProjectId);

impl Loader<ProjectById> for CatalogueLoader {
    type Value = Project;
    type Error = LoadError;

    async fn load(&self, keys: &[ProjectById]) -> Result<HashMap<ProjectById, Project>, LoadError> {
        let ids: Vec<ProjectId> = keys.iter().map(|k| k.0).collect();
        let mut tx = self.begin().await?;
        let rows = store::by_ids(&mut tx, self.scope().as_deref(), &ids).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|p| (ProjectById(p.project_id), p)).collect())
    }
}

/// A project the caller may see, or `NOT_FOUND` — also for another tenant's id, so ids cannot be probed.
pub async fn visible(ctx: &Context<'_>, id: &str) -> Result<Project> {
    ctx.authorize_read(READ)?;
    let id = ProjectId::parse("id", id)?;
    loader(ctx)?.load_one(ProjectById(id)).await?.ok_or_else(|| Error::not_found(format!("no project `{id}`")))
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// A project by id.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> Result<Project> {
        ctx.authorize(READ)?;
        visible(ctx, &id).await
    }

    /// A project by its slug.
    async fn project_by_slug(&self, ctx: &Context<'_>, slug: String) -> Result<Project> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let p = store::by_slug(&mut tx, &tenant, slug.trim()).await?;
        tx.commit().await?;
        p.ok_or_else(|| Error::not_found(format!("no project `{}`", kernel::error::clip(&slug, 63))))
    }

    /// The caller's projects in slug order; archived ones only with `includeArchived`.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default)] include_archived: bool,
    ) -> Result<Connection<String, Project>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page_of_tenants(
            &mut tx,
            &[tenant.as_str().to_owned()],
            page.after.as_deref(),
            page.fetch_limit(),
            include_archived,
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, |p| p.slug.clone()))
    }

    /// Resolves `Project` references from other subgraphs, with the same visibility rules as `project`.
    #[graphql(entity)]
    async fn find_project_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Project> {
        visible(ctx, &id).await
    }

    /// Lets the router ask catalogue for `Tenant.projects`.
    #[graphql(entity)]
    async fn find_tenant_by_id(&self, id: ID) -> Tenant {
        Tenant { id }
    }
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    /// Unique within the tenant: 3–63 lower-case letters, digits and hyphens. Immutable.
    pub slug: String,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    /// The owning principal's id (identity's); the caller when omitted (if the caller is a principal).
    pub owner_principal_id: Option<PrincipalId>,
}

/// Fields to change; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub owner_principal_id: Option<PrincipalId>,
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Creates a project with its four environments (`dev`, `test`, `staging`, `prod`, each with an empty
    /// configuration). Emits `ProjectCreated`.
    async fn create_project(&self, ctx: &Context<'_>, input: CreateProjectInput) -> Result<Project> {
        let tenant = ctx.authorize(WRITE)?;
        // The caller owns it unless another owner is named; a caller that is no principal must name one.
        let owner = match input.owner_principal_id {
            Some(owner) => owner,
            None => ctx.principal_id().map_err(|e| {
                Error::bad_input("ownerPrincipalId", format!("{}: name the owner in ownerPrincipalId", e.message()))
            })?,
        };
        let owner = Some(owner);
        let p = NewProject::parse(&input.slug, &input.name, &input.description, owner)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let project = super::create(&mut work, &tenant, &p).await?;
        work.commit().await?;
        Ok(project)
    }

    /// Changes a project's name, description or owner. Emits `ProjectUpdated`.
    async fn update_project(&self, ctx: &Context<'_>, id: ID, input: UpdateProjectInput) -> Result<Project> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ProjectId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let mut p = super::lock_writable(&mut work, &tenant, id).await?;
        if let Some(name) = input.name {
            p.name = kernel::error::text("name", &name, 200)?;
        }
        if let Some(d) = input.description {
            p.description = super::description_text(&d)?;
        }
        if let Some(o) = input.owner_principal_id {
            p.owner_principal_id = Some(o);
        }
        let p = store::update(&mut work, &tenant, &p).await?;
        let event = events::ProjectUpdated {
            project_id: id,
            name: p.name.clone(),
            description: p.description.clone(),
            owner_principal_id: p.owner_principal_id,
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Archives a project: read-only from now on and hidden from default lists; its pending prod changes
    /// are cancelled. Emits `ProjectArchived` (and `EnvironmentChangeDiscarded` for each cancelled change).
    async fn archive_project(&self, ctx: &Context<'_>, id: ID) -> Result<Project> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ProjectId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let mut p = super::lock_writable(&mut work, &tenant, id).await?;
        crate::environments::cancel_pending(&mut work, &tenant, id, "the project was archived").await?;
        p.status = ProjectStatus::Archived;
        p.archived_at = Some(chrono::Utc::now());
        let p = store::update(&mut work, &tenant, &p).await?;
        work.emit(&tenant, &events::ProjectArchived { project_id: id, slug: p.slug.clone() }).await?;
        work.commit().await?;
        Ok(p)
    }
}
