//! Agent and skill registries: versioned definitions that workflow runs against.
//!
//! A skill definition is a named capability with the JSON Schemas of its input and output; an agent
//! definition lists its capabilities, the skills it has (each a key and a semver range) and what it needs
//! of a model. Both are versioned by `(owner, key, semantic version)` and move `Draft → Published →
//! Deprecated`: drafts are editable, a published version is immutable except for its deprecation (API
//! and triggers), and publishing emits the full definition, so workflow never has to call back.
//!
//! Definitions are either a tenant's own or the platform's (filed under the reserved tenant `platform`):
//! every tenant reads the platform's published ones beside its own, and only platform operators write them.
//! A key is resolved over both: the newest published version in range wins, the tenant's own on a tie.
//! Publishing an agent resolves each of its skills that way (a platform agent: over platform skills only)
//! and records the exact versions.

pub mod schema;
pub mod store;

use async_graphql::{ComplexObject, Enum, Json, SimpleObject};
use chrono::{DateTime, Utc};
use std::future::Future;

use kernel::db::Tx;
use kernel::envelope::Event;
use kernel::{Error, Result, TenantId, Work};
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events;

/// Largest JSON Schema accepted for a skill's input or output, as JSON text (the table checks it too).
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Most skills one agent may have.
pub const MAX_SKILLS: usize = 64;
/// Most capabilities one agent may list.
pub const MAX_CAPABILITIES: usize = 64;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum DefinitionStatus {
        /// Editable; invisible to other tenants and to agent resolution.
        Draft = "Draft",
        /// Immutable; usable by agents and blueprints.
        Published = "Published",
        /// Immutable and final; agents published against it keep it, new resolution skips it.
        Deprecated = "Deprecated",
    }
}

/// A version of a skill definition.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct SkillDefinition {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    /// 1–64 lower-case letters, digits and `. _ -`, starting with a letter; unique per owner with the version.
    pub key: String,
    /// A semantic version (no build metadata).
    pub version: String,
    #[graphql(skip)]
    pub version_order: String,
    pub name: String,
    pub description: String,
    #[graphql(skip)]
    pub input_schema: Value,
    #[graphql(skip)]
    pub output_schema: Value,
    pub status: DefinitionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub deprecated_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl SkillDefinition {
    /// Whether this is a platform definition (readable by every tenant, written by operators).
    async fn platform(&self) -> bool {
        self.tenant_id.is_platform()
    }

    /// The JSON Schema the skill's input must satisfy.
    async fn input_schema(&self) -> Json<&Value> {
        Json(&self.input_schema)
    }

    /// The JSON Schema the skill's output satisfies.
    async fn output_schema(&self) -> Json<&Value> {
        Json(&self.output_schema)
    }
}

/// What an agent needs of a model. Every field is optional; unknown fields are refused.
#[derive(SimpleObject, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelRequirements {
    /// Providers the agent may run on (any when empty).
    #[serde(default)]
    pub providers: Vec<String>,
    /// Models the agent may run on (any when empty).
    #[serde(default)]
    pub models: Vec<String>,
    /// Smallest context window, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_context_tokens: Option<u32>,
    /// Most a task may cost, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_task_usd: Option<f64>,
    /// Model features needed: `tool-use`, `vision`, `json-mode`, …
    #[serde(default)]
    pub features: Vec<String>,
}

impl ModelRequirements {
    /// Parses and checks the JSON form: `BAD_USER_INPUT` naming the problem.
    pub fn parse(raw: Value) -> Result<Self> {
        const FIELD: &str = "modelRequirements";
        if !raw.is_object() {
            return Err(Error::bad_input(FIELD, "modelRequirements must be a JSON object"));
        }
        let mut r: Self = serde_json::from_value(raw).map_err(|e| {
            Error::bad_input(FIELD, format!("modelRequirements: {}", kernel::error::clip(&e.to_string(), 300)))
        })?;
        for (name, list) in [("providers", &mut r.providers), ("models", &mut r.models), ("features", &mut r.features)]
        {
            *list = names(&format!("{FIELD}.{name}"), std::mem::take(list), 32)?;
        }
        if let Some(t) = r.min_context_tokens {
            if !(1..=100_000_000).contains(&t) {
                return Err(Error::bad_input(FIELD, "modelRequirements.minContextTokens must be 1 to 100000000"));
            }
        }
        if let Some(c) = r.max_cost_per_task_usd {
            if !(c.is_finite() && c > 0.0 && c <= 100_000.0) {
                return Err(Error::bad_input(
                    FIELD,
                    "modelRequirements.maxCostPerTaskUsd must be above 0 and at most 100000",
                ));
            }
        }
        Ok(r)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("model requirements serialize")
    }
}

