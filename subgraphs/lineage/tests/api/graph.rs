//! The lineage graph: edges from recorded versions (task, blueprint, derived-from), from catalogue's
//! deployments and from OpenLineage events, each once; traversals upstream and downstream with depth
//! limits, paths and kinds, cycle-safe; OpenLineage events read strictly against the spec with nothing
//! recorded for a refused one; tenant isolation.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use kernel::broker::{Broker, EXCHANGE};
use kernel::contracts::catalogue::EnvironmentChanged;
use kernel::envelope::{Envelope, Event, EventMeta};
use kernel::TenantId;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::bodies::sha256;
use crate::App;

const REGISTER: &str =
    "mutation($id: String!) { registerArtifact(input: { id: $id, artifactType: \"dataset\", name: $id }) { id } }";
const RECORD: &str =
    "mutation($input: RecordArtifactVersionInput!) { recordArtifactVersion(input: $input) { version } }";
const LINEAGE: &str = "query($n: ID!, $d: Int, $dir: LineageDirection, $k: [LineageNodeKind!]) {
    lineage(nodeId: $n, depth: $d, direction: $dir, kinds: $k) { root truncated
        nodes { id kind depth direction path node { label environment facets } } edges { from to kind } } }";

async fn lineage(
    app: &App,
    token: &str,
    node: &str,
    depth: Option<i32>,
    dir: Option<&str>,
    kinds: Option<&[&str]>,
) -> Value {
    let v = json!({ "n": node, "d": depth, "dir": dir, "k": kinds });
    app.ok(token, LINEAGE, v).await["lineage"].clone()
}

