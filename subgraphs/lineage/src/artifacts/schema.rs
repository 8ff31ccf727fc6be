//! Artifacts' share of the query and mutation roots, and the entities lineage contributes to.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::pagination::Page;
use kernel::permissions::lineage::{READ, WRITE};
use kernel::{Authorize, Error, Result, Work};

use super::store::{self, Precedence, Scope};
use super::{Artifact, ArtifactVersion, Classification, NewArtifact, NewVersion, VersionStatus};
use crate::ids::{ArtifactId, ModuleId, ProjectId};
use crate::redaction::{Redaction, RedactionInfo};
use crate::state;

/// An artifact: what a producer makes again and again, one content per version.
#[Object(name = "Artifact")]
impl Artifact {
    async fn id(&self) -> ID {
        ID(self.artifact_id.to_string())
    }
    async fn artifact_type(&self) -> &str {
        &self.artifact_type
    }
    async fn name(&self) -> &str {
        &self.name
    }
    /// The catalogue project it belongs to.
    async fn project_id(&self) -> Option<ID> {
        self.project_id.map(|p| ID(p.to_string()))
    }
    /// The catalogue module it belongs to.
    async fn module_id(&self) -> Option<ID> {
        self.module_id.map(|m| ID(m.to_string()))
    }
    async fn classification(&self) -> Classification {
        self.classification
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// Its versions, newest first: by semver precedence (a pre-release below its release; pre-releases of
    /// one number by when they were recorded). Only those in `status`, when given.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        status: Option<Vec<VersionStatus>>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ArtifactVersion>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let after = page.after.as_deref().map(Precedence::parse).transpose()?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::versions(
            &mut tx,
            tenant.tenant(),
            &self.artifact_id,
            status.as_deref(),
            after.as_ref(),
            page.fetch_limit(),
        )
        .await?;
        tx.commit().await?;
        Ok(page.connection(rows, |v| Precedence::of(v).map(|p| p.cursor()).unwrap_or_default()))
    }

    /// One version, exactly.
    async fn version(&self, ctx: &Context<'_>, version: String) -> Result<Option<ArtifactVersion>> {
        let tenant = ctx.authorize(READ)?;
        let v = super::version("version", &version)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let found = store::version(&mut tx, tenant.tenant(), &self.artifact_id, &v.to_string()).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The published version (at most one: publishing another supersedes it).
    async fn latest(&self, ctx: &Context<'_>) -> Result<Option<ArtifactVersion>> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let found = store::published(&mut tx, tenant.tenant(), &self.artifact_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The highest released (published or superseded) version that the semver range matches (`^1.2`,
    /// `>=1.0, <2`, `~1.4.1`; a pre-release matches only a range that names its numbers, as in Cargo).
    #[graphql(complexity = "20 + child_complexity")]
    async fn resolve(&self, ctx: &Context<'_>, range: String) -> Result<Option<ArtifactVersion>> {
        let tenant = ctx.authorize(READ)?;
        let req = super::range("range", &range)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let found = super::resolve(&mut tx, tenant.tenant(), &self.artifact_id, &req).await?;
        tx.commit().await?;
        Ok(found)
    }
}

/// One version of an artifact: one content, who made it, where its body is stored, where it stands.
#[Object(name = "ArtifactVersion")]
impl ArtifactVersion {
    async fn artifact_id(&self) -> ID {
        ID(self.artifact_id.to_string())
    }
    async fn version(&self) -> &str {
        &self.version
    }
    /// `sha256:` and 64 hex digits.
    async fn content_hash(&self) -> &str {
        &self.content_hash
    }
    async fn status(&self) -> VersionStatus {
        self.status
    }
    /// The catalogue agent and skill that produced it.
    async fn produced_by_agent_id(&self) -> Option<&str> {
        self.produced_by_agent_id.as_deref()
    }
    async fn produced_by_skill_id(&self) -> Option<&str> {
        self.produced_by_skill_id.as_deref()
    }
    /// The workflow agent task that produced it.
    async fn produced_by_task_id(&self) -> Option<ID> {
        self.produced_by_task_id.map(|t| ID(t.to_string()))
    }
    async fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
    /// The catalogue blueprint it was generated from.
    async fn source_blueprint_id(&self) -> Option<ID> {
        self.source_blueprint_id.map(|b| ID(b.to_string()))
    }
    /// Where its body is stored (`blob://artifacts/…`); versions of the artifact with identical content
    /// share one.
    async fn storage_ref(&self) -> &str {
        &self.storage_ref
    }
    /// What the producer said of it beyond the metadata (a JSON object). Sensitive: `null` for callers
    /// without `lineage:read-restricted` when the artifact is confidential or restricted (`redaction`
    /// says so).
    async fn attributes(&self, ctx: &Context<'_>) -> Result<Option<async_graphql::Json<serde_json::Value>>> {
        if self.redaction(ctx).await?.is_some() {
            return Ok(None);
        }
        Ok(self.attributes.clone().map(async_graphql::Json))
    }
    /// Its body in blob storage: whether it was uploaded, its size, and where to download it (with the same
    /// bearer token, through the public endpoint). Sensitive: `null` for callers without
    /// `lineage:read-restricted` when the artifact is confidential or restricted.
    async fn body(&self, ctx: &Context<'_>) -> Result<Option<ArtifactBody>> {
        if self.redaction(ctx).await?.is_some() {
            return Ok(None);
        }
        let row = crate::loaders::loader(ctx)?.load_one(crate::loaders::BodyAt(self.storage_ref.clone())).await?;
        Ok(Some(ArtifactBody {
            state: row.as_ref().map_or(ArtifactBodyState::Missing, |r| match r.state {
                crate::bodies::BodyState::Uploading => ArtifactBodyState::Uploading,
                crate::bodies::BodyState::Stored => ArtifactBodyState::Stored,
            }),
            size: row.as_ref().and_then(|r| r.size).map(|s| s.to_string()),
            stored_at: row.as_ref().and_then(|r| r.stored_at),
            path: crate::bodies::routes::body_path(&self.artifact_id, &self.version),
        }))
    }
    /// What is withheld from the caller (`null` when nothing is): the sensitive fields of a confidential
    /// or restricted artifact, for callers without `lineage:read-restricted`.
    async fn redaction(&self, ctx: &Context<'_>) -> Result<Option<RedactionInfo>> {
        ctx.authorize(READ)?;
        let artifact = crate::loaders::loader(ctx)?
            .load_one(crate::loaders::ArtifactOf(self.artifact_id.clone()))
            .await?
            .ok_or_else(|| super::not_found(&self.artifact_id))?;
        Ok(Redaction::of(ctx, artifact.classification).map(Redaction::info))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.published_at
    }
}

/// Where a version's body stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactBodyState {
    /// Not uploaded yet.
    Missing,
    /// An upload is under way.
    Uploading,
    /// In blob storage, whole, its sha256 the version's `contentHash`.
    Stored,
}