/// A skill an agent has, as stored: the range asked for and, once the agent is published, what it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillRef {
    pub skill_key: String,
    pub version_req: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_version: Option<String>,
    /// Whether the resolved version is the platform's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<bool>,
}

/// A version of an agent definition.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct AgentDefinition {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    /// 1–64 lower-case letters, digits and `. _ -`, starting with a letter; unique per owner with the version.
    pub key: String,
    /// A semantic version (no build metadata).
    pub version: String,
    #[graphql(skip)]
    pub version_order: String,
    pub name: String,
    pub description: String,
    /// What the agent can do (lower-case keys, sorted).
    pub capabilities: Vec<String>,
    #[graphql(skip)]
    pub skills: Vec<SkillRef>,
    pub model_requirements: ModelRequirements,
    pub status: DefinitionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub deprecated_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl AgentDefinition {
    /// Whether this is a platform definition (readable by every tenant, written by operators).
    async fn platform(&self) -> bool {
        self.tenant_id.is_platform()
    }

    /// The skills the agent has, each with the definition it resolves to: for a published agent the exact
    /// version recorded at publication; for a draft the newest published version in range now.
    async fn skills(&self) -> Vec<schema::AgentSkill> {
        self.skills.iter().map(|s| schema::AgentSkill { owner: self.tenant_id.clone(), r: s.clone() }).collect()
    }
}

/// A definition key: 1–64 lower-case letters, digits and `. _ -`, starting with a letter.
pub fn key(field: &str, raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input(
            field,
            format!(
                "`{}` is not a key: 1–64 lower-case letters, digits and . _ -, starting with a letter",
                kernel::error::clip(raw, 64)
            ),
        ))
    }
}

/// A semantic version without build metadata (which has no order, so two versions could tie).
pub fn version(raw: &str) -> Result<Version> {
    let v = Version::parse(raw.trim()).map_err(|e| {
        Error::bad_input("version", format!("`{}` is not a semantic version: {e}", kernel::error::clip(raw, 40)))
    })?;
    if !v.build.is_empty() {
        return Err(Error::bad_input("version", "a definition version may not carry build metadata (`+…`)"));
    }
    Ok(v)
}

/// A version's sortable text: zero-padded numbers, a pre-release (`-…`) before its release (`~`).
pub fn version_order(v: &Version) -> String {
    // Byte order (the column is `COLLATE "C"`): a release sorts after its pre-releases (`~` > `-`), and
    // numeric pre-release identifiers are zero-padded so `rc.10` follows `rc.2`, as semver orders them.
    let pre = if v.pre.is_empty() {
        "~".to_owned()
    } else {
        let ids: Vec<String> = v
            .pre
            .as_str()
            .split('.')
            .map(|id| if id.bytes().all(|b| b.is_ascii_digit()) { format!("{id:0>20}") } else { format!("~{id}") })
            .collect();
        format!("-{}", ids.join("."))
    };
    format!("{:020}.{:020}.{:020}{pre}", v.major, v.minor, v.patch)
}

/// A semver range (`^1.2`, `>=1, <3`, `*`).
pub fn version_req(field: &str, raw: &str) -> Result<VersionReq> {
    VersionReq::parse(raw.trim())
        .map_err(|e| Error::bad_input(field, format!("`{}` is not a semver range: {e}", kernel::error::clip(raw, 40))))
}

/// A list of lower-case names (capabilities, providers, …): each 1–64 of a-z, 0-9 and `. _ : / -`; sorted,
/// duplicates dropped, at most `max`.
pub fn names(field: &str, raw: Vec<String>, max: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(raw.len());
    for n in raw {
        let n = n.trim().to_owned();
        let ok = (1..=64).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | '/' | '-'));
        if !ok {
            return Err(Error::bad_input(
                field,
                format!(
                    "`{}` in {field} must be 1–64 lower-case letters, digits and . _ : / -",
                    kernel::error::clip(&n, 64)
                ),
            ));
        }
        out.push(n);
    }
    out.sort();
    out.dedup();
    if out.len() > max {
        return Err(Error::bad_input(field, format!("{field} may hold at most {max} entries")));
    }
    Ok(out)
}