fn ids(graph: &Value) -> Vec<String> {
    graph["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

async fn publish(app: &App, env: &Envelope) {
    let ch = Broker::new(test_support::AMQP_URL.to_owned().into()).channel().await.unwrap();
    let key = format!("{}.{}", app.command_prefix(), EnvironmentChanged::routing_key());
    let body = serde_json::to_vec(env).unwrap();
    let props = BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(EXCHANGE, &key, BasicPublishOptions::default(), &body, props).await.unwrap().await.unwrap();
}

async fn edges_published(app: &App, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type = 'LineageEdgeRecorded'")
        .bind(tenant)
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn versions_tasks_blueprints_and_deployments_form_one_graph_traversed_within_its_depth() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    test_support::consuming(&format!("{}.deployments", app.command_prefix())).await;
    let (task, blueprint, project) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for id in ["raw", "clean", "report"] {
        app.ok(&token, REGISTER, json!({ "id": id })).await;
    }
    let record = |input: Value| app.ok(&token, RECORD, json!({ "input": input }));
    record(json!({ "artifactId": "raw", "version": "1.0.0", "contentHash": sha256(b"raw"),
        "producedByTaskId": task, "sourceBlueprintId": blueprint }))
    .await;
    record(json!({ "artifactId": "clean", "version": "1.0.0", "contentHash": sha256(b"clean"),
        "derivedFrom": [{ "artifactId": "raw", "version": "1.0.0" }] }))
    .await;
    record(json!({ "artifactId": "report", "version": "1.0.0", "contentHash": sha256(b"report"),
        "derivedFrom": [{ "artifactId": "clean", "version": "1.0.0" }, { "artifactId": "raw", "version": "1.0.0" }] }))
    .await;

    // Catalogue deploys the report to prod (config version 3); delivered twice, with an entry lineage
    // cannot read.
    let changed = EnvironmentChanged {
        project_id: project.into(),
        environment: "prod".into(),
        version: 3,
        config: json!({ "replicas": 2, "artifacts": [{ "artifactId": "report", "version": "1.0.0" }, { "bad": 1 }] }),
    };
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let env = Envelope::new(&TenantId::parse(&t).unwrap(), &meta, &changed);
    publish(&app, &env).await;
    publish(&app, &env).await;
    // The same deployment told again in another event (the inbox does not stop it): no edge twice.
    publish(&app, &Envelope::new(&TenantId::parse(&t).unwrap(), &meta, &changed)).await;
    let deployment = format!("deployment:{project}/prod@3");
    let task_node = format!("task:{task}");

    // What reached prod from the task: the deployment, along a shortest path.
    let reached = test_support::eventually_value("the deployment edge", Duration::from_secs(10), || async {
        let g = lineage(&app, &token, &task_node, None, Some("DOWNSTREAM"), Some(&["DEPLOYMENT"])).await;
        (!g["nodes"].as_array().unwrap().is_empty()).then_some(g)
    })
    .await;
    assert_eq!(reached["nodes"].as_array().unwrap().len(), 1);
    let d = &reached["nodes"][0];
    assert_eq!((d["id"].as_str().unwrap(), d["depth"].as_i64()), (deployment.as_str(), Some(3)));
    assert_eq!(d["node"]["environment"], "prod");
    assert_eq!(d["path"], json!([task_node, "artifact:raw@1.0.0", "artifact:report@1.0.0", deployment]));

    // What was produced from the blueprint.
    let g =
        lineage(&app, &token, &format!("blueprint:{blueprint}"), None, Some("DOWNSTREAM"), Some(&["ARTIFACT"])).await;
    assert_eq!(ids(&g), ["artifact:raw@1.0.0", "artifact:clean@1.0.0", "artifact:report@1.0.0"]);

    // Upstream of the deployment, within the depth asked.
    let up = |d| lineage(&app, &token, &deployment, Some(d), Some("UPSTREAM"), None);
    assert_eq!(ids(&up(1).await), ["artifact:report@1.0.0"]);
    assert_eq!(ids(&up(2).await), ["artifact:report@1.0.0", "artifact:clean@1.0.0", "artifact:raw@1.0.0"]);
    let all = up(20).await;
    let mut reached = ids(&all);
    reached.sort();
    let mut expected = vec![
        "artifact:clean@1.0.0".to_owned(),
        "artifact:raw@1.0.0".into(),
        "artifact:report@1.0.0".into(),
        format!("blueprint:{blueprint}"),
        task_node.clone(),
    ];
    expected.sort();
    assert_eq!(reached, expected);
    assert_eq!(all["edges"].as_array().unwrap().len(), 6, "{}", all["edges"]);
    assert!(all["nodes"].as_array().unwrap().iter().all(|n| n["direction"] == "UPSTREAM"));

    // Both ways by default, from the middle.
    let g = lineage(&app, &token, "artifact:clean@1.0.0", None, None, None).await;
    assert!(ids(&g).contains(&deployment) && ids(&g).contains(&task_node));

    // Each edge once, however often reported: both events applied, one edge published.
    let admin = app.admin_pool().await;
    test_support::eventually("both deployment events applied", Duration::from_secs(10), || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbox WHERE tenant_id = $1 AND handler = 'lineage.deployments'")
                .bind(&t)
                .fetch_one(&admin)
                .await
                .unwrap();
        n == 2
    })
    .await;
    assert_eq!(edges_published(&app, &t).await, 6);

    // Bad input is coded and records nothing.
    for (node, depth) in
        [("nothing", None), ("task:", None), (task_node.as_str(), Some(0)), (task_node.as_str(), Some(101))]
    {
        let v = app.gql(&token, LINEAGE, json!({ "n": node, "d": depth })).await;
        assert_eq!(test_support::code(&v), "BAD_USER_INPUT", "{node} {depth:?}: {v}");
    }
    let v = app
        .gql(
            &token,
            RECORD,
            json!({ "input": { "artifactId": "report", "version": "2.0.0", "contentHash": sha256(b"x"),
            "derivedFrom": [{ "artifactId": "raw", "version": "9.9.9" }] } }),
        )
        .await;
    assert_eq!(test_support::code(&v), "BAD_USER_INPUT", "{v}");
    let q = "{ artifact(id: \"report\") { version(version: \"2.0.0\") { version } } }";
    assert_eq!(app.ok(&token, q, json!({})).await["artifact"]["version"], Value::Null);
    assert_eq!(edges_published(&app, &t).await, 6);

    // Another tenant sees none of it.
    let other = app.tenant_token(&format!("other-{}", app.id), &["lineage:read"]);
    assert_eq!(lineage(&app, &other, &task_node, None, None, None).await["nodes"], json!([]));
    app.cleanup().await;
}

fn post(app: &App, token: &str, body: impl Into<Body>, content_type: &str) -> Request<Body> {
    Request::post("/api/v1/lineage")
        .header(kernel::server::ROUTER_SECRET_HEADER, app.config.router_secret.expose_secret())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

fn run_event(run: uuid::Uuid, job: &str, inputs: &[&str], outputs: &[&str], state: &str) -> Value {
    let ds = |name: &&str| json!({ "namespace": "postgres://db:5432", "name": name });
    json!({
        "eventType": state, "eventTime": "2026-12-07T10:00:00Z", "producer": "https://example.com/etl",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": { "runId": run }, "job": { "namespace": "etl", "name": job },
        "inputs": inputs.iter().map(ds).collect::<Vec<_>>(), "outputs": outputs.iter().map(ds).collect::<Vec<_>>(),
    })
}

async fn received(app: &App, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM openlineage_events WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn openlineage_events_are_read_strictly_and_a_cycle_ends_the_traversal() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);

    // A job that reads and writes the same table (a cycle: table → run → table), then one downstream.
    let (r1, r2) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for e in [
        run_event(r1, "dedupe", &["public.orders"], &["public.orders"], "COMPLETE"),
        run_event(r2, "rollup", &["public.orders"], &["public.daily"], "COMPLETE"),
    ] {
        let (status, v) = app.call(post(&app, &token, e.to_string(), "application/json")).await;
        assert_eq!(status, 201, "{v}");
    }
    let orders = "dataset:postgres://db:5432/public.orders";
    let g = lineage(&app, &token, orders, None, Some("DOWNSTREAM"), None).await;
    let mut reached = ids(&g);
    reached.sort();
    assert_eq!(
        reached,
        ["dataset:postgres://db:5432/public.daily".to_owned(), format!("run:{r1}"), format!("run:{r2}")]
    );
    let g = lineage(&app, &token, "dataset:postgres://db:5432/public.daily", None, Some("UPSTREAM"), None).await;
    let mut reached = ids(&g);
    reached.sort();
    assert_eq!(
        reached,
        [
            "dataset:postgres://db:5432/public.orders".to_owned(),
            "job:etl/dedupe".into(),
            "job:etl/rollup".into(),
            format!("run:{r1}"),
            format!("run:{r2}")
        ]
    );

    // Refused: nothing recorded, the field named.
    let before = received(&app, &t).await;
    let mut bad = run_event(uuid::Uuid::now_v7(), "x", &[], &["out"], "START");
    bad["run"].as_object_mut().unwrap().remove("runId");
    let (status, v) = app.call(post(&app, &token, bad.to_string(), "application/json")).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(v["errors"][0]["extensions"]["field"], "run.runId");
    let (status, _) = app.call(post(&app, &token, "{\"eventTime\": ", "application/json")).await;
    assert_eq!(status, 400);
    let (status, _) = app.call(post(&app, &token, "[]".repeat(200), "application/json")).await;
    assert_eq!(status, 400);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, _) = app.call(post(&app, &token, deep, "application/json")).await;
    assert_eq!(status, 400, "nesting is bounded before it recurses");
    let (status, _) = app.call(post(&app, &token, "x".repeat(2 << 20), "application/json")).await;
    assert_eq!(status, 413);
    let (status, _) =
        app.call(post(&app, &token, run_event(r1, "j", &[], &[], "START").to_string(), "text/plain")).await;
    assert_eq!(status, 415);
    let reader = app.tenant_token(&t, &["lineage:read"]);
    let (status, _) =
        app.call(post(&app, &reader, run_event(r1, "j", &[], &[], "START").to_string(), "application/json")).await;
    assert_eq!(status, 403);
    assert_eq!(received(&app, &t).await, before);
    app.cleanup().await;
}

