//! Editions' share of the roots: versioned editions, their quota templates and feature sets, publishing
//! and retiring them (platform operators).

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object};
use kernel::context::ContextExt;
use kernel::db::Access;
use kernel::pagination::Page;
use kernel::{Authorize, Error, Result, TenantId, Work};

use crate::domain::{self, EditionStatus};
use crate::events;
use crate::model::{Edition, QuotaLimit};

pub use kernel::permissions::tenancy::{QUOTA_CONSUME as CONSUME, READ, WRITE};

use crate::state;
use crate::tenants::schema::reader;

fn edition_cursor(e: &Edition) -> String {
    format!("{}/{}", e.id, e.version)
}

#[derive(InputObject)]
pub struct CreateEditionInput {
    /// Edition id; if it exists, a new draft version of it is created.
    pub id: String,
    pub name: String,
    #[graphql(default)]
    pub feature_set: Vec<String>,
    #[graphql(default)]
    pub quota_template: Vec<QuotaLimit>,
}

/// Fields to change on a draft edition; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateEditionInput {
    pub name: Option<String>,
    pub feature_set: Option<Vec<String>>,
    pub quota_template: Option<Vec<QuotaLimit>>,
}

async fn edition_status(
    ctx: &Context<'_>,
    id: String,
    version: i32,
    from: EditionStatus,
    to: EditionStatus,
) -> Result<Edition> {
    let req = ctx.request();
    let operator = req.authorize_operator()?;
    let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
    let mut edition = crate::editions::store::lock_edition(&mut work, &id, version).await?;
    if edition.status != from {
        return Err(Error::conflict(format!(
            "edition `{id}` version {version} is {}, not {}",
            edition.status.as_str(),
            from.as_str()
        )));
    }
    if to == EditionStatus::Retired {
        let users = crate::editions::store::active_subscriptions_on(&mut work, &id, version).await?;
        if users > 0 {
            return Err(Error::conflict(format!(
                "edition `{id}` version {version} has {users} active subscription(s) and cannot be retired"
            )));
        }
    }
    edition.status = to;
    let edition = crate::editions::store::update_edition(&mut work, &edition).await?;
    let platform = TenantId::platform();
    match to {
        EditionStatus::Published => work.emit(&platform, &events::EditionPublished { edition_id: id, version }).await?,
        _ => work.emit(&platform, &events::EditionRetired { edition_id: id, version }).await?,
    };
    work.commit().await?;
    Ok(edition)
}

#[derive(Default)]
pub struct EditionQuery;

#[Object]
impl EditionQuery {
    /// An edition version; without `version`, the newest published one. Drafts are visible to operators only.
    async fn edition(&self, ctx: &Context<'_>, id: String, version: Option<i32>) -> Result<Edition> {
        let access = reader(ctx)?;
        let not_found = || Error::not_found(format!("no edition `{id}`"));
        let db = &state(ctx).kernel.db;
        let edition = match version {
            Some(v) => {
                crate::editions::store::editions_by_key(db.shared(), std::slice::from_ref(&id), &[v]).await?.pop()
            }
            None => {
                let mut tx = db.platform_tx().await?;
                let e = crate::editions::store::share_latest_published(&mut tx, &id).await.ok();
                tx.commit().await?;
                e
            }
        };
        match edition {
            Some(e) if e.status != EditionStatus::Draft || access == Access::Platform => Ok(e),
            _ => Err(not_found()),
        }
    }

    /// Edition versions in (id, version) order. Drafts are listed for operators only.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn editions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Edition>> {
        let access = reader(ctx)?;
        let page = Page::forward(after, first, 20)?;
        let after = match page.after.as_deref() {
            None => None,
            Some(c) => {
                let (id, v) = c.rsplit_once('/').ok_or_else(|| Error::bad_input("after", "not an edition cursor"))?;
                Some((id.to_owned(), v.parse::<i32>().map_err(|_| Error::bad_input("after", "not an edition cursor"))?))
            }
        };
        let mut tx = access.begin(&state(ctx).kernel.db).await?;
        let rows = crate::editions::store::list_editions(
            &mut tx,
            after.as_ref().map(|(id, v)| (id.as_str(), *v)),
            page.fetch_limit(),
            access == Access::Platform,
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, edition_cursor))
    }
}

#[derive(Default)]
pub struct EditionMutation;

#[Object]
impl EditionMutation {
    /// Creates a draft edition (version 1), or the next draft version of an existing one. Emits `EditionCreated`.
    async fn create_edition(&self, ctx: &Context<'_>, input: CreateEditionInput) -> Result<Edition> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let id = domain::key("id", &input.id, 64)?;
        let name = domain::edition_name(&input.name)?;
        let features = super::feature_set(input.feature_set)?;
        let template = super::quota_template(input.quota_template)?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let version = match crate::editions::store::lock_latest_edition(&mut work, &id).await? {
            Some(latest) if latest.status == EditionStatus::Draft => {
                return Err(Error::conflict(format!(
                    "edition `{id}` already has draft version {}: update or publish it",
                    latest.version
                )))
            }
            Some(latest) => latest.version + 1,
            None => 1,
        };
        let edition =
            crate::editions::store::insert_edition(&mut work, &id, version, &name, &features, &template).await?;
        let event = events::EditionCreated { edition_id: id, version, name };
        work.emit(&TenantId::platform(), &event).await?;
        work.commit().await?;
        Ok(edition)
    }

    /// Changes a draft edition. Published and retired versions are immutable (`CONFLICT`). Emits `EditionUpdated`.
    async fn update_edition(
        &self,
        ctx: &Context<'_>,
        id: String,
        version: i32,
        input: UpdateEditionInput,
    ) -> Result<Edition> {
        let req = ctx.request();
        let operator = req.authorize_operator()?;
        let mut work = Work::platform(&state(ctx).kernel.db, &operator, req.event_meta()).await?;
        let mut edition = crate::editions::store::lock_edition(&mut work, &id, version).await?;
        if edition.status != EditionStatus::Draft {
            return Err(Error::conflict(format!(
                "edition `{id}` version {version} is {} and immutable: create a new version",
                edition.status.as_str()
            )));
        }
        if let Some(name) = input.name {
            edition.name = domain::edition_name(&name)?;
        }
        if let Some(features) = input.feature_set {
            edition.feature_set = super::feature_set(features)?;
        }
        if let Some(template) = input.quota_template {
            edition.quota_template = super::quota_template(template)?;
        }
        let edition = crate::editions::store::update_edition(&mut work, &edition).await?;
        let event = events::EditionUpdated { edition_id: id, version, name: edition.name.clone() };
        work.emit(&TenantId::platform(), &event).await?;
        work.commit().await?;
        Ok(edition)
    }

    /// Draft → published; from then on the version is immutable. Emits `EditionPublished`.
    async fn publish_edition(&self, ctx: &Context<'_>, id: String, version: i32) -> Result<Edition> {
        edition_status(ctx, id, version, EditionStatus::Draft, EditionStatus::Published).await
    }

    /// Published → retired; refused while any tenant's active subscription uses it. Emits `EditionRetired`.
    async fn retire_edition(&self, ctx: &Context<'_>, id: String, version: i32) -> Result<Edition> {
        edition_status(ctx, id, version, EditionStatus::Published, EditionStatus::Retired).await
    }
}
