//! Blueprints: versions and their immutability, validation runs and results, the ValidateBlueprint command,
//! the context-map projection, retention of validation results, and tenant isolation.

use std::time::Duration;

use catalogue::State;
use kernel::broker::{Broker, EXCHANGE};
use kernel::envelope::{Envelope, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, Row};
use test_support::{code, eventually, Tap, TestApp, AMQP_URL};

const WAIT: Duration = Duration::from_secs(15);

/// An app and one tenant of its own (named after the app, so a broker tap can tell its events apart).
struct Bp {
    app: TestApp<State>,
    tenant: String,
    token: String,
}

async fn start() -> Bp {
    let app = TestApp::<State>::start(&catalogue::Config::default()).await;
    let tenant = format!("acme-{}", app.id);
    let token = app.tenant_token(&tenant, &["catalogue:read", "catalogue:write"]);
    Bp { app, tenant, token }
}

impl Bp {
    async fn ok(&self, query: &str, vars: Value) -> Value {
        self.app.ok(&self.token, query, vars).await
    }

    async fn gql(&self, query: &str, vars: Value) -> Value {
        self.app.gql(&self.token, query, vars).await
    }

    async fn project(&self, slug: &str) -> String {
        let d = self
            .ok(
                "mutation($s: String!) { createProject(input: { slug: $s, name: \"P\" }) { id } }",
                json!({ "s": slug }),
            )
            .await;
        d["createProject"]["id"].as_str().unwrap().to_owned()
    }

    async fn module(&self, project: &str, name: &str, version: &str) -> String {
        let d = self
            .ok(
                "mutation($p: ID!, $n: String!, $v: String!) {
                   registerModule(input: { projectId: $p, name: $n, version: $v, kind: \"service\" }) { id } }",
                json!({ "p": project, "n": name, "v": version }),
            )
            .await;
        d["registerModule"]["id"].as_str().unwrap().to_owned()
    }

    async fn depends(&self, from: &str, to: &str) {
        self.ok(
            "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"*\") {
               versionConstraint } }",
            json!({ "f": from, "t": to }),
        )
        .await;
    }

    async fn blueprint(&self, project: &str, name: &str) -> String {
        let d = self
            .ok(
                "mutation($p: ID!, $n: String!) { createBlueprint(projectId: $p, name: $n, description: \"d\") { id } }",
                json!({ "p": project, "n": name }),
            )
            .await;
        d["createBlueprint"]["id"].as_str().unwrap().to_owned()
    }

    /// Drafts `definition`; returns the draft's version number.
    async fn draft(&self, blueprint: &str, definition: Value) -> i64 {
        let d = self
            .ok(
                "mutation($b: ID!, $d: JSON!) { draftBlueprintVersion(blueprintId: $b, definition: $d) { version status } }",
                json!({ "b": blueprint, "d": definition }),
            )
            .await;
        assert_eq!(d["draftBlueprintVersion"]["status"], "DRAFT");
        d["draftBlueprintVersion"]["version"].as_i64().unwrap()
    }

    /// The raw answer of `validateBlueprint`.
    async fn validate(&self, blueprint: &str, version: i64) -> Value {
        self.gql(
            "mutation($b: ID!, $v: Int!) { validateBlueprint(blueprintId: $b, version: $v) {
               runId valid version errors warnings results { rule severity message location } } }",
            json!({ "b": blueprint, "v": version }),
        )
        .await
    }

    async fn statuses(&self, blueprint: &str) -> Vec<(i64, String)> {
        let d = self
            .ok("query($b: ID!) { blueprint(id: $b) { versions { version status } } }", json!({ "b": blueprint }))
            .await;
        d["blueprint"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["version"].as_i64().unwrap(), v["status"].as_str().unwrap().to_owned()))
            .collect()
    }

    async fn context_map(&self, project: &str) -> Value {
        let d = self
            .ok(
                "query($p: ID!) { project(id: $p) { contextMap {
                   sources { blueprintId version }
                   contexts { name modules aggregates { name entities } }
                   relationships { upstream downstream kind } } } }",
                json!({ "p": project }),
            )
            .await;
        d["project"]["contextMap"].clone()
    }
}

