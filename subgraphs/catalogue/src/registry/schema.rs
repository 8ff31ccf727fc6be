//! The registries' share of the roots, `AgentDefinition.skills`, and the loader behind it.
//!
//! Reads: a tenant's callers (`catalogue:read`) see their own definitions and the platform's published
//! ones; platform operators see the platform's. Writes: a tenant's callers (`catalogue:write`) change their
//! own; platform operators change the platform's by passing `platform: true`.

use crate::state;
use kernel::permissions::catalogue::{READ, WRITE};
use kernel::Authorize;
use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::dataloader::Loader;
use async_graphql::{Context, InputObject, Json, Object};
use kernel::error::LoadError;
use kernel::pagination::Page;
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use super::{
    exact, not_found, resolve, store, AgentDefinition, DefinitionStatus, ModelRequirements, SkillDefinition, SkillRef,
};
use crate::loaders::{loader, CatalogueLoader};

/// A listing cursor: key, version order and owner (none of which holds a space).
fn cursor(key: &str, version_order: &str, tenant: &TenantId) -> String {
    format!("{key} {version_order} {tenant}")
}

fn parse_cursor(after: Option<&str>) -> Result<Option<(String, String, String)>> {
    let Some(c) = after else { return Ok(None) };
    let mut parts = c.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(o), Some(t)) => Ok(Some((k.to_owned(), o.to_owned(), t.to_owned()))),
        _ => Err(Error::bad_input("after", "not a registry cursor")),
    }
}

/// A skill an agent has, with the definition it resolves to.
#[derive(Clone, Debug)]
pub struct AgentSkill {
    /// The agent's owner, whose skills (and the platform's) the range resolves over.
    pub owner: TenantId,
    pub r: SkillRef,
}

#[Object]
impl AgentSkill {
    async fn skill_key(&self) -> &str {
        &self.r.skill_key
    }

    /// The semver range the agent asks for.
    async fn version_req(&self) -> &str {
        &self.r.version_req
    }

    /// The version the range resolved to when the agent was published (absent on drafts).
    async fn resolved_version(&self) -> Option<&str> {
        self.r.resolved_version.as_deref()
    }

    /// The skill's definition: the resolved version for a published agent, the newest published version in
    /// range for a draft; absent when nothing (or no longer anything) matches.
    async fn definition(&self, ctx: &Context<'_>) -> Result<Option<SkillDefinition>> {
        let key = SkillOf {
            owner: self.owner.clone(),
            skill_key: self.r.skill_key.clone(),
            version_req: self.r.version_req.clone(),
            pinned: self.r.resolved_version.clone().map(|v| (v, self.r.platform.unwrap_or(false))),
        };
        Ok(loader(ctx)?.load_one(key).await?)
    }
}

/// The skill definition one of `owner`'s agents means: a pinned (version, platform's?) or the newest
/// published version in a range.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SkillOf {
    pub owner: TenantId,
    pub skill_key: String,
    pub version_req: String,
    pub pinned: Option<(String, bool)>,
}

impl Loader<SkillOf> for CatalogueLoader {
    type Value = SkillDefinition;
    type Error = LoadError;

