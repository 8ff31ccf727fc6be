//! The registries' SQL. Every statement names the tenant; reads that take the platform's definitions too
//! name `'platform'` beside it, and row-level security shows a tenant only the platform's non-drafts.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;
use sqlx::types::Json;

use super::{AgentDefinition, DefinitionStatus, ModelRequirements, SkillDefinition, SkillRef};

const SKILL_IMMUTABLE: &str = "skill_definitions_immutable";
const AGENT_IMMUTABLE: &str = "agent_definitions_immutable";

fn immutable(what: &str, key: &str, version: &str) -> Error {
    Error::conflict(format!("{what} `{key}@{version}` is no longer a draft and is immutable"))
}

/// A listing's position: after (key, version order, owner).
pub type After<'a> = Option<(&'a str, &'a str, &'a str)>;

// ---- skills ----

/// A new skill draft, validated (`registry::NewSkill::parse`).
pub struct NewSkill {
    pub key: String,
    pub version: String,
    pub version_order: String,
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Value,
}

pub async fn insert_skill(tx: &mut Tx, tenant: &TenantId, s: &NewSkill) -> Result<SkillDefinition> {
    sqlx::query_as!(
        SkillDefinition,
        r#"INSERT INTO skill_definitions (tenant_id, skill_key, version, version_order, name, description,
                                          input_schema, output_schema)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING tenant_id AS "tenant_id: TenantId", skill_key AS key, version, version_order, name, description,
                     input_schema, output_schema, status AS "status: DefinitionStatus", created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        s.key,
        s.version,
        s.version_order,
        s.name,
        s.description,
        &s.input_schema,
        &s.output_schema,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("skill_definitions_pkey", || {
        Error::conflict(format!("skill `{}@{}` already exists", s.key, s.version))
    })
}

