//! Projects: the unit everything else in the catalogue belongs to. A project is `Active` until archived;
//! an archived project is read-only (API and triggers) and hidden from default lists, and is never deleted.

pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Context, Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::error::text;
use kernel::{Error, Result, TenantId, Work};

use crate::events;
use crate::ids::{PrincipalId, ProjectId};

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum ProjectStatus {
        Active = "Active",
        /// Read-only and hidden from default lists; kept for the project's lifetime and the archive after.
        Archived = "Archived",
    }
}

/// A principal as identity knows it; identity resolves its fields.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(unresolvable = "id")]
pub struct Principal {
    pub id: PrincipalId,
}

/// A project: modules, environments and blueprints belong to one.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Project {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    /// Unique within the tenant: 3–63 lower-case letters, digits and hyphens. Immutable.
    pub slug: String,
    pub name: String,
    pub description: String,
    #[graphql(skip)]
    pub owner_principal_id: Option<PrincipalId>,
    pub status: ProjectStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Project {
    async fn id(&self) -> ID {
        ID(self.project_id.to_string())
    }

    /// The principal that owns the project (resolved by identity).
    async fn owner(&self) -> Option<Principal> {
        self.owner_principal_id.map(|id| Principal { id })
    }

    /// The tenant the project belongs to.
    async fn tenant(&self) -> schema::Tenant {
        schema::Tenant { id: ID(self.tenant_id.to_string()) }
    }

    /// Whether changes are accepted.
    async fn writable(&self) -> bool {
        self.status == ProjectStatus::Active
    }

    // Fields other areas contribute (async-graphql takes one `ComplexObject` block per type).

    /// The project's environments: dev, test, staging, prod.
    async fn environments(&self, ctx: &Context<'_>) -> Result<Vec<crate::environments::Environment>> {
        crate::environments::schema::of_project(ctx, self).await
    }

    /// The project's modules in (name, id) order, matching `filter`.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn modules(
        &self,
        ctx: &Context<'_>,
        filter: Option<crate::modules::filter::ModuleFilter>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<async_graphql::connection::Connection<String, crate::modules::Module>> {
        crate::modules::schema::of_project(ctx, self, filter, first, after).await
    }

    /// The project's blueprints, in name order.
    async fn blueprints(&self, ctx: &Context<'_>) -> Result<Vec<crate::blueprints::Blueprint>> {
        let blueprints = crate::blueprints::schema::of_project(ctx, self).await?;
        kernel::server::charge(ctx, blueprints.len())?;
        Ok(blueprints)
    }

    /// The project's context map and domain models: the bounded contexts (with their aggregates and
    /// entities) and relationships of each blueprint's validated version, as last projected.
    async fn context_map(&self, ctx: &Context<'_>) -> Result<crate::blueprints::ContextMap> {
        crate::blueprints::schema::context_map_of(ctx, self).await
    }
}

impl Project {
    /// `CONFLICT` unless the project accepts changes.
    pub fn ensure_writable(&self) -> Result<()> {
        match self.status {
            ProjectStatus::Active => Ok(()),
            ProjectStatus::Archived => {
                Err(Error::conflict(format!("project `{}` is archived and read-only", self.slug)))
            }
        }
    }
}

/// A validated project slug.
pub fn slug(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (3..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input(
            "slug",
            "slug must be 3–63 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen",
        ))
    }
}

/// A project to create, validated.
#[derive(Clone, Debug)]
pub struct NewProject {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner_principal_id: Option<PrincipalId>,
}

impl NewProject {
    pub fn parse(slug_raw: &str, name: &str, description: &str, owner: Option<PrincipalId>) -> Result<Self> {
        Ok(Self {
            slug: slug(slug_raw)?,
            name: text("name", name, 200)?,
            description: description_text(description)?,
            owner_principal_id: owner,
        })
    }
}

pub fn description_text(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.chars().count() > 4000 {
        return Err(Error::bad_input("description", "description must be at most 4000 characters"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::bad_input("description", "description must not contain control characters"));
    }
    Ok(s.to_owned())
}

/// Creates the project with its four environments (empty configuration) and emits `ProjectCreated`.
pub async fn create(work: &mut Work, tenant: &TenantId, p: &NewProject) -> Result<Project> {
    let id = ProjectId::new_v7();
    let project = store::insert(work, tenant, id, p).await?;
    created(work, tenant, project).await
}

/// Like [`create`], but a project with the slug already there is left as it is (`None`): the
/// `CreateProject` command, whose copies may race.
pub async fn create_if_absent(work: &mut Work, tenant: &TenantId, p: &NewProject) -> Result<Option<Project>> {
    match store::insert_if_absent(work, tenant, ProjectId::new_v7(), p).await? {
        Some(project) => Ok(Some(created(work, tenant, project).await?)),
        None => Ok(None),
    }
}

async fn created(work: &mut Work, tenant: &TenantId, project: Project) -> Result<Project> {
    let id = project.project_id;
    crate::environments::store::create_all(work, tenant, id).await?;
    let event = events::ProjectCreated {
        project_id: id,
        slug: project.slug.clone(),
        name: project.name.clone(),
        owner_principal_id: project.owner_principal_id,
    };
    work.emit(tenant, &event).await?;
    Ok(project)
}

/// Share-locks a project for a change inside it (changes inside one project go on side by side; archiving
/// waits for them): `NOT_FOUND` (also for another tenant's) or `CONFLICT` if archived. Lock order, everywhere:
/// the tenant's graph lock, then the project, then rows inside it.
pub async fn writable(work: &mut Work, tenant: &TenantId, id: ProjectId) -> Result<Project> {
    let project =
        store::share(work, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no project `{id}`")))?;
    project.ensure_writable()?;
    Ok(project)
}

/// Locks a project for a change to the project itself (rename, archive).
pub async fn lock_writable(work: &mut Work, tenant: &TenantId, id: ProjectId) -> Result<Project> {
    let project = store::lock(work, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no project `{id}`")))?;
    project.ensure_writable()?;
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_checked() {
        for ok in ["web", "web-shop", "a1-b2"] {
            assert_eq!(slug(ok).unwrap(), ok);
        }
        for bad in ["", "ab", "Web", "1web", "web-", "web_shop", &"a".repeat(64)] {
            assert!(slug(bad).is_err(), "{bad}");
        }
    }
}