/// A definition that references no agent, skill or module, and so validates.
fn shop() -> Value {
    json!({
        "contexts": [
            { "name": "Ordering", "aggregates": [{ "name": "Order", "entities": ["OrderLine", "Payment"] }] },
            { "name": "Shipping", "aggregates": [{ "name": "Shipment", "entities": ["Parcel"] }] }
        ],
        "relationships": [{ "upstream": "Ordering", "downstream": "Shipping", "kind": "CUSTOMER_SUPPLIER" }]
    })
}

fn locations(run: &Value, severity: &str) -> Vec<String> {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["severity"] == severity)
        .map(|r| r["location"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn validated_versions_are_immutable_through_the_api_and_in_sql() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    assert_eq!(bp.draft(&blueprint, json!({})).await, 1);
    // Drafting again replaces the one draft's content.
    assert_eq!(bp.draft(&blueprint, shop()).await, 1);
    let v = bp.validate(&blueprint, 1).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");
    assert_eq!(bp.statuses(&blueprint).await, vec![(1, "VALIDATED".to_owned())]);

    // The API refuses to change or re-validate it.
    let v = bp
        .gql(
            "mutation($b: ID!) { draftBlueprintVersion(blueprintId: $b, definition: {}, version: 1) { version } }",
            json!({ "b": blueprint }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    assert_eq!(code(&bp.validate(&blueprint, 1).await), "CONFLICT");

    // And so does the database, for the app role itself.
    let mut conn = PgConnection::connect(&bp.app.db.app_url).await.unwrap();
    for (stmt, refused) in [
        ("UPDATE blueprint_versions SET definition = '{}' WHERE blueprint_id = $1::uuid", "immutable"),
        (
            "UPDATE blueprint_versions SET status = 'Draft', validated_at = NULL WHERE blueprint_id = $1::uuid",
            "immutable",
        ),
        (
            "UPDATE blueprint_versions SET status = 'Superseded', definition = '{}' WHERE blueprint_id = $1::uuid",
            "immutable",
        ),
        // Not even granted (and the trigger would refuse it too).
        ("DELETE FROM blueprint_versions WHERE blueprint_id = $1::uuid", "permission denied"),
    ] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(&bp.tenant).execute(&mut *tx).await.unwrap();
        let err = sqlx::query(stmt).bind(&blueprint).execute(&mut *tx).await.unwrap_err();
        assert!(err.to_string().contains(refused), "{stmt}: {err}");
        tx.rollback().await.unwrap();
    }

    // A new draft is version 2; validating it supersedes version 1.
    assert_eq!(bp.draft(&blueprint, shop()).await, 2);
    let v = bp.validate(&blueprint, 2).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");
    assert_eq!(bp.statuses(&blueprint).await, vec![(2, "VALIDATED".to_owned()), (1, "SUPERSEDED".to_owned())]);

    // Names are unique per project.
    let v = bp
        .gql("mutation($p: ID!) { createBlueprint(projectId: $p, name: \"main\") { id } }", json!({ "p": project }))
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    bp.app.cleanup().await;
}

#[tokio::test]
async fn a_failing_validation_records_results_with_locations_and_leaves_a_draft() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;

    // Not an object, or too big: refused at draft time.
    for bad in [json!([1, 2]), json!({ "x": "y".repeat(300 * 1024) })] {
        let v = bp
            .gql(
                "mutation($b: ID!, $d: JSON!) { draftBlueprintVersion(blueprintId: $b, definition: $d) { version } }",
                json!({ "b": blueprint, "d": bad }),
            )
            .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    }

    let version = bp
        .draft(
            &blueprint,
            json!({
                "modules": ["ghost"],
                "agents": ["reviewer"],
                "contexts": [
                    { "name": "Ordering", "aggregates": [{ "name": "Order" }] },
                    { "name": "Shipping", "aggregates": [{ "name": "" }] }
                ],
                "relationships": [{ "upstream": "Ordering", "downstream": "Billing", "kind": "CONFORMIST" }]
            }),
        )
        .await;
    let v = bp.validate(&blueprint, version).await;
    let run = &v["data"]["validateBlueprint"];
    assert_eq!(run["valid"], false, "{v}");
    let errors = locations(run, "ERROR");
    for loc in ["$.modules[0]", "$.agents[0]", "$.contexts[1].aggregates[0].name", "$.relationships[0].downstream"] {
        assert!(errors.contains(&loc.to_owned()), "{loc} not in {errors:?}");
    }
    assert_eq!(run["errors"].as_i64().unwrap(), errors.len() as i64);
    let rules: Vec<&str> = run["results"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"module-reference") && rules.contains(&"agent-reference"), "{rules:?}");
    assert_eq!(bp.statuses(&blueprint).await, vec![(version, "DRAFT".to_owned())]);

    // The run and its results are recorded on the version.
    let d = bp
        .ok(
            "query($b: ID!) { blueprint(id: $b) { draft { version validationRuns {
               runId valid results { rule severity location message } } } } }",
            json!({ "b": blueprint }),
        )
        .await;
    let runs = d["blueprint"]["draft"]["validationRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["runId"], run["runId"]);
    assert_eq!(runs[0]["results"], run["results"]);

    // Fixed, the same draft validates.
    bp.draft(&blueprint, shop()).await;
    let v = bp.validate(&blueprint, version).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");
    bp.app.cleanup().await;
}