#[tokio::test]
async fn facets_keep_the_latest_events_and_concurrent_tenants_stay_apart() {
    let app = crate::spawn().await;
    let (a, b) = (format!("acme-{}", app.id), format!("beta-{}", app.id));
    let (ta, tb) = (
        app.tenant_token(&a, &["lineage:read", "lineage:write"]),
        app.tenant_token(&b, &["lineage:read", "lineage:write"]),
    );
    let run = uuid::Uuid::now_v7();
    let at = |state: &str, time: &str, schema: &str| {
        let mut e = run_event(run, "load", &[], &["public.t"], state);
        e["eventTime"] = json!(time);
        e["outputs"][0]["facets"] = json!({ "schema": { "_producer": "https://p", "_schemaURL": "https://s",
            "fields": [{ "name": schema }] } });
        e.to_string()
    };
    // Both tenants at once (their events may share a batch), then a START retried late, older than the
    // COMPLETE already recorded.
    let (complete_a, complete_b) =
        (at("COMPLETE", "2026-12-07T10:05:00Z", "new"), at("COMPLETE", "2026-12-07T10:05:00Z", "b"));
    let ((sa, va), (sb, vb)) = tokio::join!(
        app.call(post(&app, &ta, complete_a, "application/json")),
        app.call(post(&app, &tb, complete_b, "application/json")),
    );
    assert_eq!((sa, sb), (201, 201), "{va} {vb}");
    let (status, v) = app.call(post(&app, &ta, at("START", "2026-12-07T10:00:00Z", "old"), "application/json")).await;
    assert_eq!(status, 201, "{v}");
    let q = "query($n: ID!) { lineageNode(id: $n) { facets } }";
    let facets = |token: &str, node: String| {
        let token = token.to_owned();
        let app = &app;
        async move { app.ok(&token, q, json!({ "n": node })).await["lineageNode"]["facets"].clone() }
    };
    let table = "dataset:postgres://db:5432/public.t".to_owned();
    assert_eq!(
        facets(&ta, format!("run:{run}")).await["state"],
        "COMPLETE",
        "the late START does not turn the run back"
    );
    assert_eq!(facets(&ta, table.clone()).await["schema"]["fields"][0]["name"], "new");
    assert_eq!(facets(&tb, table.clone()).await["schema"]["fields"][0]["name"], "b", "each tenant its own node");

    // Events the graph cannot hold are refused before they are written.
    let mut year0 = run_event(uuid::Uuid::now_v7(), "x", &[], &[], "START");
    year0["eventTime"] = json!("0000-01-01T00:00:00Z");
    let (status, v) = app.call(post(&app, &ta, year0.to_string(), "application/json")).await;
    assert_eq!((status, v["errors"][0]["extensions"]["field"].clone()), (400, json!("eventTime")), "{v}");
    let mut long = run_event(uuid::Uuid::now_v7(), "x", &[], &["x"], "START");
    long["outputs"][0]["name"] = json!("/".repeat(400));
    let (status, v) = app.call(post(&app, &ta, long.to_string(), "application/json")).await;
    assert_eq!((status, v["errors"][0]["extensions"]["field"].clone()), (400, json!("outputs[0].name")), "{v}");
    app.cleanup().await;
}
