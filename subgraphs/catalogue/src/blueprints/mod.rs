//! Blueprints: named, versioned designs of a project (several per project, names unique within it), their
//! validation, and the context maps and domain models derived from validated versions.
//!
//! **Versions** are numbered 1, 2, … and go `Draft → Validated → Superseded`. A blueprint has at most one
//! draft, whose definition `draftBlueprintVersion` replaces (or creates, numbered after the newest version).
//! A validated version is immutable: the API refuses changes with `CONFLICT`, and a trigger refuses any
//! `UPDATE` of its content and any `DELETE` (its one remaining change is becoming `Superseded` when a later
//! version is validated).
//!
//! **The definition** is a JSON object of at most 256 KiB (anything else is `BAD_USER_INPUT` at draft time):
//!
//! ```json
//! {
//!   "modules": ["billing", "ledger"],
//!   "dependencies": [{ "from": "billing", "to": "ledger", "versionConstraint": "^1.2" }],
//!   "agents": ["invoice-reviewer"],
//!   "skills": ["pdf-extract"],
//!   "contexts": [
//!     { "name": "Billing", "modules": ["billing"],
//!       "aggregates": [{ "name": "Invoice", "entities": ["InvoiceLine", "Payment"] }] },
//!     { "name": "Ledger", "modules": ["ledger"], "aggregates": [{ "name": "Account", "entities": [] }] }
//!   ],
//!   "relationships": [{ "upstream": "Ledger", "downstream": "Billing", "kind": "CUSTOMER_SUPPLIER" }]
//! }
//! ```
//!
//! Every key is optional. `modules` names modules of the project the blueprint covers; `dependencies` are
//! planned edges between modules of the project (`versionConstraint` a semver range, `*` when omitted);
//! `agents` and `skills` are registry keys; `contexts` are the bounded contexts with their modules and
//! aggregates (each with its entities); `relationships` join two declared contexts with a `kind`, one of
//! `CUSTOMER_SUPPLIER`, `CONFORMIST`, `SHARED_KERNEL`, `PARTNERSHIP`, `ANTICORRUPTION_LAYER`,
//! `OPEN_HOST_SERVICE`, `PUBLISHED_LANGUAGE`, `SEPARATE_WAYS` (case, `-` and `_` are ignored).
//!
//! **Validation** (`validateBlueprint`, or the `ValidateBlueprint` command) runs the rules of `rules.rs` —
//! structure, module / agent / skill references, no dependency cycle with the existing graph (searched only
//! from the planned edges' targets), ranges that accept the current versions — and records each finding
//! (rule, severity, message, JSON-path location) under a run id. A run without `ERROR` validates the version
//! (the previously validated one becomes `Superseded`) and emits `BlueprintVersionValidated`; every run emits
//! `BlueprintValidationCompleted`. Runs and results are kept `VALIDATION_RETENTION_MONTHS` in monthly
//! partitions (`retention.rs`).
//!
//! **Context maps** (`projection.rs`) are rebuilt from a blueprint's newest validated version whenever
//! `BlueprintVersionValidated` arrives: bounded contexts, their relationships, and their aggregates and
//! entities, queryable as `Project.contextMap`.

pub mod projection;
pub mod retention;
pub mod rules;
pub mod schema;
pub mod store;

use std::collections::{HashMap, HashSet};

use async_graphql::{ComplexObject, Context, Enum, Json, SimpleObject, ID};
use chrono::{DateTime, SubsecRound, Utc};
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use crate::events;
use crate::ids::{BlueprintId, ModuleId, ProjectId, ValidationRunId};
use rules::Finding;

/// Largest definition accepted, as JSON text (the table's check holds the same cap).
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// Most existing dependency edges one cycle check loads.
pub const MAX_REACH_EDGES: i64 = 50_000;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[graphql(name = "BlueprintVersionStatus")]
    pub enum VersionStatus {
        /// Being written: its definition may be replaced.
        Draft = "Draft",
        /// Passed validation: immutable, and the source of the context map.
        Validated = "Validated",
        /// Was validated; a later version has been validated since. Immutable.
        Superseded = "Superseded",
    }
}