    async fn load(&self, keys: &[SkillOf]) -> Result<HashMap<SkillOf, SkillDefinition>, LoadError> {
        // One statement per owner (normally one: the caller's tenant, or the platform).
        let mut owners: HashMap<&TenantId, Vec<String>> = HashMap::new();
        for k in keys {
            let visible = match &self.access {
                kernel::db::Access::Platform => true,
                kernel::db::Access::Tenant(own) => *own == k.owner || k.owner.is_platform(),
            };
            if visible {
                owners.entry(&k.owner).or_default().push(k.skill_key.clone());
            }
        }
        let mut tx = self.begin().await?;
        let mut out = HashMap::new();
        for (owner, mut skill_keys) in owners {
            skill_keys.sort();
            skill_keys.dedup();
            let rows = store::skills_of_keys(&mut tx, owner, &skill_keys).await?;
            for k in keys.iter().filter(|k| &k.owner == owner) {
                let of_key: Vec<SkillDefinition> = rows.iter().filter(|s| s.key == k.skill_key).cloned().collect();
                let found = match &k.pinned {
                    Some((v, platform)) => of_key
                        .iter()
                        .find(|s| &s.version == v && s.tenant_id.is_platform() == *platform)
                        .filter(|s| s.status != DefinitionStatus::Draft),
                    None => semver::VersionReq::parse(&k.version_req).ok().and_then(|r| resolve(&of_key, Some(&r))),
                };
                if let Some(s) = found {
                    out.insert(k.clone(), s.clone());
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

#[derive(Default)]
pub struct RegistryQuery;

#[Object]
impl RegistryQuery {
    /// A skill definition by key: the version asked for (the caller's own before the platform's), or the
    /// newest published version when none is.
    async fn skill_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: Option<String>,
    ) -> Result<SkillDefinition> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let key = super::key("key", &key)?;
        let version = version.map(|v| super::version(&v).map(|v| v.to_string())).transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let all = store::skills_of_keys(&mut tx, &tenant, std::slice::from_ref(&key)).await?;
        tx.commit().await?;
        let found = match &version {
            Some(v) => exact(&all, v),
            None => resolve(&all, None),
        };
        found.cloned().ok_or_else(|| not_found("skill", &key, version.as_deref()))
    }

    /// The skill definitions the caller can see in (key, version, owner) order: its own (every status) and,
    /// unless `includePlatform` is false, the platform's published and deprecated ones.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn skill_definitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] include_platform: bool,
        #[graphql(desc = "Only this key's versions.")] key: Option<String>,
        status: Option<DefinitionStatus>,
    ) -> Result<Connection<String, SkillDefinition>> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let key = key.map(|k| super::key("key", &k)).transpose()?;
        let page = Page::forward(after, first, 20)?;
        let after = parse_cursor(page.after.as_deref())?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page_of_skills(
            &mut tx,
            &tenant,
            include_platform,
            key.as_deref(),
            status,
            after.as_ref().map(|(k, o, t)| (k.as_str(), o.as_str(), t.as_str())),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, |s| cursor(&s.key, &s.version_order, &s.tenant_id)))
    }

    /// An agent definition by key: the version asked for (the caller's own before the platform's), or the
    /// newest published version when none is.
    async fn agent_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: Option<String>,
    ) -> Result<AgentDefinition> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let key = super::key("key", &key)?;
        let version = version.map(|v| super::version(&v).map(|v| v.to_string())).transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let all = store::agent_versions(&mut tx, &tenant, &key).await?;
        tx.commit().await?;
        let found = match &version {
            Some(v) => exact(&all, v),
            None => resolve(&all, None),
        };
        found.cloned().ok_or_else(|| not_found("agent", &key, version.as_deref()))
    }

    /// The agent definitions the caller can see in (key, version, owner) order: its own (every status) and,
    /// unless `includePlatform` is false, the platform's published and deprecated ones.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn agent_definitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] include_platform: bool,
        #[graphql(desc = "Only this key's versions.")] key: Option<String>,
        status: Option<DefinitionStatus>,
    ) -> Result<Connection<String, AgentDefinition>> {
        let tenant = ctx.authorize_or_operator(READ)?;
        let key = key.map(|k| super::key("key", &k)).transpose()?;
        let page = Page::forward(after, first, 20)?;
        let after = parse_cursor(page.after.as_deref())?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page_of_agents(
            &mut tx,
            &tenant,
            include_platform,
            key.as_deref(),
            status,
            after.as_ref().map(|(k, o, t)| (k.as_str(), o.as_str(), t.as_str())),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, |a| cursor(&a.key, &a.version_order, &a.tenant_id)))
    }
}

#[derive(InputObject)]
pub struct CreateSkillDefinitionInput {
    /// 1–64 lower-case letters, digits and `. _ -`, starting with a letter.
    pub key: String,
    /// A semantic version (no build metadata); unique per key.
    pub version: String,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    /// A JSON Schema (object or boolean, at most 64 KiB) the skill's input must satisfy.
    pub input_schema: Json<Value>,
    /// A JSON Schema (object or boolean, at most 64 KiB) the skill's output satisfies.
    pub output_schema: Json<Value>,
    /// A platform definition (platform operators only), readable by every tenant once published.
    #[graphql(default)]
    pub platform: bool,
}