#[tokio::test]
async fn a_planned_dependency_that_closes_a_cycle_with_existing_edges_is_an_error() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let [a, b, c] = [
        bp.module(&project, "api", "1.0.0").await,
        bp.module(&project, "core", "1.0.0").await,
        bp.module(&project, "store", "1.0.0").await,
    ];
    bp.module(&project, "web", "1.0.0").await;
    bp.depends(&a, &b).await;
    bp.depends(&b, &c).await;
    let blueprint = bp.blueprint(&project, "main").await;

    let version = bp
        .draft(
            &blueprint,
            json!({
                "modules": ["api", "core", "store", "web"],
                "dependencies": [
                    { "from": "web", "to": "api", "versionConstraint": "^1" },
                    { "from": "store", "to": "api", "versionConstraint": "^1" }
                ]
            }),
        )
        .await;
    let v = bp.validate(&blueprint, version).await;
    let run = &v["data"]["validateBlueprint"];
    assert_eq!(run["valid"], false, "{v}");
    let cycles: Vec<&Value> =
        run["results"].as_array().unwrap().iter().filter(|r| r["rule"] == "dependency-cycle").collect();
    assert_eq!(cycles.len(), 1, "{v}");
    assert_eq!(cycles[0]["severity"], "ERROR");
    assert_eq!(cycles[0]["location"], "$.dependencies[1]");
    let msg = cycles[0]["message"].as_str().unwrap();
    assert!(msg.contains("store → api → core → store"), "{msg}");

    // Without the back edge the plan is acyclic and validates.
    bp.draft(
        &blueprint,
        json!({
            "modules": ["api", "core", "store", "web"],
            "dependencies": [{ "from": "web", "to": "api" }, { "from": "api", "to": "store" }]
        }),
    )
    .await;
    let v = bp.validate(&blueprint, version).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");
    bp.app.cleanup().await;
}