kernel::text_enum! {
    /// How serious a validation finding is; a run with any `ERROR` leaves the version a draft.
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[graphql(name = "ValidationSeverity")]
    pub enum Severity {
        Error = "Error",
        Warning = "Warning",
        Info = "Info",
    }
}

kernel::text_enum! {
    /// How two bounded contexts relate (the context-mapping patterns of domain-driven design).
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum RelationshipKind {
        /// The downstream's needs are planned into the upstream's work.
        CustomerSupplier = "CustomerSupplier",
        /// The downstream adopts the upstream's model as it is.
        Conformist = "Conformist",
        /// Both share a part of the model and change it together.
        SharedKernel = "SharedKernel",
        /// Both succeed or fail together and coordinate their plans.
        Partnership = "Partnership",
        /// The downstream translates the upstream's model through a layer of its own.
        AnticorruptionLayer = "AnticorruptionLayer",
        /// The upstream offers a protocol open to every downstream.
        OpenHostService = "OpenHostService",
        /// The upstream publishes a documented shared language.
        PublishedLanguage = "PublishedLanguage",
        /// No integration: each goes its own way.
        SeparateWays = "SeparateWays",
    }
}

impl RelationshipKind {
    /// The names a definition uses, for messages.
    pub const NAMES: &'static str = "CUSTOMER_SUPPLIER, CONFORMIST, SHARED_KERNEL, PARTNERSHIP, \
                                     ANTICORRUPTION_LAYER, OPEN_HOST_SERVICE, PUBLISHED_LANGUAGE, SEPARATE_WAYS";

    /// A kind as a definition spells it: `CUSTOMER_SUPPLIER`, `customer-supplier`, `CustomerSupplier`, ….
    pub fn parse_loose(s: &str) -> Option<Self> {
        let key: String = s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        Self::ALL.iter().copied().find(|k| k.as_str().to_ascii_lowercase() == key)
    }
}

/// A blueprint: a named, versioned design of (part of) a project.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Blueprint {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub blueprint_id: BlueprintId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    /// Unique within its project.
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Blueprint {
    async fn id(&self) -> ID {
        ID(self.blueprint_id.to_string())
    }

    async fn project_id(&self) -> ID {
        ID(self.project_id.to_string())
    }

    /// The project the blueprint belongs to.
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<crate::projects::Project>> {
        let loader = crate::loaders::loader(ctx)?;
        Ok(loader.load_one(crate::projects::schema::ProjectById(self.project_id)).await?)
    }

    /// Every version, newest first.
    async fn versions(&self, ctx: &Context<'_>) -> Result<Vec<BlueprintVersion>> {
        let versions = schema::versions_of(ctx, self.blueprint_id).await?;
        kernel::server::charge(ctx, versions.len())?;
        Ok(versions)
    }

    /// One version by number.
    async fn version(&self, ctx: &Context<'_>, number: i32) -> Result<Option<BlueprintVersion>> {
        Ok(schema::versions_of(ctx, self.blueprint_id).await?.into_iter().find(|v| v.version == number))
    }

    /// The current draft, if there is one.
    async fn draft(&self, ctx: &Context<'_>) -> Result<Option<BlueprintVersion>> {
        let versions = schema::versions_of(ctx, self.blueprint_id).await?;
        Ok(versions.into_iter().find(|v| v.status == VersionStatus::Draft))
    }

    /// The validated version (the context map's source), if there is one.
    async fn validated_version(&self, ctx: &Context<'_>) -> Result<Option<BlueprintVersion>> {
        let versions = schema::versions_of(ctx, self.blueprint_id).await?;
        Ok(versions.into_iter().find(|v| v.status == VersionStatus::Validated))
    }
}