/// One version of the tenant's own skill, locked for a change.
pub async fn lock_skill(tx: &mut Tx, tenant: &TenantId, key: &str, version: &str) -> Result<Option<SkillDefinition>> {
    Ok(sqlx::query_as!(
        SkillDefinition,
        r#"SELECT tenant_id AS "tenant_id: TenantId", skill_key AS key, version, version_order, name, description,
                  input_schema, output_schema, status AS "status: DefinitionStatus", created_at, updated_at,
                  published_at, deprecated_at
           FROM skill_definitions WHERE tenant_id = $1 AND skill_key = $2 AND version = $3 FOR UPDATE"#,
        tenant.as_str(),
        key,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Writes a skill's editable fields and status (the trigger refuses anything but a draft's edit,
/// publication or deprecation).
pub async fn update_skill(tx: &mut Tx, tenant: &TenantId, s: &SkillDefinition) -> Result<SkillDefinition> {
    sqlx::query_as!(
        SkillDefinition,
        r#"UPDATE skill_definitions
           SET name = $4, description = $5, input_schema = $6, output_schema = $7, status = $8,
               published_at = $9, deprecated_at = $10, updated_at = now()
           WHERE tenant_id = $1 AND skill_key = $2 AND version = $3
           RETURNING tenant_id AS "tenant_id: TenantId", skill_key AS key, version, version_order, name, description,
                     input_schema, output_schema, status AS "status: DefinitionStatus", created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        s.key,
        s.version,
        s.name,
        s.description,
        s.input_schema,
        s.output_schema,
        s.status.as_str(),
        s.published_at,
        s.deprecated_at,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint(SKILL_IMMUTABLE, || immutable("skill", &s.key, &s.version))
}

/// Every version of the skills `keys` that `tenant` can use (its own, any status, and the platform's
/// non-drafts), for resolution and lookups.
pub async fn skills_of_keys(tx: &mut Tx, tenant: &TenantId, keys: &[String]) -> Result<Vec<SkillDefinition>> {
    Ok(sqlx::query_as!(
        SkillDefinition,
        r#"SELECT tenant_id AS "tenant_id: TenantId", skill_key AS key, version, version_order, name, description,
                  input_schema, output_schema, status AS "status: DefinitionStatus", created_at, updated_at,
                  published_at, deprecated_at
           FROM skill_definitions
           WHERE (tenant_id = $1 OR (tenant_id = 'platform' AND status <> 'Draft')) AND skill_key = ANY($2)
           ORDER BY skill_key, version_order, tenant_id"#,
        tenant.as_str(),
        keys,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// One page of the skills `tenant` can see, in (key, version, owner) order, optionally the platform's too.
pub async fn page_of_skills(
    tx: &mut Tx,
    tenant: &TenantId,
    include_platform: bool,
    key: Option<&str>,
    status: Option<DefinitionStatus>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<SkillDefinition>> {
    Ok(sqlx::query_as!(
        SkillDefinition,
        r#"SELECT tenant_id AS "tenant_id: TenantId", skill_key AS key, version, version_order, name, description,
                  input_schema, output_schema, status AS "status: DefinitionStatus", created_at, updated_at,
                  published_at, deprecated_at
           FROM skill_definitions
           WHERE (tenant_id = $1 OR ($2 AND tenant_id = 'platform' AND status <> 'Draft'))
             AND ($3::text IS NULL OR skill_key = $3)
             AND ($4::text IS NULL OR status = $4)
             AND ($5::text IS NULL OR (skill_key, version_order, tenant_id) > ($5, $6::text, $7::text))
           ORDER BY skill_key, version_order, tenant_id
           LIMIT $8"#,
        tenant.as_str(),
        include_platform,
        key,
        status.map(DefinitionStatus::as_str),
        after.map(|a| a.0),
        after.map(|a| a.1),
        after.map(|a| a.2),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Which of `keys` have a published skill version `tenant` can use (its own or the platform's).
pub async fn published_skill_keys(tx: &mut Tx, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT skill_key AS "key!" FROM skill_definitions
           WHERE tenant_id IN ($1, 'platform') AND skill_key = ANY($2) AND status = 'Published'"#,
        tenant.as_str(),
        keys,
    )
    .fetch_all(&mut **tx)
    .await?)
}

// ---- agents ----

/// An agent row as stored (its JSON columns typed).
struct AgentRow {
    tenant_id: TenantId,
    key: String,
    version: String,
    version_order: String,
    name: String,
    description: String,
    capabilities: Vec<String>,
    skills: Json<Vec<SkillRef>>,
    model_requirements: Json<ModelRequirements>,
    status: DefinitionStatus,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    deprecated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<AgentRow> for AgentDefinition {
    fn from(r: AgentRow) -> Self {
        AgentDefinition {
            tenant_id: r.tenant_id,
            key: r.key,
            version: r.version,
            version_order: r.version_order,
            name: r.name,
            description: r.description,
            capabilities: r.capabilities,
            skills: r.skills.0,
            model_requirements: r.model_requirements.0,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            deprecated_at: r.deprecated_at,
        }
    }
}

/// A new agent draft, validated.
pub struct NewAgent {
    pub key: String,
    pub version: String,
    pub version_order: String,
    pub name: String,
    pub description: String,
    pub capabilities: Vec<String>,
    pub skills: Vec<SkillRef>,
    pub model_requirements: ModelRequirements,
}

pub async fn insert_agent(tx: &mut Tx, tenant: &TenantId, a: &NewAgent) -> Result<AgentDefinition> {
    sqlx::query_as!(
        AgentRow,
        r#"INSERT INTO agent_definitions (tenant_id, agent_key, version, version_order, name, description,
                                          capabilities, skills, model_requirements)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING tenant_id AS "tenant_id: TenantId", agent_key AS key, version, version_order, name, description,
                     capabilities, skills AS "skills: Json<Vec<SkillRef>>",
                     model_requirements AS "model_requirements: Json<ModelRequirements>",
                     status AS "status: DefinitionStatus", created_at, updated_at, published_at, deprecated_at"#,
        tenant.as_str(),
        a.key,
        a.version,
        a.version_order,
        a.name,
        a.description,
        &a.capabilities,
        Json(&a.skills) as _,
        Json(&a.model_requirements) as _,
    )
    .fetch_one(&mut **tx)
    .await
    .map(AgentDefinition::from)
    .on_constraint("agent_definitions_pkey", || {
        Error::conflict(format!("agent `{}@{}` already exists", a.key, a.version))
    })
}

/// One version of the tenant's own agent, locked for a change.
pub async fn lock_agent(tx: &mut Tx, tenant: &TenantId, key: &str, version: &str) -> Result<Option<AgentDefinition>> {
    Ok(sqlx::query_as!(
        AgentRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", agent_key AS key, version, version_order, name, description,
                  capabilities, skills AS "skills: Json<Vec<SkillRef>>",
                  model_requirements AS "model_requirements: Json<ModelRequirements>",
                  status AS "status: DefinitionStatus", created_at, updated_at, published_at, deprecated_at
           FROM agent_definitions WHERE tenant_id = $1 AND agent_key = $2 AND version = $3 FOR UPDATE"#,
        tenant.as_str(),
        key,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?
    .map(AgentDefinition::from))
}

/// Writes an agent's editable fields and status (the trigger refuses anything but a draft's edit,
/// publication or deprecation).
pub async fn update_agent(tx: &mut Tx, tenant: &TenantId, a: &AgentDefinition) -> Result<AgentDefinition> {
    sqlx::query_as!(
        AgentRow,
        r#"UPDATE agent_definitions
           SET name = $4, description = $5, capabilities = $6, skills = $7, model_requirements = $8, status = $9,
               published_at = $10, deprecated_at = $11, updated_at = now()
           WHERE tenant_id = $1 AND agent_key = $2 AND version = $3
           RETURNING tenant_id AS "tenant_id: TenantId", agent_key AS key, version, version_order, name, description,
                     capabilities, skills AS "skills: Json<Vec<SkillRef>>",
                     model_requirements AS "model_requirements: Json<ModelRequirements>",
                     status AS "status: DefinitionStatus", created_at, updated_at, published_at, deprecated_at"#,
        tenant.as_str(),
        a.key,
        a.version,
        a.name,
        a.description,
        &a.capabilities,
        Json(&a.skills) as _,
        Json(&a.model_requirements) as _,
        a.status.as_str(),
        a.published_at,
        a.deprecated_at,
    )
    .fetch_one(&mut **tx)
    .await
    .map(AgentDefinition::from)
    .on_constraint(AGENT_IMMUTABLE, || immutable("agent", &a.key, &a.version))
}

/// Every version of the agent `key` that `tenant` can use (its own, any status, and the platform's
/// non-drafts).
pub async fn agent_versions(tx: &mut Tx, tenant: &TenantId, key: &str) -> Result<Vec<AgentDefinition>> {
    Ok(sqlx::query_as!(
        AgentRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", agent_key AS key, version, version_order, name, description,
                  capabilities, skills AS "skills: Json<Vec<SkillRef>>",
                  model_requirements AS "model_requirements: Json<ModelRequirements>",
                  status AS "status: DefinitionStatus", created_at, updated_at, published_at, deprecated_at
           FROM agent_definitions
           WHERE (tenant_id = $1 OR (tenant_id = 'platform' AND status <> 'Draft')) AND agent_key = $2
           ORDER BY version_order, tenant_id"#,
        tenant.as_str(),
        key,
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(AgentDefinition::from)
    .collect())
}

/// One page of the agents `tenant` can see, in (key, version, owner) order, optionally the platform's too.
pub async fn page_of_agents(
    tx: &mut Tx,
    tenant: &TenantId,
    include_platform: bool,
    key: Option<&str>,
    status: Option<DefinitionStatus>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<AgentDefinition>> {
    Ok(sqlx::query_as!(
        AgentRow,
        r#"SELECT tenant_id AS "tenant_id: TenantId", agent_key AS key, version, version_order, name, description,
                  capabilities, skills AS "skills: Json<Vec<SkillRef>>",
                  model_requirements AS "model_requirements: Json<ModelRequirements>",
                  status AS "status: DefinitionStatus", created_at, updated_at, published_at, deprecated_at
           FROM agent_definitions
           WHERE (tenant_id = $1 OR ($2 AND tenant_id = 'platform' AND status <> 'Draft'))
             AND ($3::text IS NULL OR agent_key = $3)
             AND ($4::text IS NULL OR status = $4)
             AND ($5::text IS NULL OR (agent_key, version_order, tenant_id) > ($5, $6::text, $7::text))
           ORDER BY agent_key, version_order, tenant_id
           LIMIT $8"#,
        tenant.as_str(),
        include_platform,
        key,
        status.map(DefinitionStatus::as_str),
        after.map(|a| a.0),
        after.map(|a| a.1),
        after.map(|a| a.2),
        limit,
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(AgentDefinition::from)
    .collect())
}

/// Which of `keys` have a published agent version `tenant` can use (its own or the platform's).
pub async fn published_agent_keys(tx: &mut Tx, tenant: &TenantId, keys: &[String]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT agent_key AS "key!" FROM agent_definitions
           WHERE tenant_id IN ($1, 'platform') AND agent_key = ANY($2) AND status = 'Published'"#,
        tenant.as_str(),
        keys,
    )
    .fetch_all(&mut **tx)
    .await?)
}