async fn publish(routing_key: &str, body: &[u8]) {
    let ch = Broker::new(AMQP_URL.to_owned().into()).channel().await.unwrap();
    ch.basic_publish(
        EXCHANGE,
        routing_key,
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

#[tokio::test]
async fn the_validate_blueprint_command_validates_too() {
    let bp = start().await;
    let prefix = bp.app.command_prefix();
    test_support::consuming(&format!("{prefix}.commands")).await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let version = bp.draft(&blueprint, shop()).await;

    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let command =
        catalogue::events::ValidateBlueprint { blueprint_id: blueprint.parse().unwrap(), version: version as i32 };
    let envelope = Envelope::new(&TenantId::parse(&bp.tenant).unwrap(), &meta, &command);
    publish(&format!("{prefix}.ValidateBlueprint"), &serde_json::to_vec(&envelope).unwrap()).await;

    eventually("the command to validate the version", WAIT, || async {
        bp.statuses(&blueprint).await == vec![(version, "VALIDATED".to_owned())]
    })
    .await;
    let d = bp
        .ok(
            "query($b: ID!) { blueprint(id: $b) { validatedVersion { validatedRunId validationRuns { runId valid } } } }",
            json!({ "b": blueprint }),
        )
        .await;
    let v = &d["blueprint"]["validatedVersion"];
    assert_eq!(v["validationRuns"][0]["valid"], true);
    assert_eq!(v["validationRuns"][0]["runId"], v["validatedRunId"]);
    bp.app.cleanup().await;
}

/// Rows of the projection, as the database has them.
async fn projected_rows(admin: &sqlx::PgPool, blueprint: &str) -> Vec<String> {
    let mut out = Vec::new();
    for q in [
        "SELECT format('%s|%s|%s', name, position, modules) FROM bounded_contexts WHERE blueprint_id = $1::uuid ORDER BY 1",
        "SELECT format('%s|%s|%s|%s', context, name, position, entities) FROM domain_aggregates
         WHERE blueprint_id = $1::uuid ORDER BY 1",
        "SELECT format('%s|%s|%s', upstream, downstream, kind) FROM context_relationships WHERE blueprint_id = $1::uuid ORDER BY 1",
        "SELECT format('v%s', version) FROM context_map_sources WHERE blueprint_id = $1::uuid",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(q).bind(blueprint).fetch_all(admin).await.unwrap();
        out.extend(rows);
    }
    out
}

#[tokio::test]
async fn the_context_map_is_projected_after_validation_and_rebuilds_to_the_same_rows() {
    let bp = start().await;
    let prefix = bp.app.command_prefix();
    test_support::consuming(&format!("{prefix}.context-maps")).await;
    // The relay publishes under `catalogue.`; this app's consumers listen under its own prefix, so the test
    // forwards what the relay published.
    let mut tap = Tap::new("catalogue.BlueprintVersionValidated").await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let version = bp.draft(&blueprint, shop()).await;
    let v = bp.validate(&blueprint, version).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");

    let delivery = tap.next("catalogue.BlueprintVersionValidated", &bp.tenant, WAIT).await.expect("the event");
    let mut envelope: Value = serde_json::from_slice(&delivery.data).unwrap();
    assert_eq!(envelope["projectId"], project.as_str());
    let key = format!("{prefix}.BlueprintVersionValidated");
    publish(&key, &delivery.data).await;

    let map = test_support::eventually_value("the context map", WAIT, || async {
        let m = bp.context_map(&project).await;
        (m["contexts"].as_array().is_some_and(|c| !c.is_empty())).then_some(m)
    })
    .await;
    assert_eq!(map["sources"], json!([{ "blueprintId": blueprint, "version": version }]));
    assert_eq!(
        map["contexts"],
        json!([
            { "name": "Ordering", "modules": [], "aggregates": [{ "name": "Order", "entities": ["OrderLine", "Payment"] }] },
            { "name": "Shipping", "modules": [], "aggregates": [{ "name": "Shipment", "entities": ["Parcel"] }] }
        ])
    );
    assert_eq!(
        map["relationships"],
        json!([{ "upstream": "Ordering", "downstream": "Shipping", "kind": "CUSTOMER_SUPPLIER" }])
    );

    // The same event again (a new event id, so the inbox lets it through) rebuilds the same rows.
    let admin = bp.app.admin_pool().await;
    let before = projected_rows(&admin, &blueprint).await;
    assert_eq!(before.len(), 2 + 2 + 1 + 1, "{before:?}");
    let again = format!("evt-{}", uuid::Uuid::now_v7());
    envelope["eventId"] = json!(again);
    publish(&key, &serde_json::to_vec(&envelope).unwrap()).await;
    eventually("the second projection", WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
            .bind(&again)
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 1
    })
    .await;
    assert_eq!(projected_rows(&admin, &blueprint).await, before);
    let projected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE event_type = 'ContextMapProjected' AND envelope->'payload'->>'blueprintId' = $1",
    )
    .bind(&blueprint)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(projected, 2);

    // Version 2 replaces the map; version 1's event arriving late changes nothing.
    let v2 = bp
        .draft(&blueprint, json!({ "contexts": [{ "name": "Catalog", "aggregates": [{ "name": "Product" }] }] }))
        .await;
    let v = bp.validate(&blueprint, v2).await;
    assert_eq!(v["data"]["validateBlueprint"]["valid"], true, "{v}");
    let d = tap.next("catalogue.BlueprintVersionValidated", &bp.tenant, WAIT).await.expect("the second event");
    publish(&key, &d.data).await;
    eventually("version 2's context map", WAIT, || async {
        bp.context_map(&project).await["contexts"]
            == json!([{ "name": "Catalog", "modules": [], "aggregates": [{ "name": "Product", "entities": [] }] }])
    })
    .await;
    let late = format!("evt-{}", uuid::Uuid::now_v7());
    envelope["eventId"] = json!(late);
    publish(&key, &serde_json::to_vec(&envelope).unwrap()).await;
    eventually("the late event to be consumed", WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
            .bind(&late)
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 1
    })
    .await;
    let map = bp.context_map(&project).await;
    assert_eq!(map["sources"], json!([{ "blueprintId": blueprint, "version": v2 }]));
    assert_eq!(map["contexts"].as_array().unwrap().len(), 1);
    bp.app.cleanup().await;
}