/// One version of a blueprint.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct BlueprintVersion {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub blueprint_id: BlueprintId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    /// 1, 2, … within the blueprint.
    pub version: i32,
    pub status: VersionStatus,
    #[graphql(skip)]
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    /// When the definition last changed (a validated version's never does).
    pub updated_at: DateTime<Utc>,
    pub validated_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub validated_run_id: Option<ValidationRunId>,
    pub superseded_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl BlueprintVersion {
    async fn blueprint_id(&self) -> ID {
        ID(self.blueprint_id.to_string())
    }

    /// The definition: a JSON object of at most 256 KiB with the optional keys `modules` (module names),
    /// `dependencies` (`[{from, to, versionConstraint}]`, planned edges between modules), `agents` and
    /// `skills` (registry keys), `contexts` (`[{name, modules, aggregates: [{name, entities}]}]`) and
    /// `relationships` (`[{upstream, downstream, kind}]`, `kind` one of the `RelationshipKind` values).
    async fn definition(&self) -> Json<&Value> {
        Json(&self.definition)
    }

    /// Whether the version can still change (only a draft can).
    async fn mutable(&self) -> bool {
        self.status == VersionStatus::Draft
    }

    /// The run that validated this version.
    async fn validated_run_id(&self) -> Option<ID> {
        self.validated_run_id.map(|r| ID(r.to_string()))
    }

    async fn blueprint(&self, ctx: &Context<'_>) -> Result<Option<Blueprint>> {
        Ok(crate::loaders::loader(ctx)?.load_one(schema::BlueprintById(self.blueprint_id)).await?)
    }

    /// This version's validation runs, newest first (at most `last`, default 20, up to 100; runs are kept
    /// for `VALIDATION_RETENTION_MONTHS`).
    async fn validation_runs(&self, ctx: &Context<'_>, last: Option<i32>) -> Result<Vec<ValidationRun>> {
        schema::runs_of(ctx, self, last).await
    }
}

/// One run of the validation rules over a version.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ValidationRun {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub run_id: ValidationRunId,
    #[graphql(skip)]
    pub blueprint_id: BlueprintId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    /// The version validated.
    pub version: i32,
    /// No `ERROR` finding: the run validated the version.
    pub valid: bool,
    pub errors: i32,
    pub warnings: i32,
    pub infos: i32,
    pub recorded_at: DateTime<Utc>,
    /// The findings, when the run was just made (otherwise loaded).
    #[graphql(skip)]
    pub findings: Option<Vec<ValidationResult>>,
}

#[ComplexObject]
impl ValidationRun {
    async fn run_id(&self) -> ID {
        ID(self.run_id.to_string())
    }

    async fn blueprint_id(&self) -> ID {
        ID(self.blueprint_id.to_string())
    }

    /// The run's findings in the order the rules found them.
    async fn results(&self, ctx: &Context<'_>) -> Result<Vec<ValidationResult>> {
        let results = match &self.findings {
            Some(f) => f.clone(),
            None => schema::results_of(ctx, self).await?,
        };
        kernel::server::charge(ctx, results.len())?;
        Ok(results)
    }
}

/// One finding of a validation rule.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct ValidationResult {
    /// The rule: `structure`, `module-reference`, `agent-reference`, `skill-reference`, `dependency-cycle`,
    /// `dependency-constraint` or `relationship`.
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// Where in the definition, as a JSON path (`$.contexts[1].aggregates[0].name`).
    pub location: String,
}

impl From<Finding> for ValidationResult {
    fn from(f: Finding) -> Self {
        Self { rule: f.rule.to_owned(), severity: f.severity, message: f.message, location: f.location }
    }
}

/// A project's context map: the bounded contexts and relationships of its blueprints' validated versions.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct ContextMap {
    /// The blueprint versions the map was projected from.
    pub sources: Vec<ContextMapSource>,
    /// Bounded contexts by blueprint, in definition order.
    pub contexts: Vec<BoundedContext>,
    pub relationships: Vec<ContextRelationship>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ContextMapSource {
    pub blueprint_id: ID,
    pub version: i32,
    pub projected_at: DateTime<Utc>,
}

/// A bounded context with its domain model.
#[derive(SimpleObject, Clone, Debug)]
pub struct BoundedContext {
    pub blueprint_id: ID,
    /// Unique within its blueprint.
    pub name: String,
    /// Names of the project's modules that implement it.
    pub modules: Vec<String>,
    pub aggregates: Vec<Aggregate>,
}

/// An aggregate of a bounded context and the entities inside it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "DomainAggregate")]
pub struct Aggregate {
    pub name: String,
    pub entities: Vec<String>,
}

/// `upstream` relates to `downstream` as `kind` says.
#[derive(SimpleObject, Clone, Debug)]
pub struct ContextRelationship {
    pub blueprint_id: ID,
    pub upstream: String,
    pub downstream: String,
    pub kind: RelationshipKind,
}