/// A skill's input or output schema: a JSON Schema document (an object or a boolean) of at most
/// [`MAX_SCHEMA_BYTES`] that is valid against its draft's meta-schema (2020-12 unless `$schema` names another
/// known draft) and compiles — every `$ref` resolves inside the document (nothing is fetched) and every
/// `pattern` is a valid regular expression. `BAD_USER_INPUT` names the schema and the problem.
pub fn json_schema(field: &str, raw: Value) -> Result<Value> {
    if !(raw.is_object() || raw.is_boolean()) {
        return Err(Error::bad_input(field, format!("{field} must be a JSON Schema: an object or a boolean")));
    }
    let size = serde_json::to_vec(&raw).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_SCHEMA_BYTES {
        return Err(Error::bad_input(
            field,
            format!("{field} is {size} bytes as JSON; at most {MAX_SCHEMA_BYTES} are accepted"),
        ));
    }
    let invalid = |why: String| {
        Error::bad_input(field, format!("{field} is not a valid JSON Schema: {}", kernel::error::clip(&why, 300)))
    };
    if let Err(e) = jsonschema::meta::validate(&raw) {
        let at = e.instance_path().to_string();
        return Err(invalid(if at.is_empty() { e.to_string() } else { format!("{e} (at {at})") }));
    }
    jsonschema::validator_for(&raw).map_err(|e| invalid(e.to_string()))?;
    Ok(raw)
}

/// The skills of an agent as asked for: each key once, each range a valid semver range, at most
/// [`MAX_SKILLS`]; in the order given.
pub fn skill_refs(raw: Vec<(String, String)>) -> Result<Vec<SkillRef>> {
    if raw.len() > MAX_SKILLS {
        return Err(Error::bad_input("skills", format!("an agent may have at most {MAX_SKILLS} skills")));
    }
    let mut out: Vec<SkillRef> = Vec::with_capacity(raw.len());
    for (k, req) in raw {
        let skill_key = key("skills.skillKey", &k)?;
        let version_req = version_req("skills.versionReq", &req)?.to_string();
        if out.iter().any(|s| s.skill_key == skill_key) {
            return Err(Error::bad_input("skills", format!("skill `{skill_key}` is listed twice")));
        }
        out.push(SkillRef { skill_key, version_req, resolved_version: None, platform: None });
    }
    Ok(out)
}

/// What resolution needs of a definition version.
pub trait Versioned {
    fn version(&self) -> &str;
    fn status(&self) -> DefinitionStatus;
    fn is_platform(&self) -> bool;
}

impl Versioned for SkillDefinition {
    fn version(&self) -> &str {
        &self.version
    }
    fn status(&self) -> DefinitionStatus {
        self.status
    }
    fn is_platform(&self) -> bool {
        self.tenant_id.is_platform()
    }
}

impl Versioned for AgentDefinition {
    fn version(&self) -> &str {
        &self.version
    }
    fn status(&self) -> DefinitionStatus {
        self.status
    }
    fn is_platform(&self) -> bool {
        self.tenant_id.is_platform()
    }
}

/// Of `candidates` (versions of one key, the owner's and the platform's), the newest `Published` version
/// `req` matches (any, with `None`: pre-releases included); the owner's own on a tie. Pre-releases match a
/// range only when it names one (semver's rule).
pub fn resolve<'a, T: Versioned>(candidates: &'a [T], req: Option<&VersionReq>) -> Option<&'a T> {
    candidates
        .iter()
        .filter(|s| s.status() == DefinitionStatus::Published)
        .filter_map(|s| Version::parse(s.version()).ok().filter(|v| req.is_none_or(|r| r.matches(v))).map(|v| (v, s)))
        .max_by(|(a, sa), (b, sb)| a.cmp(b).then(sb.is_platform().cmp(&sa.is_platform())))
        .map(|(_, s)| s)
}