#[tokio::test]
async fn retention_drops_partitions_older_than_the_cutoff_and_keeps_recent_results() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let version = bp.draft(&blueprint, json!({ "modules": ["ghost"] })).await;
    let v = bp.validate(&blueprint, version).await;
    let recent_run = v["data"]["validateBlueprint"]["runId"].as_str().unwrap().to_owned();

    // A run 14 months old, in a partition the owner makes for it (as the worker would have then).
    let mut owner = PgConnection::connect(&bp.app.db.owner_url).await.unwrap();
    owner.execute("SELECT catalogue_validation_partitions_ensure(now() - interval '14 months', 0)").await.unwrap();
    let old_partition: String = sqlx::query_scalar(
        "SELECT 'blueprint_validation_results_' || to_char(now() AT TIME ZONE 'UTC' - interval '14 months', 'YYYYMM')",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let admin = bp.app.admin_pool().await;
    let old_run = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO blueprint_validation_runs
           (tenant_id, recorded_at, run_id, blueprint_id, project_id, version, valid, errors, warnings, infos)
         VALUES ($1, now() - interval '14 months', $2, $3::uuid, $4::uuid, 1, false, 1, 0, 0)",
    )
    .bind(&bp.tenant)
    .bind(old_run)
    .bind(&blueprint)
    .bind(&project)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO blueprint_validation_results
           (tenant_id, recorded_at, run_id, ordinal, blueprint_id, version, rule, severity, message, location)
         SELECT tenant_id, recorded_at, run_id, 0, blueprint_id, version, 'structure', 'Error', 'old', '$'
         FROM blueprint_validation_runs WHERE run_id = $1",
    )
    .bind(old_run)
    .execute(&admin)
    .await
    .unwrap();

    // The app's own worker may get there first (its start-up pass races this test); either way the
    // retention pass is what drops the partition, and afterwards it is gone.
    let report = catalogue::blueprints::retention::run_once(&bp.app.state).await.map_err(anyhow::Error::from).unwrap();
    let old_month = &old_partition[old_partition.len() - 6..];
    assert!(report.dropped.iter().all(|p| p.ends_with(old_month)), "only the old month goes: {report:?}");
    let exists: Option<String> =
        sqlx::query_scalar("SELECT to_regclass($1)::text").bind(&old_partition).fetch_one(&admin).await.unwrap();
    assert_eq!(exists, None);
    let count = |run: String| {
        let admin = admin.clone();
        async move {
            let r = sqlx::query("SELECT (SELECT count(*) FROM blueprint_validation_runs WHERE run_id = $1::uuid) AS runs,
                                        (SELECT count(*) FROM blueprint_validation_results WHERE run_id = $1::uuid) AS results")
                .bind(run)
                .fetch_one(&admin)
                .await
                .unwrap();
            (r.get::<i64, _>("runs"), r.get::<i64, _>("results"))
        }
    };
    assert_eq!(count(old_run.to_string()).await, (0, 0));
    let (runs, results) = count(recent_run.clone()).await;
    assert_eq!(runs, 1);
    assert!(results > 0);
    // The app role owns nothing: it reaches partitions only through the parent and the owner's functions.
    let current: String =
        sqlx::query_scalar("SELECT 'blueprint_validation_results_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')")
            .fetch_one(&admin)
            .await
            .unwrap();
    let mut app_conn = PgConnection::connect(&bp.app.db.app_url).await.unwrap();
    for stmt in [format!("DROP TABLE {current}"), format!("SELECT count(*) FROM {current}")] {
        let err = app_conn.execute(stmt.as_str()).await.unwrap_err().to_string();
        assert!(err.contains("must be owner") || err.contains("permission denied"), "{stmt}: {err}");
    }

    // Partitions ahead are there, and a second pass has nothing to do.
    let again = catalogue::blueprints::retention::run_once(&bp.app.state).await.map_err(anyhow::Error::from).unwrap();
    assert_eq!(again, Default::default());
    bp.app.cleanup().await;
}

