//! Policies' share of the query and mutation roots.

use crate::state;
use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use kernel::pagination::Page;
use kernel::permissions::governance::{READ, WRITE};
use kernel::Authorize;
use kernel::{Error, Result, Work};

use super::{cedar, store, Effect, Policy, PolicyStatus};
use crate::ids::PolicyId;

/// The set a tenant's evaluations use right now.
#[derive(SimpleObject)]
pub struct PolicySetInfo {
    /// Grows with every publication or deprecation among the tenant's and the platform's policies.
    pub version: i64,
    /// sha256 (hex) over the published policies' ids, versions, effects and texts.
    pub hash: String,
    /// Published policies in the set (the tenant's and the platform's).
    pub policies: i32,
}

fn cursor(p: &Policy) -> String {
    format!("{}\u{0}{}\u{0}{}", p.name, p.version, p.tenant_id)
}

fn parse_cursor(raw: Option<&str>) -> Result<Option<(String, i32, String)>> {
    raw.map(|c| {
        let mut parts = c.split('\u{0}');
        match (parts.next(), parts.next().and_then(|v| v.parse().ok()), parts.next(), parts.next()) {
            (Some(n), Some(v), Some(t), None) => Ok((n.to_owned(), v, t.to_owned())),
            _ => Err(Error::bad_input("after", "after is not a cursor this API issued")),
        }
    })
    .transpose()
}

#[derive(Default)]
pub struct PolicyQuery;

#[Object]
impl PolicyQuery {
    /// A policy version by id: the caller's own or a platform policy.
    async fn policy(&self, ctx: &Context<'_>, id: ID) -> Result<Policy> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let id = PolicyId::parse("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let p = store::by_ids(&mut tx, &tenant, &[id]).await?.pop();
        tx.commit().await?;
        p.ok_or_else(|| Error::not_found(format!("no policy `{id}`")))
    }

    /// Policy versions in (name, version) order: the caller's own and, unless `includePlatform` is false,
    /// the platform's published and deprecated ones.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn policies(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] include_platform: bool,
        #[graphql(desc = "Only this name's versions.")] name: Option<String>,
        status: Option<PolicyStatus>,
    ) -> Result<Connection<String, Policy>> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let name = name.map(|n| super::name("name", &n)).transpose()?;
        let page = Page::forward(after, first, 20)?;
        let after = parse_cursor(page.after.as_deref())?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(
            &mut tx,
            &tenant,
            include_platform,
            name.as_deref(),
            status,
            after.as_ref().map(|(n, v, t)| (n.as_str(), *v, t.as_str())),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, cursor))
    }

    /// The policy set the caller's evaluations use now.
    async fn policy_set(&self, ctx: &Context<'_>) -> Result<PolicySetInfo> {
        let tenant = ctx.authorize(READ)?;
        let s = state(ctx);
        let set = s.policies.get(&s.kernel.db, &tenant).await?;
        Ok(PolicySetInfo { version: set.version, hash: set.hash.clone(), policies: set.policies as i32 })
    }

    /// The Cedar schema policies are written against (entity types, actions, context).
    async fn policy_schema(&self, ctx: &Context<'_>) -> Result<String> {
        ctx.authorize_or_operator(READ)?;
        Ok(cedar::SCHEMA.trim().to_owned())
    }
}

#[derive(InputObject)]
pub struct DraftPolicyInput {
    /// A new name starts at version 1; an existing one gets its next version.
    pub name: String,
    pub effect: Effect,
    /// One Cedar policy statement. Checked against the schema when published.
    pub cedar: String,
    #[graphql(default)]
    pub description: String,
    /// A platform policy (operators only): part of every tenant's set once published.
    #[graphql(default)]
    pub platform: bool,
}

#[derive(InputObject)]
pub struct UpdatePolicyDraftInput {
    pub effect: Option<Effect>,
    pub cedar: Option<String>,
    pub description: Option<String>,
}

#[derive(Default)]
pub struct PolicyMutation;

#[Object]
impl PolicyMutation {
    /// Drafts the next version of a policy. Emits `PolicyDrafted`.
    async fn draft_policy(&self, ctx: &Context<'_>, input: DraftPolicyInput) -> Result<Policy> {
        let owner = ctx.authorize_owner(WRITE, input.platform)?;
        let name = super::name("name", &input.name)?;
        let text = super::cedar_text(&input.cedar)?;
        let description = super::description_text(&input.description)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let p = super::draft(&mut work, &owner, &name, input.effect, &description, &text, ctx.principal()).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Changes a draft's effect, text or description (published versions are immutable).
    async fn update_policy_draft(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdatePolicyDraftInput,
        #[graphql(default)] platform: bool,
    ) -> Result<Policy> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let id = PolicyId::parse("id", &id)?;
        let text = input.cedar.as_deref().map(super::cedar_text).transpose()?;
        let description = input.description.as_deref().map(super::description_text).transpose()?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let p = super::lock(&mut work, &owner, id).await?;
        super::ensure_draft(&p)?;
        let effect = input.effect.unwrap_or(p.effect);
        let p = store::update_draft(
            &mut work,
            &owner,
            id,
            effect,
            description.as_deref().unwrap_or(&p.description),
            text.as_deref().unwrap_or(&p.cedar),
        )
        .await?;
        let event = crate::events::PolicyDrafted {
            policy_id: p.policy_id,
            name: p.name.clone(),
            version: p.version,
            effect: p.effect,
            platform: owner.is_platform(),
        };
        work.emit(&owner, &event).await?;
        work.commit().await?;
        Ok(p)
    }

    /// Deletes a draft (published versions stay forever).
    async fn delete_policy_draft(&self, ctx: &Context<'_>, id: ID, #[graphql(default)] platform: bool) -> Result<ID> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let pid = PolicyId::parse("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let p = super::lock(&mut work, &owner, pid).await?;
        super::ensure_draft(&p)?;
        store::delete_draft(&mut work, &owner, pid).await?;
        work.commit().await?;
        Ok(id)
    }

    /// Publishes a draft once Cedar accepts it against the schema; refused with `BAD_USER_INPUT`, the
    /// engine's message and `extensions.location` (line, column) otherwise. Immutable from then on. Emits
    /// `PolicyPublished`.
    async fn publish_policy(&self, ctx: &Context<'_>, id: ID, #[graphql(default)] platform: bool) -> Result<Policy> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let id = PolicyId::parse("id", &id)?;
        let s = state(ctx);
        let mut work = Work::tenant(&s.kernel.db, &owner, ctx.event_meta()).await?;
        let p = super::publish(&mut work, &owner, id).await?;
        work.commit().await?;
        s.policies.invalidate(&owner);
        Ok(p)
    }

    /// Deprecates a published version: it leaves the set at once. Emits `PolicyDeprecated`.
    async fn deprecate_policy(&self, ctx: &Context<'_>, id: ID, #[graphql(default)] platform: bool) -> Result<Policy> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let id = PolicyId::parse("id", &id)?;
        let s = state(ctx);
        let mut work = Work::tenant(&s.kernel.db, &owner, ctx.event_meta()).await?;
        let p = super::deprecate(&mut work, &owner, id).await?;
        work.commit().await?;
        s.policies.invalidate(&owner);
        Ok(p)
    }
}