/// Of `candidates`, the version `version` (any status), the owner's own before the platform's.
pub fn exact<'a, T: Versioned>(candidates: &'a [T], version: &str) -> Option<&'a T> {
    candidates.iter().filter(|s| s.version() == version).min_by_key(|s| s.is_platform())
}

/// `CONFLICT` unless the definition is still a draft.
pub fn ensure_draft(what: &str, key: &str, version: &str, status: DefinitionStatus) -> Result<()> {
    match status {
        DefinitionStatus::Draft => Ok(()),
        s => Err(Error::conflict(format!(
            "{what} `{key}@{version}` is {} and immutable; create a new version instead",
            s.as_str().to_lowercase()
        ))),
    }
}

/// `CONFLICT` unless `status` may become `Deprecated` (only a published version may).
pub fn ensure_deprecatable(what: &str, key: &str, version: &str, status: DefinitionStatus) -> Result<()> {
    match status {
        DefinitionStatus::Published => Ok(()),
        DefinitionStatus::Draft => Err(Error::conflict(format!(
            "{what} `{key}@{version}` is a draft; only a published version can be deprecated"
        ))),
        DefinitionStatus::Deprecated => Err(Error::conflict(format!("{what} `{key}@{version}` is already deprecated"))),
    }
}

/// A kind of registry definition (skills, agents): what the one lifecycle below needs of it. Both kinds move
/// `Draft → Published → Deprecated` through [`create`], [`update_draft`], [`publish`] and [`deprecate`]; a
/// kind says only how it is stored, what it does before it is published, and which events it emits.
pub trait Definition: Versioned + Send + Sync + Sized {
    /// `skill`, `agent`: in messages.
    const WHAT: &'static str;
    /// A new draft, validated.
    type New: Send + Sync;
    type Drafted: Event + Send + Sync;
    type Published: Event + Send + Sync;
    type Deprecated: Event + Send + Sync;

    fn insert(tx: &mut Tx, owner: &TenantId, new: &Self::New) -> impl Future<Output = Result<Self>> + Send;
    fn lock(
        tx: &mut Tx,
        owner: &TenantId,
        key: &str,
        version: &str,
    ) -> impl Future<Output = Result<Option<Self>>> + Send;
    fn update(tx: &mut Tx, owner: &TenantId, d: &Self) -> impl Future<Output = Result<Self>> + Send;
    /// Its status and when it was published and deprecated, which the lifecycle moves.
    fn lifecycle(&mut self) -> Lifecycle<'_>;
    /// What publishing fixes beyond the status (an agent resolves its skills).
    fn prepare_publish(&mut self, _tx: &mut Tx, _owner: &TenantId) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
    fn drafted(&self, platform: bool) -> Self::Drafted;
    fn published(&self, platform: bool) -> Self::Published;
    fn deprecated(&self, platform: bool) -> Self::Deprecated;
}

/// `NOT_FOUND` naming the definition (`version`: one version; none: any published one).
pub fn not_found(what: &str, key: &str, version: Option<&str>) -> Error {
    match version {
        Some(v) => Error::not_found(format!("no {what} `{key}@{v}`")),
        None => Error::not_found(format!("no published {what} `{key}`")),
    }
}

/// A definition's lifecycle fields, as [`publish`] and [`deprecate`] move them.
pub struct Lifecycle<'a> {
    pub status: &'a mut DefinitionStatus,
    pub published_at: &'a mut Option<DateTime<Utc>>,
    pub deprecated_at: &'a mut Option<DateTime<Utc>>,
}

impl Lifecycle<'_> {
    fn move_to(self, to: DefinitionStatus, at: DateTime<Utc>) {
        *self.status = to;
        match to {
            DefinitionStatus::Published => *self.published_at = Some(at),
            DefinitionStatus::Deprecated => *self.deprecated_at = Some(at),
            DefinitionStatus::Draft => {}
        }
    }
}

/// The (key, version) a mutation names, validated.
pub fn target(key_raw: &str, version_raw: &str) -> Result<(String, String)> {
    Ok((key("key", key_raw)?, version(version_raw)?.to_string()))
}

async fn locked<D: Definition>(work: &mut Work, owner: &TenantId, key: &str, version: &str) -> Result<D> {
    D::lock(work, owner, key, version).await?.ok_or_else(|| not_found(D::WHAT, key, Some(version)))
}