/// A draft's fields to change; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateSkillDraftInput {
    pub key: String,
    pub version: String,
    #[graphql(default)]
    pub platform: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub input_schema: Option<Json<Value>>,
    pub output_schema: Option<Json<Value>>,
}

/// A skill an agent has: its key and the semver range of versions it works with.
#[derive(InputObject)]
pub struct AgentSkillInput {
    pub skill_key: String,
    /// A semver range (`^1.2`, `>=1, <3`, `*`); publication resolves it to the newest published version.
    pub version_req: String,
}

#[derive(InputObject)]
pub struct CreateAgentDefinitionInput {
    /// 1–64 lower-case letters, digits and `. _ -`, starting with a letter.
    pub key: String,
    /// A semantic version (no build metadata); unique per key.
    pub version: String,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    /// Lower-case keys of what the agent can do.
    #[graphql(default)]
    pub capabilities: Vec<String>,
    #[graphql(default)]
    pub skills: Vec<AgentSkillInput>,
    /// `{providers, models, minContextTokens, maxCostPerTaskUsd, features}`, every field optional.
    pub model_requirements: Option<Json<Value>>,
    /// A platform definition (platform operators only), readable by every tenant once published.
    #[graphql(default)]
    pub platform: bool,
}

/// A draft's fields to change; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateAgentDraftInput {
    pub key: String,
    pub version: String,
    #[graphql(default)]
    pub platform: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub skills: Option<Vec<AgentSkillInput>>,
    pub model_requirements: Option<Json<Value>>,
}

fn skill_refs(input: Vec<AgentSkillInput>) -> Result<Vec<SkillRef>> {
    super::skill_refs(input.into_iter().map(|s| (s.skill_key, s.version_req)).collect())
}

#[derive(Default)]
pub struct RegistryMutation;

#[Object]
impl RegistryMutation {
    /// Creates a draft skill definition version. Emits `SkillDefinitionDrafted`.
    async fn create_skill_definition(
        &self,
        ctx: &Context<'_>,
        input: CreateSkillDefinitionInput,
    ) -> Result<SkillDefinition> {
        let owner = ctx.authorize_owner(WRITE, input.platform)?;
        let version = super::version(&input.version)?;
        let new = store::NewSkill {
            key: super::key("key", &input.key)?,
            version: version.to_string(),
            version_order: super::version_order(&version),
            name: kernel::error::text("name", &input.name, 200)?,
            description: crate::projects::description_text(&input.description)?,
            input_schema: super::json_schema("inputSchema", input.input_schema.0)?,
            output_schema: super::json_schema("outputSchema", input.output_schema.0)?,
        };
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let s = super::create::<SkillDefinition>(&mut work, &owner, &new).await?;
        work.commit().await?;
        Ok(s)
    }

    /// Changes a draft skill definition; `CONFLICT` once it is published. Emits `SkillDefinitionDrafted`.
    async fn update_skill_draft(&self, ctx: &Context<'_>, input: UpdateSkillDraftInput) -> Result<SkillDefinition> {
        let owner = ctx.authorize_owner(WRITE, input.platform)?;
        let (key, version) = super::target(&input.key, &input.version)?;
        let name = input.name.map(|n| kernel::error::text("name", &n, 200)).transpose()?;
        let description = input.description.map(|d| crate::projects::description_text(&d)).transpose()?;
        let input_schema = input.input_schema.map(|j| super::json_schema("inputSchema", j.0)).transpose()?;
        let output_schema = input.output_schema.map(|j| super::json_schema("outputSchema", j.0)).transpose()?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let s = super::update_draft(&mut work, &owner, (&key, &version), |s: &mut SkillDefinition| {
            if let Some(v) = name {
                s.name = v;
            }
            if let Some(v) = description {
                s.description = v;
            }
            if let Some(v) = input_schema {
                s.input_schema = v;
            }
            if let Some(v) = output_schema {
                s.output_schema = v;
            }
        })
        .await?;
        work.commit().await?;
        Ok(s)
    }