/// A definition from the API: a JSON object of at most [`MAX_DEFINITION_BYTES`]. Everything else about it
/// is for validation to find.
pub fn definition(raw: Value) -> Result<Value> {
    if !raw.is_object() {
        return Err(Error::bad_input("definition", "a blueprint definition must be a JSON object"));
    }
    let size = serde_json::to_vec(&raw).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_DEFINITION_BYTES {
        return Err(Error::bad_input(
            "definition",
            format!("the definition is {size} bytes as JSON; at most {MAX_DEFINITION_BYTES} are accepted"),
        ));
    }
    Ok(raw)
}

/// A blueprint to create, validated.
#[derive(Clone, Debug)]
pub struct NewBlueprint {
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
}

impl NewBlueprint {
    pub fn parse(project_id: ProjectId, name: &str, description: &str) -> Result<Self> {
        Ok(Self {
            project_id,
            name: kernel::error::text("name", name, 200)?,
            description: crate::projects::description_text(description)?,
        })
    }
}

/// Creates a blueprint in a writable project. Emits `BlueprintCreated`.
pub async fn create(work: &mut Work, tenant: &TenantId, b: &NewBlueprint) -> Result<Blueprint> {
    crate::projects::writable(work, tenant, b.project_id).await?;
    let blueprint = store::insert(work, tenant, BlueprintId::new_v7(), b).await?;
    let event = events::BlueprintCreated {
        blueprint_id: blueprint.blueprint_id,
        project_id: blueprint.project_id,
        name: blueprint.name.clone(),
    };
    work.emit(tenant, &event).await?;
    Ok(blueprint)
}

/// Locks a blueprint whose project accepts changes: `NOT_FOUND` (also another tenant's) or `CONFLICT`.
pub async fn writable(work: &mut Work, tenant: &TenantId, id: BlueprintId) -> Result<Blueprint> {
    let b = store::lock(work, tenant, id).await?.ok_or_else(|| Error::not_found(format!("no blueprint `{id}`")))?;
    crate::projects::writable(work, tenant, b.project_id).await?;
    Ok(b)
}

fn immutable(v: &BlueprintVersion) -> Error {
    Error::conflict(format!(
        "version {} is {} and immutable; draft a new version instead",
        v.version,
        v.status.as_str().to_lowercase()
    ))
}

/// Replaces the draft's definition, or creates the next version as a draft. `expected` (if given) must be
/// the draft's number: naming a validated version is `CONFLICT`. Emits `BlueprintVersionDrafted`.
pub async fn draft(
    work: &mut Work,
    tenant: &TenantId,
    blueprint_id: BlueprintId,
    expected: Option<i32>,
    definition: &Value,
) -> Result<BlueprintVersion> {
    let b = writable(work, tenant, blueprint_id).await?;
    let current = match expected {
        Some(n) => {
            let v = store::lock_version(work, tenant, blueprint_id, n)
                .await?
                .ok_or_else(|| Error::not_found(format!("blueprint `{blueprint_id}` has no version {n}")))?;
            if v.status != VersionStatus::Draft {
                return Err(immutable(&v));
            }
            Some(v)
        }
        None => store::lock_draft(work, tenant, blueprint_id).await?,
    };
    let v = match current {
        Some(d) => store::replace_definition(work, tenant, blueprint_id, d.version, definition).await?,
        None => store::insert_draft(work, tenant, &b, definition).await?,
    };
    let event = events::BlueprintVersionDrafted { blueprint_id, project_id: b.project_id, version: v.version };
    work.emit(tenant, &event).await?;
    Ok(v)
}