/// Creates a draft version. Emits the kind's `…Drafted`.
pub async fn create<D: Definition>(work: &mut Work, owner: &TenantId, new: &D::New) -> Result<D> {
    let d = D::insert(work, owner, new).await?;
    work.emit(owner, &d.drafted(owner.is_platform())).await?;
    Ok(d)
}

/// Changes a draft (`change` applies what the caller gave); `CONFLICT` once it is published. Emits the
/// kind's `…Drafted`.
pub async fn update_draft<D: Definition>(
    work: &mut Work,
    owner: &TenantId,
    (key, version): (&str, &str),
    change: impl FnOnce(&mut D) + Send,
) -> Result<D> {
    let mut d = locked::<D>(work, owner, key, version).await?;
    ensure_draft(D::WHAT, key, version, d.status())?;
    change(&mut d);
    let d = D::update(work, owner, &d).await?;
    work.emit(owner, &d.drafted(owner.is_platform())).await?;
    Ok(d)
}

/// Publishes a draft: immutable from now on. Emits the kind's `…Published` with the full definition.
pub async fn publish<D: Definition>(work: &mut Work, owner: &TenantId, key: &str, version: &str) -> Result<D> {
    let mut d = locked::<D>(work, owner, key, version).await?;
    ensure_draft(D::WHAT, key, version, d.status())?;
    d.prepare_publish(work, owner).await?;
    d.lifecycle().move_to(DefinitionStatus::Published, Utc::now());
    let d = D::update(work, owner, &d).await?;
    work.emit(owner, &d.published(owner.is_platform())).await?;
    Ok(d)
}

/// Deprecates a published version. Final. Emits the kind's `…Deprecated`.
pub async fn deprecate<D: Definition>(work: &mut Work, owner: &TenantId, key: &str, version: &str) -> Result<D> {
    let mut d = locked::<D>(work, owner, key, version).await?;
    ensure_deprecatable(D::WHAT, key, version, d.status())?;
    d.lifecycle().move_to(DefinitionStatus::Deprecated, Utc::now());
    let d = D::update(work, owner, &d).await?;
    work.emit(owner, &d.deprecated(owner.is_platform())).await?;
    Ok(d)
}

impl Definition for SkillDefinition {
    const WHAT: &'static str = "skill";
    type New = store::NewSkill;
    type Drafted = events::SkillDefinitionDrafted;
    type Published = events::SkillDefinitionPublished;
    type Deprecated = events::SkillDefinitionDeprecated;

    async fn insert(tx: &mut Tx, owner: &TenantId, new: &store::NewSkill) -> Result<Self> {
        store::insert_skill(tx, owner, new).await
    }
    async fn lock(tx: &mut Tx, owner: &TenantId, key: &str, version: &str) -> Result<Option<Self>> {
        store::lock_skill(tx, owner, key, version).await
    }
    async fn update(tx: &mut Tx, owner: &TenantId, d: &Self) -> Result<Self> {
        store::update_skill(tx, owner, d).await
    }
    fn lifecycle(&mut self) -> Lifecycle<'_> {
        Lifecycle {
            status: &mut self.status,
            published_at: &mut self.published_at,
            deprecated_at: &mut self.deprecated_at,
        }
    }
    fn drafted(&self, platform: bool) -> Self::Drafted {
        events::SkillDefinitionDrafted { skill_key: self.key.clone(), version: self.version.clone(), platform }
    }
    fn published(&self, platform: bool) -> Self::Published {
        events::SkillDefinitionPublished {
            skill_key: self.key.clone(),
            version: self.version.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            input_schema: self.input_schema.clone(),
            output_schema: self.output_schema.clone(),
            platform,
        }
    }
    fn deprecated(&self, platform: bool) -> Self::Deprecated {
        events::SkillDefinitionDeprecated { skill_key: self.key.clone(), version: self.version.clone(), platform }
    }
}

impl Definition for AgentDefinition {
    const WHAT: &'static str = "agent";
    type New = store::NewAgent;
    type Drafted = events::AgentDefinitionDrafted;
    type Published = events::AgentDefinitionPublished;
    type Deprecated = events::AgentDefinitionDeprecated;