/// A version's body, uploaded and downloaded over HTTP (`PUT` / `GET` its `path` on the public endpoint,
/// with the bearer token), never as a GraphQL string.
#[derive(SimpleObject)]
pub struct ArtifactBody {
    pub state: ArtifactBodyState,
    /// Bytes, once stored (a decimal string: bodies may pass 2^31).
    pub size: Option<String>,
    pub stored_at: Option<DateTime<Utc>>,
    /// `/api/v1/artifacts/{artifactId}/versions/{version}/body`.
    pub path: String,
}

#[derive(InputObject)]
pub struct RegisterArtifactInput {
    /// The producer's id for it: 1–200 letters, digits, `.`, `_`, `:`, `-`.
    pub id: String,
    /// What it is (`document`, `build`, `model`): 1–63 lower-case letters, digits, `.`, `_`, `-`.
    pub artifact_type: String,
    pub name: String,
    pub project_id: Option<ID>,
    pub module_id: Option<ID>,
    #[graphql(default_with = "Classification::Internal")]
    pub classification: Classification,
}

/// How a version is recorded.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RecordedAs {
    Draft,
    Generated,
}

#[derive(InputObject)]
pub struct RecordArtifactVersionInput {
    pub artifact_id: ID,
    /// A semver version.
    pub version: String,
    /// `sha256:` and 64 lower-case hex digits.
    pub content_hash: String,
    #[graphql(default_with = "RecordedAs::Generated")]
    pub status: RecordedAs,
    pub produced_by_agent_id: Option<String>,
    pub produced_by_skill_id: Option<String>,
    pub produced_by_task_id: Option<ID>,
    pub trace_id: Option<String>,
    pub source_blueprint_id: Option<ID>,
    /// What the producer says of it beyond the metadata: a JSON object of at most 16 KiB (sensitive:
    /// redacted like the body on confidential and restricted artifacts).
    pub attributes: Option<async_graphql::Json<serde_json::Value>>,
    /// The versions it was derived from (the tenant's, recorded already; at most 20): each becomes a
    /// DERIVED edge of the lineage graph.
    #[graphql(default)]
    pub derived_from: Vec<ArtifactVersionRef>,
}

/// An artifact version, by artifact and version.
#[derive(InputObject)]
pub struct ArtifactVersionRef {
    pub artifact_id: ID,
    pub version: String,
}