/// Runs every rule over `definition` of a version of `b`: the structural ones, then the lookups.
pub async fn check(work: &mut Work, tenant: &TenantId, b: &Blueprint, definition: &Value) -> Result<Vec<Finding>> {
    let mut parsed = rules::parse(definition);
    let mut findings = std::mem::take(&mut parsed.findings);

    // Module references: only the names the definition uses, of the blueprint's project.
    let mut wanted: Vec<String> = parsed.module_refs.iter().map(|(n, _)| n.clone()).collect();
    wanted.sort();
    wanted.dedup();
    let modules = if wanted.is_empty() {
        HashMap::new()
    } else {
        store::modules_by_name(work, tenant, b.project_id, &wanted).await?
    };
    for (name, location) in &parsed.module_refs {
        if !modules.contains_key(name) {
            findings.push(Finding {
                rule: rules::MODULE_REFERENCE,
                severity: Severity::Error,
                message: format!("no module `{}` in this project", kernel::error::clip(name, 60)),
                location: location.clone(),
            });
        }
    }

    // Agent and skill references: keys without a published version the tenant can use.
    let agents: Vec<String> = parsed.agent_refs.iter().map(|(k, _)| k.clone()).collect();
    let skills: Vec<String> = parsed.skill_refs.iter().map(|(k, _)| k.clone()).collect();
    if !agents.is_empty() || !skills.is_empty() {
        let (missing_agents, missing_skills) =
            crate::registry::missing_references(work, tenant, &agents, &skills).await?;
        let missing_agents: HashSet<String> = missing_agents.into_iter().collect();
        let missing_skills: HashSet<String> = missing_skills.into_iter().collect();
        for (refs, missing, rule, what) in [
            (&parsed.agent_refs, &missing_agents, rules::AGENT_REFERENCE, "agent"),
            (&parsed.skill_refs, &missing_skills, rules::SKILL_REFERENCE, "skill"),
        ] {
            for (key, location) in refs {
                if missing.contains(key) {
                    findings.push(Finding {
                        rule,
                        severity: Severity::Error,
                        message: format!("no published {what} `{}`", kernel::error::clip(key, 60)),
                        location: location.clone(),
                    });
                }
            }
        }
    }

    // Planned dependencies: ranges against current versions, then cycles with the existing edges.
    let planned: Vec<(&rules::PlannedDependency, ModuleId, ModuleId)> =
        parsed.dependencies.iter().filter_map(|d| Some((d, modules.get(&d.from)?.0, modules.get(&d.to)?.0))).collect();
    for (d, _, _) in &planned {
        let current = &modules[&d.to].1;
        if !crate::graph::satisfies(&d.version_constraint, current) {
            findings.push(Finding {
                rule: rules::DEPENDENCY_CONSTRAINT,
                severity: Severity::Warning,
                message: format!(
                    "`{}` is at {current}, outside `{}`",
                    kernel::error::clip(&d.to, 60),
                    kernel::error::clip(&d.version_constraint, 40)
                ),
                location: format!("$.dependencies[{}].versionConstraint", d.index),
            });
        }
    }
    if !planned.is_empty() {
        let mut targets: Vec<ModuleId> = planned.iter().map(|(_, _, to)| *to).collect();
        targets.sort();
        targets.dedup();
        let existing = store::reach_edges(work, tenant, &targets, MAX_REACH_EDGES + 1).await?;
        if existing.len() as i64 > MAX_REACH_EDGES {
            findings.push(Finding {
                rule: rules::DEPENDENCY_CYCLE,
                severity: Severity::Warning,
                message: format!(
                    "the planned dependencies reach more than {MAX_REACH_EDGES} edges; the cycle check stopped there"
                ),
                location: "$.dependencies".into(),
            });
        }
        let mut edges: HashMap<ModuleId, Vec<ModuleId>> = HashMap::new();
        for (from, to) in existing.into_iter().take(MAX_REACH_EDGES as usize) {
            edges.entry(from).or_default().push(to);
        }
        for (_, from, to) in &planned {
            edges.entry(*from).or_default().push(*to);
        }
        let mut names: HashMap<ModuleId, String> = modules.iter().map(|(n, (id, _))| (*id, n.clone())).collect();
        for (d, from, to) in &planned {
            let Some(cycle) = rules::cycle_through(*from, *to, &edges) else { continue };
            let unnamed: Vec<ModuleId> = cycle.iter().filter(|id| !names.contains_key(id)).copied().collect();
            if !unnamed.is_empty() {
                names.extend(crate::graph::store::names(work, tenant, &unnamed).await?);
            }
            let shown: Vec<String> =
                cycle.iter().map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string())).collect();
            findings.push(Finding {
                rule: rules::DEPENDENCY_CYCLE,
                severity: Severity::Error,
                message: format!("this dependency would close a cycle: {}", shown.join(" → ")),
                location: format!("$.dependencies[{}]", d.index),
            });
        }
    }
    Ok(findings)
}