    async fn insert(tx: &mut Tx, owner: &TenantId, new: &store::NewAgent) -> Result<Self> {
        store::insert_agent(tx, owner, new).await
    }
    async fn lock(tx: &mut Tx, owner: &TenantId, key: &str, version: &str) -> Result<Option<Self>> {
        store::lock_agent(tx, owner, key, version).await
    }
    async fn update(tx: &mut Tx, owner: &TenantId, d: &Self) -> Result<Self> {
        store::update_agent(tx, owner, d).await
    }
    fn lifecycle(&mut self) -> Lifecycle<'_> {
        Lifecycle {
            status: &mut self.status,
            published_at: &mut self.published_at,
            deprecated_at: &mut self.deprecated_at,
        }
    }
    /// Each skill's range is resolved to the newest published version the owner can use and recorded.
    async fn prepare_publish(&mut self, tx: &mut Tx, owner: &TenantId) -> Result<()> {
        self.skills = resolve_skills(tx, owner, &self.skills).await?;
        Ok(())
    }
    fn drafted(&self, platform: bool) -> Self::Drafted {
        events::AgentDefinitionDrafted { agent_key: self.key.clone(), version: self.version.clone(), platform }
    }
    fn published(&self, platform: bool) -> Self::Published {
        events::AgentDefinitionPublished {
            agent_key: self.key.clone(),
            version: self.version.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            capabilities: self.capabilities.clone(),
            skills: self
                .skills
                .iter()
                .map(|s| events::AgentSkillRef {
                    skill_key: s.skill_key.clone(),
                    version_req: s.version_req.clone(),
                    resolved_version: s.resolved_version.clone().unwrap_or_default(),
                    platform: s.platform.unwrap_or(false),
                })
                .collect(),
            model_requirements: self.model_requirements.to_value(),
            platform,
        }
    }
    fn deprecated(&self, platform: bool) -> Self::Deprecated {
        events::AgentDefinitionDeprecated { agent_key: self.key.clone(), version: self.version.clone(), platform }
    }
}