fn artifact_id(field: &str, id: &ID) -> Result<ArtifactId> {
    ArtifactId::parse(field, id.as_str())
}

/// A version's attributes as given: a JSON object of at most 16 KiB, without NUL characters.
fn attributes(raw: serde_json::Value) -> Result<serde_json::Value> {
    if !raw.is_object() {
        return Err(Error::bad_input("attributes", "attributes are a JSON object"));
    }
    kernel::error::no_nul("attributes", &raw)?;
    if serde_json::to_vec(&raw).map_or(usize::MAX, |b| b.len()) > 16 * 1024 {
        return Err(Error::bad_input("attributes", "attributes are at most 16 KiB of JSON"));
    }
    Ok(raw)
}

fn derived_from(refs: Vec<ArtifactVersionRef>) -> Result<Vec<(ArtifactId, semver::Version)>> {
    if refs.len() > super::MAX_DERIVED_FROM {
        return Err(Error::bad_input(
            "derivedFrom",
            format!("a version is derived from at most {} others", super::MAX_DERIVED_FROM),
        ));
    }
    refs.into_iter()
        .map(|r| Ok((artifact_id("derivedFrom", &r.artifact_id)?, super::version("derivedFrom", &r.version)?)))
        .collect()
}

fn optional_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>> {
    raw.map(|r| kernel::error::text(field, &r, max)).transpose()
}

fn uuid_of(field: &str, id: Option<ID>) -> Result<Option<uuid::Uuid>> {
    id.map(|i| {
        uuid::Uuid::parse_str(i.as_str()).map_err(|_| Error::bad_input(field, format!("`{field}` is not a UUID")))
    })
    .transpose()
}

#[derive(Default)]
pub struct ArtifactQuery;

#[Object]
impl ArtifactQuery {
    /// An artifact of the caller's tenant.
    async fn artifact(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Artifact>> {
        let tenant = ctx.authorize(READ)?;
        let id = artifact_id("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let a = store::get(&mut tx, tenant.tenant(), &id).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// The tenant's artifacts (of one project or module, when given) in id order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        module_id: Option<ID>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Artifact>> {
        let scope = match (project_id, module_id) {
            (Some(_), Some(_)) => return Err(Error::bad_input("moduleId", "give a project or a module, not both")),
            (Some(p), None) => Scope::Project(ProjectId::from_id("projectId", &p)?),
            (None, Some(m)) => Scope::Module(ModuleId::from_id("moduleId", &m)?),
            (None, None) => Scope::Tenant,
        };
        artifacts(ctx, scope, first, after).await
    }

    /// Lets the router resolve an `Artifact` other subgraphs reference.
    #[graphql(entity)]
    async fn find_artifact_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Artifact> {
        self.artifact(ctx, id.clone()).await?.ok_or_else(|| Error::not_found(format!("no artifact `{}`", id.as_str())))
    }

    /// Lets the router ask lineage for `Project.artifacts`.
    #[graphql(entity)]
    async fn find_project_by_id(&self, id: ID) -> Project {
        Project { id }
    }

    /// Lets the router ask lineage for `Module.artifacts`.
    #[graphql(entity)]
    async fn find_module_by_id(&self, id: ID) -> Module {
        Module { id }
    }

    /// Lets the router ask lineage for `AgentTask.outputArtifacts`.
    #[graphql(entity)]
    async fn find_agent_task_by_id(&self, id: ID) -> AgentTask {
        AgentTask { id }
    }
}

/// Workflow's agent task, with the artifact versions lineage recorded from its outputs.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AgentTask {
    pub id: ID,
}

#[ComplexObject]
impl AgentTask {
    /// The artifact versions recorded from the task's outputs (its `outputs` name them), by artifact and
    /// version.
    async fn output_artifacts(&self, ctx: &Context<'_>) -> Result<Vec<ArtifactVersion>> {
        ctx.authorize(READ)?;
        let task = uuid::Uuid::parse_str(self.id.as_str())
            .map_err(|_| Error::bad_input("id", "an agent task's id is a UUID"))?;
        Ok(crate::loaders::loader(ctx)?.load_one(crate::loaders::OutputsOf(task)).await?.unwrap_or_default())
    }
}

/// A page of artifacts of `scope`.
async fn artifacts(
    ctx: &Context<'_>,
    scope: Scope,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Artifact>> {
    let tenant = ctx.authorize(READ)?;
    let page = Page::forward(after, first, 20)?;
    let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
    let rows = store::page(&mut tx, tenant.tenant(), scope, page.after.as_deref(), page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(page.connection(rows, |a| a.artifact_id.to_string()))
}

/// Catalogue's project, with its artifacts.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Project {
    pub id: ID,
}

#[ComplexObject]
impl Project {
    /// The project's artifacts, in id order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Artifact>> {
        artifacts(ctx, Scope::Project(ProjectId::from_id("id", &self.id)?), first, after).await
    }
}

/// Catalogue's module, with its artifacts.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Module {
    pub id: ID,
}