/// Validates a draft: runs the rules, records the run and its findings, validates the version if no finding
/// is an `ERROR` (superseding the validated one), and emits `BlueprintValidationCompleted` (and
/// `BlueprintVersionValidated`). `NOT_FOUND` for an unknown blueprint or version, `CONFLICT` unless the
/// version is a draft in a writable project.
pub async fn validate(
    work: &mut Work,
    tenant: &TenantId,
    blueprint_id: BlueprintId,
    version: i32,
) -> Result<ValidationRun> {
    let b = writable(work, tenant, blueprint_id).await?;
    let v = store::lock_version(work, tenant, blueprint_id, version)
        .await?
        .ok_or_else(|| Error::not_found(format!("blueprint `{blueprint_id}` has no version {version}")))?;
    if v.status != VersionStatus::Draft {
        return Err(immutable(&v));
    }
    let findings: Vec<ValidationResult> =
        check(work, tenant, &b, &v.definition).await?.into_iter().map(ValidationResult::from).collect();
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count() as i32;
    let run = ValidationRun {
        tenant_id: tenant.clone(),
        run_id: ValidationRunId::new_v7(),
        blueprint_id,
        project_id: b.project_id,
        version,
        valid: count(Severity::Error) == 0,
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        // PostgreSQL keeps microseconds: the run's timestamp is the same here and in its rows.
        recorded_at: Utc::now().trunc_subsecs(6),
        findings: Some(findings),
    };
    store::insert_run(work, tenant, &run).await?;
    if run.valid {
        let superseded = store::supersede(work, tenant, blueprint_id).await?;
        store::mark_validated(work, tenant, blueprint_id, version, run.run_id).await?;
        let event = events::BlueprintVersionValidated {
            blueprint_id,
            project_id: b.project_id,
            version,
            run_id: run.run_id,
            superseded_version: superseded,
        };
        work.emit(tenant, &event).await?;
    }
    let event = events::BlueprintValidationCompleted {
        run_id: run.run_id,
        blueprint_id,
        project_id: b.project_id,
        version,
        valid: run.valid,
        errors: run.errors,
        warnings: run.warnings,
    };
    work.emit(tenant, &event).await?;
    Ok(run)
}

/// The `ValidateBlueprint` command: validates as the mutation does. A version that is no longer a draft
/// (validated by an earlier copy of the command, or by the API) is left as it is.
pub async fn validate_command(work: &mut Work, tenant: &TenantId, blueprint: BlueprintId, version: i32) -> Result<()> {
    // `validate` takes its locks in the API's order (blueprint, project, version); checking the version
    // first here would take them the other way round and could deadlock with a concurrent mutation.
    let run = match validate(work, tenant, blueprint, version).await {
        Err(e) if e.code() == kernel::Code::Conflict => {
            tracing::info!(%tenant, %blueprint, version, reason = e.message(),
                "ValidateBlueprint: the version is not a draft any more; nothing to do");
            return Ok(());
        }
        other => other?,
    };
    tracing::info!(%tenant, %blueprint, version, run_id = %run.run_id, valid = run.valid, "ValidateBlueprint: run recorded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definitions_must_be_small_objects() {
        assert!(definition(json!({})).is_ok());
        for bad in [json!([]), json!("x"), json!(null), json!({ "x": "y".repeat(MAX_DEFINITION_BYTES) })] {
            assert_eq!(definition(bad).unwrap_err().code(), kernel::error::Code::BadUserInput);
        }
    }

    #[test]
    fn relationship_kinds_parse_loosely() {
        for (s, k) in [
            ("CUSTOMER_SUPPLIER", RelationshipKind::CustomerSupplier),
            ("anticorruption-layer", RelationshipKind::AnticorruptionLayer),
            ("OpenHostService", RelationshipKind::OpenHostService),
            ("separate ways", RelationshipKind::SeparateWays),
        ] {
            assert_eq!(RelationshipKind::parse_loose(s), Some(k), "{s}");
        }
        assert_eq!(RelationshipKind::parse_loose("friends"), None);
        for &k in RelationshipKind::ALL {
            assert_eq!(RelationshipKind::parse(k.as_str()), Some(k));
        }
    }
}