/// Of the agent and skill keys a blueprint names, those with no published version the tenant can use
/// (its own or the platform's): `(agents, skills)`, each in the order given, without duplicates.
pub async fn missing_references(
    tx: &mut Tx,
    tenant: &TenantId,
    agents: &[String],
    skills: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    fn unique(keys: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(keys.len());
        for k in keys {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }
    let (agents, skills) = (unique(agents), unique(skills));
    let published_agents = store::published_agent_keys(tx, tenant, &agents).await?;
    let published_skills = store::published_skill_keys(tx, tenant, &skills).await?;
    Ok((
        agents.into_iter().filter(|k| !published_agents.contains(k)).collect(),
        skills.into_iter().filter(|k| !published_skills.contains(k)).collect(),
    ))
}

/// Resolves an agent's skills for publication over the skills `owner` can use (a platform agent: the
/// platform's only): each ref gets the newest published version in its range. `BAD_USER_INPUT` naming every
/// ref that resolves to nothing.
pub async fn resolve_skills(tx: &mut Tx, owner: &TenantId, refs: &[SkillRef]) -> Result<Vec<SkillRef>> {
    let keys: Vec<String> = refs.iter().map(|r| r.skill_key.clone()).collect();
    let candidates = store::skills_of_keys(tx, owner, &keys).await?;
    let mut out = Vec::with_capacity(refs.len());
    let mut missing = Vec::new();
    for r in refs {
        let req = version_req("skills.versionReq", &r.version_req)?;
        let of_key: Vec<SkillDefinition> = candidates.iter().filter(|s| s.key == r.skill_key).cloned().collect();
        match resolve(&of_key, Some(&req)) {
            Some(s) => out.push(SkillRef {
                resolved_version: Some(s.version.clone()),
                platform: Some(s.tenant_id.is_platform()),
                ..r.clone()
            }),
            None => missing.push(format!("{} {}", r.skill_key, r.version_req)),
        }
    }
    if !missing.is_empty() {
        let whose = if owner.is_platform() { "platform" } else { "tenant's or platform" };
        return Err(Error::bad_input("skills", format!("no published {whose} skill matches: {}", missing.join(", "))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn skill(tenant: &str, version: &str, status: DefinitionStatus) -> SkillDefinition {
        let v = Version::parse(version).unwrap();
        SkillDefinition {
            tenant_id: TenantId::try_from(tenant.to_owned()).unwrap(),
            key: "summarize".into(),
            version: version.into(),
            version_order: version_order(&v),
            name: "S".into(),
            description: String::new(),
            input_schema: json!(true),
            output_schema: json!(true),
            status,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            published_at: None,
            deprecated_at: None,
        }
    }

    #[test]
    fn keys_versions_and_ranges_are_checked() {
        assert_eq!(key("key", " web.search_v2 ").unwrap(), "web.search_v2");
        for bad in ["", "Web", "1web", "a b", &"a".repeat(65)] {
            assert!(key("key", bad).is_err(), "{bad}");
        }
        assert_eq!(version(" 1.2.3-rc.1 ").unwrap().to_string(), "1.2.3-rc.1");
        assert!(version("1.2").is_err() && version("1.2.3+build.5").is_err());
        assert!(version_req("r", "^1.2, <1.9").is_ok() && version_req("r", "one").is_err());
        assert!(skill_refs(vec![("a".into(), "^1".into()), ("a".into(), "^2".into())]).is_err());
    }

    #[test]
    fn version_order_sorts_like_semver_for_numbers_and_pre_releases() {
        let o = |s: &str| version_order(&Version::parse(s).unwrap());
        assert!(o("1.9.0") < o("1.10.0"));
        assert!(o("1.0.0-rc.1") < o("1.0.0"));
        assert!(o("1.0.0") < o("1.0.1-alpha"));
        assert!(o("1.0.0-rc.2") < o("1.0.0-rc.10"));
        assert!(o("1.0.0-alpha") < o("1.0.0-beta") && o("1.0.0-1") < o("1.0.0-alpha"));
    }

    #[test]
    fn schemas_are_meta_validated() {
        let ok = json!({ "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] });
        assert_eq!(json_schema("inputSchema", ok.clone()).unwrap(), ok);
        assert!(json_schema("inputSchema", json!(true)).is_ok());
        let e = json_schema("inputSchema", json!({ "type": "strin" })).unwrap_err();
        assert_eq!(e.code(), kernel::Code::BadUserInput);
        assert!(e.message().contains("inputSchema is not a valid JSON Schema"), "{}", e.message());
        assert!(json_schema("outputSchema", json!({ "minLength": -1 })).is_err());
        assert!(json_schema("outputSchema", json!({ "pattern": "(" })).is_err());
        assert!(json_schema("outputSchema", json!({ "$ref": "https://example.com/s.json" })).is_err());
        assert!(json_schema("outputSchema", json!([1])).is_err());
    }

    #[test]
    fn model_requirements_are_typed() {
        let r = ModelRequirements::parse(json!({ "providers": ["openai", "anthropic"], "minContextTokens": 32000 }))
            .unwrap();
        assert_eq!(r.providers, vec!["anthropic", "openai"]);
        assert!(ModelRequirements::parse(json!({ "provider": ["x"] })).is_err());
        assert!(ModelRequirements::parse(json!({ "maxCostPerTaskUsd": -1 })).is_err());
        assert!(ModelRequirements::parse(json!([])).is_err());
    }

    #[test]
    fn resolution_takes_the_newest_published_in_range_and_the_owners_on_a_tie() {
        use DefinitionStatus::*;
        let c = vec![
            skill("acme", "1.2.0", Published),
            skill("platform", "1.4.0", Published),
            skill("acme", "1.5.0", Draft),
            skill("acme", "1.6.0", Deprecated),
            skill("acme", "2.0.0", Published),
            skill("platform", "2.0.0", Published),
        ];
        let r = |req: &str| {
            resolve(&c, Some(&VersionReq::parse(req).unwrap())).map(|s| (s.tenant_id.to_string(), s.version.clone()))
        };
        assert_eq!(r("^1"), Some(("platform".into(), "1.4.0".into())));
        assert_eq!(r("^2"), Some(("acme".into(), "2.0.0".into())));
        assert_eq!(r("^3"), None);
        assert_eq!(resolve(&c, None).map(|s| s.tenant_id.as_str()), Some("acme"));
        assert_eq!(exact(&c, "2.0.0").map(|s| s.tenant_id.as_str()), Some("acme"));
        assert_eq!(exact(&c, "1.4.0").map(|s| s.tenant_id.as_str()), Some("platform"));
    }
}