#[ComplexObject]
impl Module {
    /// The module's artifacts, in id order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Artifact>> {
        artifacts(ctx, Scope::Module(ModuleId::from_id("id", &self.id)?), first, after).await
    }
}

#[derive(Default)]
pub struct ArtifactMutation;

#[Object]
impl ArtifactMutation {
    /// Registers an artifact (the same registration again changes nothing; a different one with its id is
    /// `CONFLICT`). Emits `ArtifactRegistered`.
    async fn register_artifact(&self, ctx: &Context<'_>, input: RegisterArtifactInput) -> Result<Artifact> {
        let tenant = ctx.authorize(WRITE)?;
        let artifact_type = input.artifact_type.trim().to_owned();
        if !super::is_artifact_type(&artifact_type) {
            return Err(Error::bad_input(
                "artifactType",
                "an artifact type is 1–63 lower-case letters, digits, `.`, `_`, `-`",
            ));
        }
        let new = NewArtifact {
            artifact_id: artifact_id("id", &ID(input.id))?,
            artifact_type,
            name: kernel::error::text("name", &input.name, 200)?,
            project_id: input.project_id.as_ref().map(|p| ProjectId::from_id("projectId", p)).transpose()?,
            module_id: input.module_id.as_ref().map(|m| ModuleId::from_id("moduleId", m)).transpose()?,
            classification: input.classification,
        };
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let a = super::register(&mut work, tenant.tenant(), new).await?;
        work.commit().await?;
        Ok(a)
    }

    /// Sets who may read the artifact's bodies and sensitive fields. Emits `ArtifactClassified`.
    async fn classify_artifact(&self, ctx: &Context<'_>, id: ID, classification: Classification) -> Result<Artifact> {
        let tenant = ctx.authorize(WRITE)?;
        let id = artifact_id("id", &id)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let a = super::classify(&mut work, tenant.tenant(), &id, classification).await?;
        work.commit().await?;
        Ok(a)
    }

    /// Records a version (`GENERATED` unless `DRAFT`): the same version with the same content again changes
    /// nothing; with other content it is `CONFLICT`. Emits `ArtifactVersionRecorded`.
    async fn record_artifact_version(
        &self,
        ctx: &Context<'_>,
        input: RecordArtifactVersionInput,
    ) -> Result<ArtifactVersion> {
        let tenant = ctx.authorize(WRITE)?;
        let new = NewVersion {
            artifact_id: artifact_id("artifactId", &input.artifact_id)?,
            version: super::version("version", &input.version)?,
            content_hash: super::content_hash("contentHash", &input.content_hash)?,
            status: match input.status {
                RecordedAs::Draft => VersionStatus::Draft,
                RecordedAs::Generated => VersionStatus::Generated,
            },
            produced_by_agent_id: optional_text("producedByAgentId", input.produced_by_agent_id, 200)?,
            produced_by_skill_id: optional_text("producedBySkillId", input.produced_by_skill_id, 200)?,
            produced_by_task_id: uuid_of("producedByTaskId", input.produced_by_task_id)?,
            trace_id: optional_text("traceId", input.trace_id, 200)?,
            source_blueprint_id: uuid_of("sourceBlueprintId", input.source_blueprint_id)?,
            attributes: input.attributes.map(|a| attributes(a.0)).transpose()?,
            derived_from: derived_from(input.derived_from)?,
        };
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let v = super::record(&mut work, tenant.tenant(), new).await?;
        work.commit().await?;
        Ok(v)
    }

    /// Moves a version on: DRAFT → GENERATED → VALIDATED | REJECTED, VALIDATED → PUBLISHED (superseding
    /// the version published before, in the same transaction). `CONFLICT` naming both statuses for any
    /// other move. Emits `ArtifactVersionStatusChanged`.
    async fn change_artifact_version_status(
        &self,
        ctx: &Context<'_>,
        artifact_id: ID,
        version: String,
        status: VersionStatus,
    ) -> Result<ArtifactVersion> {
        let tenant = ctx.authorize(WRITE)?;
        let id = self::artifact_id("artifactId", &artifact_id)?;
        let version = super::version("version", &version)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let v = super::transition(&mut work, tenant.tenant(), &id, &version, status).await?;
        work.commit().await?;
        Ok(v)
    }
}