/// The seed: no retention deletes a held tenant's data. Tenancy's `TenantLegalHoldChanged` reaches
/// catalogue, and a partition past retention holding the held tenant's results stays until the hold is lifted.
#[tokio::test]
async fn retention_keeps_a_partition_holding_a_tenant_on_legal_hold() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let admin = bp.app.admin_pool().await;
    let mut owner = PgConnection::connect(&bp.app.db.owner_url).await.unwrap();
    owner.execute("SELECT catalogue_validation_partitions_ensure(now() - interval '15 months', 0)").await.unwrap();
    let old_partition: String = sqlx::query_scalar(
        "SELECT 'blueprint_validation_runs_' || to_char(now() AT TIME ZONE 'UTC' - interval '15 months', 'YYYYMM')",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO blueprint_validation_runs
           (tenant_id, recorded_at, run_id, blueprint_id, project_id, version, valid, errors, warnings, infos)
         VALUES ($1, now() - interval '15 months', $2, $3::uuid, $4::uuid, 1, true, 0, 0, 0)",
    )
    .bind(&bp.tenant)
    .bind(uuid::Uuid::now_v7())
    .bind(&blueprint)
    .bind(&project)
    .execute(&admin)
    .await
    .unwrap();
    let hold = |on: bool, at: chrono::DateTime<chrono::Utc>| {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
        let payload =
            kernel::contracts::tenancy::TenantLegalHoldChanged { tenant_id: bp.tenant.clone(), legal_hold: on };
        let mut env = Envelope::new(&TenantId::parse(&bp.tenant).unwrap(), &meta, &payload);
        env.occurred_at = at;
        serde_json::to_vec(&env).unwrap()
    };
    let key = format!("{}.tenancy.TenantLegalHoldChanged", bp.app.command_prefix());
    let held = || async {
        sqlx::query_scalar::<_, bool>("SELECT on_hold FROM legal_holds WHERE tenant_id = $1")
            .bind(&bp.tenant)
            .fetch_optional(&admin)
            .await
            .unwrap()
    };
    let exists = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::text")
            .bind(&old_partition)
            .fetch_one(&admin)
            .await
            .unwrap()
            .is_some()
    };

    let on_at = chrono::Utc::now();
    publish(&key, &hold(true, on_at)).await;
    eventually("the hold to reach catalogue", WAIT, || async { held().await == Some(true) }).await;
    let report = catalogue::blueprints::retention::run_once(&bp.app.state).await.map_err(anyhow::Error::from).unwrap();
    assert!(!report.dropped.contains(&old_partition), "{report:?}");
    assert!(exists().await, "the held tenant's partition is kept");

    // An older event (redelivered late) does not lift the hold; the newer one does.
    publish(&key, &hold(false, on_at - chrono::TimeDelta::hours(1))).await;
    eventually("the late event to be consumed", WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE handler = 'catalogue.legal-holds'")
            .fetch_one(&admin)
            .await
            .unwrap();
        n == 2
    })
    .await;
    assert_eq!(held().await, Some(true), "an older event does not lift a newer hold");
    publish(&key, &hold(false, on_at + chrono::TimeDelta::seconds(1))).await;
    eventually("the hold to be lifted", WAIT, || async { held().await == Some(false) }).await;
    let report = catalogue::blueprints::retention::run_once(&bp.app.state).await.map_err(anyhow::Error::from).unwrap();
    assert!(report.dropped.contains(&old_partition), "{report:?}");
    assert!(!exists().await);
    bp.app.cleanup().await;
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_validate_a_blueprint() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let version = bp.draft(&blueprint, shop()).await;
    let other = bp.app.tenant_token(&format!("other-{}", bp.app.id), &["catalogue:read", "catalogue:write"]);

    let v = bp.app.gql(&other, "query($b: ID!) { blueprint(id: $b) { name } }", json!({ "b": blueprint })).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let v = bp
        .app
        .gql(
            &other,
            "mutation($b: ID!, $v: Int!) { validateBlueprint(blueprintId: $b, version: $v) { valid } }",
            json!({ "b": blueprint, "v": version }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let v = bp
        .app
        .gql(
            &other,
            "mutation($b: ID!) { draftBlueprintVersion(blueprintId: $b, definition: {}) { version } }",
            json!({ "b": blueprint }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let v = bp
        .app
        .gql(
            &other,
            "mutation($p: ID!) { createBlueprint(projectId: $p, name: \"x\") { id } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    // The owner's view is untouched: still one draft, never validated.
    assert_eq!(bp.statuses(&blueprint).await, vec![(version, "DRAFT".to_owned())]);
    let d = bp.ok("query($p: ID!) { project(id: $p) { blueprints { name } } }", json!({ "p": project })).await;
    assert_eq!(d["project"]["blueprints"], json!([{ "name": "main" }]));
    bp.app.cleanup().await;
}

#[tokio::test]
async fn nested_blueprint_fields_batch_whatever_the_number_of_projects() {
    let bp = start().await;
    let query = "{ projects(first: 50) { nodes { blueprints { name versions { version status
                   validationRuns { valid results { rule location } } } }
                   contextMap { contexts { name aggregates { name } } relationships { kind } } } } }";
    let add = |slug: &'static str| {
        let bp = &bp;
        async move {
            let project = bp.project(slug).await;
            for name in ["one", "two"] {
                let blueprint = bp.blueprint(&project, name).await;
                let version = bp.draft(&blueprint, json!({ "modules": ["ghost"] })).await;
                bp.validate(&blueprint, version).await;
            }
        }
    };
    add("first").await;
    let (one, d) = test_support::count_statements(bp.app.ok(&bp.token, query, json!({}))).await;
    assert_eq!(d["projects"]["nodes"][0]["blueprints"][0]["versions"][0]["validationRuns"][0]["valid"], false);
    add("second").await;
    add("third").await;
    let (three, d) = test_support::count_statements(bp.app.ok(&bp.token, query, json!({}))).await;
    assert_eq!(d["projects"]["nodes"].as_array().unwrap().len(), 3);
    assert!(one > 0);
    assert_eq!(one, three, "statements grew with the number of projects");
    bp.app.cleanup().await;
}

#[tokio::test]
async fn an_archived_projects_blueprints_are_read_only() {
    let bp = start().await;
    let project = bp.project("shop").await;
    let blueprint = bp.blueprint(&project, "main").await;
    let version = bp.draft(&blueprint, shop()).await;
    bp.ok("mutation($p: ID!) { archiveProject(id: $p) { status } }", json!({ "p": project })).await;

    let v = bp
        .gql("mutation($p: ID!) { createBlueprint(projectId: $p, name: \"other\") { id } }", json!({ "p": project }))
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let v = bp
        .gql(
            "mutation($b: ID!) { draftBlueprintVersion(blueprintId: $b, definition: {}) { version } }",
            json!({ "b": blueprint }),
        )
        .await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    assert_eq!(code(&bp.validate(&blueprint, version).await), "CONFLICT");
    // Still readable.
    assert_eq!(bp.statuses(&blueprint).await, vec![(version, "DRAFT".to_owned())]);
    bp.app.cleanup().await;
}