    /// Publishes a draft skill definition: immutable from now on, usable by agents. Emits
    /// `SkillDefinitionPublished` with the full definition.
    async fn publish_skill_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: String,
        #[graphql(default)] platform: bool,
    ) -> Result<SkillDefinition> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let (key, version) = super::target(&key, &version)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let s = super::publish::<SkillDefinition>(&mut work, &owner, &key, &version).await?;
        work.commit().await?;
        Ok(s)
    }

    /// Deprecates a published skill definition: agents published against it keep it; new resolution skips
    /// it. Final. Emits `SkillDefinitionDeprecated`.
    async fn deprecate_skill_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: String,
        #[graphql(default)] platform: bool,
    ) -> Result<SkillDefinition> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let (key, version) = super::target(&key, &version)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let s = super::deprecate::<SkillDefinition>(&mut work, &owner, &key, &version).await?;
        work.commit().await?;
        Ok(s)
    }

    /// Creates a draft agent definition version (its skills are resolved when it is published). Emits
    /// `AgentDefinitionDrafted`.
    async fn create_agent_definition(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentDefinitionInput,
    ) -> Result<AgentDefinition> {
        let owner = ctx.authorize_owner(WRITE, input.platform)?;
        let version = super::version(&input.version)?;
        let new = store::NewAgent {
            key: super::key("key", &input.key)?,
            version: version.to_string(),
            version_order: super::version_order(&version),
            name: kernel::error::text("name", &input.name, 200)?,
            description: crate::projects::description_text(&input.description)?,
            capabilities: super::names("capabilities", input.capabilities, super::MAX_CAPABILITIES)?,
            skills: skill_refs(input.skills)?,
            model_requirements: match input.model_requirements {
                Some(j) => ModelRequirements::parse(j.0)?,
                None => ModelRequirements::default(),
            },
        };
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let a = super::create::<AgentDefinition>(&mut work, &owner, &new).await?;
        work.commit().await?;
        Ok(a)
    }

    /// Changes a draft agent definition; `CONFLICT` once it is published. Emits `AgentDefinitionDrafted`.
    async fn update_agent_draft(&self, ctx: &Context<'_>, input: UpdateAgentDraftInput) -> Result<AgentDefinition> {
        let owner = ctx.authorize_owner(WRITE, input.platform)?;
        let (key, version) = super::target(&input.key, &input.version)?;
        let name = input.name.map(|n| kernel::error::text("name", &n, 200)).transpose()?;
        let description = input.description.map(|d| crate::projects::description_text(&d)).transpose()?;
        let capabilities =
            input.capabilities.map(|c| super::names("capabilities", c, super::MAX_CAPABILITIES)).transpose()?;
        let skills = input.skills.map(skill_refs).transpose()?;
        let model_requirements = input.model_requirements.map(|j| ModelRequirements::parse(j.0)).transpose()?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let a = super::update_draft(&mut work, &owner, (&key, &version), |a: &mut AgentDefinition| {
            if let Some(v) = name {
                a.name = v;
            }
            if let Some(v) = description {
                a.description = v;
            }
            if let Some(v) = capabilities {
                a.capabilities = v;
            }
            if let Some(v) = skills {
                a.skills = v;
            }
            if let Some(v) = model_requirements {
                a.model_requirements = v;
            }
        })
        .await?;
        work.commit().await?;
        Ok(a)
    }

    /// Publishes a draft agent definition: each skill's range is resolved to the newest published version
    /// the owner can use (a tenant's own or the platform's; a platform agent's: the platform's) and
    /// recorded; `BAD_USER_INPUT` naming every range that resolves to nothing. Immutable from now on. Emits
    /// `AgentDefinitionPublished` with the full definition and the resolved skill versions.
    async fn publish_agent_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: String,
        #[graphql(default)] platform: bool,
    ) -> Result<AgentDefinition> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let (key, version) = super::target(&key, &version)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let a = super::publish::<AgentDefinition>(&mut work, &owner, &key, &version).await?;
        work.commit().await?;
        Ok(a)
    }

    /// Deprecates a published agent definition. Final. Emits `AgentDefinitionDeprecated`.
    async fn deprecate_agent_definition(
        &self,
        ctx: &Context<'_>,
        key: String,
        version: String,
        #[graphql(default)] platform: bool,
    ) -> Result<AgentDefinition> {
        let owner = ctx.authorize_owner(WRITE, platform)?;
        let (key, version) = super::target(&key, &version)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &owner, ctx.event_meta()).await?;
        let a = super::deprecate::<AgentDefinition>(&mut work, &owner, &key, &version).await?;
        work.commit().await?;
        Ok(a)
    }
}
