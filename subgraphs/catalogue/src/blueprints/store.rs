//! Blueprints' SQL. Every statement names the tenant; row-level security holds it to the transaction's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;

use super::{Blueprint, BlueprintVersion, NewBlueprint, Severity, ValidationRun, VersionStatus};
use crate::ids::{BlueprintId, ModuleId, ProjectId, ValidationRunId};

pub async fn insert(tx: &mut Tx, tenant: &TenantId, id: BlueprintId, b: &NewBlueprint) -> Result<Blueprint> {
    sqlx::query_as!(
        Blueprint,
        r#"INSERT INTO blueprints (tenant_id, blueprint_id, project_id, name, description) VALUES ($1, $2, $3, $4, $5)
           RETURNING tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, name, description, created_at,
                     updated_at"#,
        tenant.as_str(),
        id as BlueprintId,
        b.project_id as ProjectId,
        b.name,
        b.description,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("blueprints_name_key", || {
        Error::conflict(format!("the project has a blueprint named `{}` already", b.name))
    })
}

pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: BlueprintId) -> Result<Option<Blueprint>> {
    Ok(sqlx::query_as!(
        Blueprint,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, name, description, created_at, updated_at
           FROM blueprints WHERE tenant_id = $1 AND blueprint_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as BlueprintId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Blueprints by id within `tenants` (`None`: every tenant the transaction may see, for operators).
pub async fn by_ids(tx: &mut Tx, tenants: Option<&[String]>, ids: &[BlueprintId]) -> Result<Vec<Blueprint>> {
    Ok(sqlx::query_as!(
        Blueprint,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, name, description, created_at, updated_at
           FROM blueprints WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND blueprint_id = ANY($2)"#,
        tenants,
        ids as &[BlueprintId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// The blueprints of `projects`, by project and name.
pub async fn of_projects(tx: &mut Tx, tenants: Option<&[String]>, projects: &[ProjectId]) -> Result<Vec<Blueprint>> {
    Ok(sqlx::query_as!(
        Blueprint,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, name, description, created_at, updated_at
           FROM blueprints WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND project_id = ANY($2)
           ORDER BY project_id, name"#,
        tenants,
        projects as &[ProjectId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// Every version of `blueprints`, newest first.
pub async fn versions_of(
    tx: &mut Tx,
    tenants: Option<&[String]>,
    blueprints: &[BlueprintId],
) -> Result<Vec<BlueprintVersion>> {
    Ok(sqlx::query_as!(
        BlueprintVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, version,
                  status AS "status: VersionStatus", definition, created_at, updated_at, validated_at,
                  validated_run_id AS "validated_run_id: ValidationRunId", superseded_at
           FROM blueprint_versions WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND blueprint_id = ANY($2)
           ORDER BY blueprint_id, version DESC"#,
        tenants,
        blueprints as &[BlueprintId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn lock_version(
    tx: &mut Tx,
    tenant: &TenantId,
    blueprint: BlueprintId,
    version: i32,
) -> Result<Option<BlueprintVersion>> {
    Ok(sqlx::query_as!(
        BlueprintVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, version,
                  status AS "status: VersionStatus", definition, created_at, updated_at, validated_at,
                  validated_run_id AS "validated_run_id: ValidationRunId", superseded_at
           FROM blueprint_versions WHERE tenant_id = $1 AND blueprint_id = $2 AND version = $3 FOR UPDATE"#,
        tenant.as_str(),
        blueprint as BlueprintId,
        version,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn lock_draft(tx: &mut Tx, tenant: &TenantId, blueprint: BlueprintId) -> Result<Option<BlueprintVersion>> {
    Ok(sqlx::query_as!(
        BlueprintVersion,
        r#"SELECT tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, version,
                  status AS "status: VersionStatus", definition, created_at, updated_at, validated_at,
                  validated_run_id AS "validated_run_id: ValidationRunId", superseded_at
           FROM blueprint_versions WHERE tenant_id = $1 AND blueprint_id = $2 AND status = 'Draft' FOR UPDATE"#,
        tenant.as_str(),
        blueprint as BlueprintId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// A new draft numbered after the blueprint's newest version (the caller holds the blueprint's row lock).
pub async fn insert_draft(
    tx: &mut Tx,
    tenant: &TenantId,
    b: &Blueprint,
    definition: &Value,
) -> Result<BlueprintVersion> {
    sqlx::query_as!(
        BlueprintVersion,
        r#"INSERT INTO blueprint_versions (tenant_id, blueprint_id, version, project_id, definition)
           SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4
           FROM blueprint_versions WHERE tenant_id = $1 AND blueprint_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, version,
                     status AS "status: VersionStatus", definition, created_at, updated_at, validated_at,
                     validated_run_id AS "validated_run_id: ValidationRunId", superseded_at"#,
        tenant.as_str(),
        b.blueprint_id as BlueprintId,
        b.project_id as ProjectId,
        definition,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("blueprint_versions_one_draft", || Error::conflict("the blueprint has a draft already"))
}

pub async fn replace_definition(
    tx: &mut Tx,
    tenant: &TenantId,
    blueprint: BlueprintId,
    version: i32,
    definition: &Value,
) -> Result<BlueprintVersion> {
    sqlx::query_as!(
        BlueprintVersion,
        r#"UPDATE blueprint_versions SET definition = $4, updated_at = now()
           WHERE tenant_id = $1 AND blueprint_id = $2 AND version = $3
           RETURNING tenant_id AS "tenant_id: TenantId", blueprint_id, project_id, version,
                     status AS "status: VersionStatus", definition, created_at, updated_at, validated_at,
                     validated_run_id AS "validated_run_id: ValidationRunId", superseded_at"#,
        tenant.as_str(),
        blueprint as BlueprintId,
        version,
        definition,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("blueprint_versions_immutable", || Error::conflict(format!("version {version} is immutable")))
}

/// Supersedes the blueprint's validated version, if any; returns its number.
pub async fn supersede(tx: &mut Tx, tenant: &TenantId, blueprint: BlueprintId) -> Result<Option<i32>> {
    Ok(sqlx::query_scalar!(
        "UPDATE blueprint_versions SET status = 'Superseded', superseded_at = now()
         WHERE tenant_id = $1 AND blueprint_id = $2 AND status = 'Validated' RETURNING version",
        tenant.as_str(),
        blueprint as BlueprintId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn mark_validated(
    tx: &mut Tx,
    tenant: &TenantId,
    blueprint: BlueprintId,
    version: i32,
    run: ValidationRunId,
) -> Result<()> {
    sqlx::query!(
        "UPDATE blueprint_versions SET status = 'Validated', validated_at = now(), validated_run_id = $4
         WHERE tenant_id = $1 AND blueprint_id = $2 AND version = $3 AND status = 'Draft'",
        tenant.as_str(),
        blueprint as BlueprintId,
        version,
        run as ValidationRunId,
    )
    .execute(&mut **tx)
    .await
    .on_constraint("blueprint_versions_immutable", || Error::conflict(format!("version {version} is immutable")))?;
    Ok(())
}

/// The project's modules named `names`: name → (id, version).
pub async fn modules_by_name(
    tx: &mut Tx,
    tenant: &TenantId,
    project: ProjectId,
    names: &[String],
) -> Result<HashMap<String, (ModuleId, String)>> {
    let rows = sqlx::query!(
        "SELECT name, module_id, version FROM modules WHERE tenant_id = $1 AND project_id = $2 AND name = ANY($3)",
        tenant.as_str(),
        project as ProjectId,
        names,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, (r.module_id.into(), r.version))).collect())
}

/// The existing edges out of every module `starts` reach (the starts included), at most `limit`: all a
/// cycle through a planned edge into one of `starts` can use. Each module is visited once.
pub async fn reach_edges(
    tx: &mut Tx,
    tenant: &TenantId,
    starts: &[ModuleId],
    limit: i64,
) -> Result<Vec<(ModuleId, ModuleId)>> {
    let rows = sqlx::query!(
        r#"WITH RECURSIVE reach(node) AS (
               SELECT unnest($2::uuid[])
               UNION
               SELECT d.to_module FROM reach r JOIN dependencies d ON d.tenant_id = $1 AND d.from_module = r.node
           )
           SELECT d.from_module, d.to_module
           FROM reach r JOIN dependencies d ON d.tenant_id = $1 AND d.from_module = r.node
           LIMIT $3"#,
        tenant.as_str(),
        starts as &[ModuleId],
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.from_module.into(), r.to_module.into())).collect())
}

/// Records a run and its findings (one statement each; the findings share the run's timestamp, so its month).
pub async fn insert_run(tx: &mut Tx, tenant: &TenantId, run: &ValidationRun) -> Result<()> {
    sqlx::query!(
        "INSERT INTO blueprint_validation_runs
             (tenant_id, recorded_at, run_id, blueprint_id, project_id, version, valid, errors, warnings, infos)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        tenant.as_str(),
        run.recorded_at,
        run.run_id as ValidationRunId,
        run.blueprint_id as BlueprintId,
        run.project_id as ProjectId,
        run.version,
        run.valid,
        run.errors,
        run.warnings,
        run.infos,
    )
    .execute(&mut **tx)
    .await?;
    let findings = run.findings.as_deref().unwrap_or_default();
    if findings.is_empty() {
        return Ok(());
    }
    let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    let severities: Vec<&str> = findings.iter().map(|f| f.severity.as_str()).collect();
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    let locations: Vec<&str> = findings.iter().map(|f| f.location.as_str()).collect();
    sqlx::query!(
        "INSERT INTO blueprint_validation_results
             (tenant_id, recorded_at, run_id, ordinal, blueprint_id, version, rule, severity, message, location)
         SELECT $1, $2, $3, f.ordinal - 1, $4, $5, f.rule, f.severity, f.message, f.location
         FROM unnest($6::text[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY
              AS f(rule, severity, message, location, ordinal)",
        tenant.as_str(),
        run.recorded_at,
        run.run_id as ValidationRunId,
        run.blueprint_id as BlueprintId,
        run.version,
        &rules as &[&str],
        &severities as &[&str],
        &messages as &[&str],
        &locations as &[&str],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Up to `limit` runs of each (blueprint, version), newest first.
pub async fn runs_of(
    tx: &mut Tx,
    tenants: Option<&[String]>,
    blueprints: &[BlueprintId],
    versions: &[i32],
    limit: i64,
) -> Result<Vec<ValidationRun>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id!: TenantId", run_id AS "run_id!", blueprint_id AS "blueprint_id!",
                  project_id AS "project_id!", version AS "version!", valid AS "valid!", errors AS "errors!",
                  warnings AS "warnings!", infos AS "infos!", recorded_at AS "recorded_at!"
           FROM (SELECT r.*, row_number() OVER (PARTITION BY r.tenant_id, r.blueprint_id, r.version
                                                ORDER BY r.recorded_at DESC, r.run_id DESC) AS n
                 FROM blueprint_validation_runs r
                 JOIN unnest($2::uuid[], $3::int[]) AS k(blueprint_id, version)
                   ON k.blueprint_id = r.blueprint_id AND k.version = r.version
                 WHERE ($1::text[] IS NULL OR r.tenant_id = ANY($1))) ranked
           WHERE n <= $4
           ORDER BY blueprint_id, version, recorded_at DESC, run_id DESC"#,
        tenants,
        blueprints as &[BlueprintId],
        versions,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ValidationRun {
            tenant_id: r.tenant_id,
            run_id: r.run_id.into(),
            blueprint_id: r.blueprint_id.into(),
            project_id: r.project_id.into(),
            version: r.version,
            valid: r.valid,
            errors: r.errors,
            warnings: r.warnings,
            infos: r.infos,
            recorded_at: r.recorded_at,
            findings: None,
        })
        .collect())
}

/// A stored finding with its run.
pub struct ResultRow {
    pub run_id: ValidationRunId,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub location: String,
}

/// The findings of runs (each named by id and timestamp, so only its month's partition is read), in order.
pub async fn results_of(
    tx: &mut Tx,
    tenants: Option<&[String]>,
    runs: &[ValidationRunId],
    recorded: &[DateTime<Utc>],
) -> Result<Vec<ResultRow>> {
    Ok(sqlx::query_as!(
        ResultRow,
        r#"SELECT run_id, rule, severity AS "severity: Severity", message, location
           FROM blueprint_validation_results
           WHERE ($1::text[] IS NULL OR tenant_id = ANY($1)) AND run_id = ANY($2) AND recorded_at = ANY($3)
           ORDER BY run_id, ordinal"#,
        tenants,
        runs as &[ValidationRunId],
        recorded,
    )
    .fetch_all(&mut **tx)
    .await?)
}

// ---- the context-map projection ----

/// Serializes projections of one blueprint until the transaction ends.
pub async fn lock_projection(tx: &mut Tx, tenant: &TenantId, blueprint: BlueprintId) -> Result<()> {
    kernel::db::lock(tx, &format!("catalogue.context-map:{tenant}:{blueprint}"), kernel::db::Lock::Exclusive).await
}

/// The version the blueprint's context map was projected from.
pub async fn projected_version(tx: &mut Tx, tenant: &TenantId, blueprint: BlueprintId) -> Result<Option<i32>> {
    Ok(sqlx::query_scalar!(
        "SELECT version FROM context_map_sources WHERE tenant_id = $1 AND blueprint_id = $2",
        tenant.as_str(),
        blueprint as BlueprintId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// A context map as rows: contexts (`[{name, position, modules}]`), aggregates (`[{context, name, position,
/// entities}]`) and relationships (`[{upstream, downstream, kind, position}]`), each a JSON array.
#[derive(Clone, Debug, PartialEq)]
pub struct MapRows {
    pub contexts: Value,
    pub aggregates: Value,
    pub relationships: Value,
}

/// Replaces the blueprint's context map with `rows` and records the version it came from.
pub async fn replace_context_map(
    tx: &mut Tx,
    tenant: &TenantId,
    project: ProjectId,
    blueprint: BlueprintId,
    version: i32,
    rows: &MapRows,
) -> Result<()> {
    for stmt in [
        sqlx::query!(
            "DELETE FROM domain_aggregates WHERE tenant_id = $1 AND blueprint_id = $2",
            tenant.as_str(),
            blueprint as BlueprintId
        ),
        sqlx::query!(
            "DELETE FROM context_relationships WHERE tenant_id = $1 AND blueprint_id = $2",
            tenant.as_str(),
            blueprint as BlueprintId
        ),
        sqlx::query!(
            "DELETE FROM bounded_contexts WHERE tenant_id = $1 AND blueprint_id = $2",
            tenant.as_str(),
            blueprint as BlueprintId
        ),
    ] {
        stmt.execute(&mut **tx).await?;
    }
    sqlx::query!(
        "INSERT INTO bounded_contexts (tenant_id, blueprint_id, name, project_id, position, modules)
         SELECT $1, $2, c.name, $3, c.position, ARRAY(SELECT jsonb_array_elements_text(c.modules))
         FROM jsonb_to_recordset($4) AS c(name text, position int, modules jsonb)",
        tenant.as_str(),
        blueprint as BlueprintId,
        project as ProjectId,
        rows.contexts,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "INSERT INTO domain_aggregates (tenant_id, blueprint_id, context, name, project_id, position, entities)
         SELECT $1, $2, a.context, a.name, $3, a.position, ARRAY(SELECT jsonb_array_elements_text(a.entities))
         FROM jsonb_to_recordset($4) AS a(context text, name text, position int, entities jsonb)",
        tenant.as_str(),
        blueprint as BlueprintId,
        project as ProjectId,
        rows.aggregates,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "INSERT INTO context_relationships (tenant_id, blueprint_id, upstream, downstream, kind, project_id, position)
         SELECT $1, $2, r.upstream, r.downstream, r.kind, $3, r.position
         FROM jsonb_to_recordset($4) AS r(upstream text, downstream text, kind text, position int)
         ON CONFLICT DO NOTHING",
        tenant.as_str(),
        blueprint as BlueprintId,
        project as ProjectId,
        rows.relationships,
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "INSERT INTO context_map_sources (tenant_id, blueprint_id, project_id, version) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, blueprint_id) DO UPDATE SET version = EXCLUDED.version, projected_at = now()",
        tenant.as_str(),
        blueprint as BlueprintId,
        project as ProjectId,
        version,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One blueprint's projected context map, read in one statement (so from one snapshot: never half of a
/// projection that was committing meanwhile).
pub struct MapRow {
    pub project_id: ProjectId,
    pub blueprint_id: BlueprintId,
    pub version: i32,
    pub projected_at: DateTime<Utc>,
    /// `[{name, modules, aggregates: [{name, entities}]}]` in definition order.
    pub contexts: Value,
    /// `[{upstream, downstream, kind}]` in definition order (`kind` as stored).
    pub relationships: Value,
}

/// The projected context maps of `projects`, by project and blueprint.
pub async fn context_maps_of(tx: &mut Tx, tenants: Option<&[String]>, projects: &[ProjectId]) -> Result<Vec<MapRow>> {
    Ok(sqlx::query_as!(
        MapRow,
        r#"SELECT s.project_id, s.blueprint_id, s.version, s.projected_at,
                  (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'name', c.name, 'modules', to_jsonb(c.modules),
                              'aggregates', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                                 'name', a.name, 'entities', to_jsonb(a.entities))
                                                 ORDER BY a.position), '[]')
                                             FROM domain_aggregates a
                                             WHERE a.tenant_id = s.tenant_id AND a.blueprint_id = s.blueprint_id
                                               AND a.context = c.name))
                              ORDER BY c.position), '[]')
                   FROM bounded_contexts c WHERE c.tenant_id = s.tenant_id AND c.blueprint_id = s.blueprint_id)
                  AS "contexts!",
                  (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'upstream', r.upstream, 'downstream', r.downstream, 'kind', r.kind)
                              ORDER BY r.position), '[]')
                   FROM context_relationships r WHERE r.tenant_id = s.tenant_id AND r.blueprint_id = s.blueprint_id)
                  AS "relationships!"
           FROM context_map_sources s
           WHERE ($1::text[] IS NULL OR s.tenant_id = ANY($1)) AND s.project_id = ANY($2)
           ORDER BY s.project_id, s.blueprint_id"#,
        tenants,
        projects as &[ProjectId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

// ---- retention ----

/// Creates the validation tables' monthly partitions from this month to `months_ahead` after it, if
/// missing (through the owner's SECURITY DEFINER function); returns the ones created.
pub async fn ensure_partitions(tx: &mut Tx, months_ahead: i32) -> Result<Vec<String>> {
    let names = sqlx::query_scalar!(
        r#"SELECT p AS "p!" FROM catalogue_validation_partitions_ensure(now(), $1) AS p"#,
        months_ahead
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(names)
}

/// Drops the validation tables' partitions older than `keep_months` months; returns the ones dropped.
pub async fn drop_partitions(tx: &mut Tx, keep_months: i32) -> Result<Vec<String>> {
    let names =
        sqlx::query_scalar!(r#"SELECT p AS "p!" FROM catalogue_validation_partitions_drop($1) AS p"#, keep_months)
            .fetch_all(&mut **tx)
            .await?;
    Ok(names)
}
