//! Definitions: publication and its checks (each naming the step), versions and idempotency,
//! immutability (API and SQL), the platform registry (loaded once, a second load changing nothing), the
//! skills catalogue announces, and tenant isolation.

use serde_json::{json, Value};
use test_support::code;

use crate::helpers::{app, member, skill_published, tenant};

const PUBLISH: &str = "mutation($input: PublishWorkflowDefinitionInput!) {
    publishWorkflowDefinition(input: $input) { key version name status platform contentHash start
      steps { id type next skill pool waitSeconds branches join approverRoles quorum retry { maxAttempts } } } }";
const GET: &str = "query($key: String!, $version: Int, $platform: Boolean! = false) {
    workflowDefinition(key: $key, version: $version, platform: $platform) { key version status name steps { id } } }";

fn task(id: &str, next: Option<&str>) -> Value {
    json!({ "id": id, "type": "AgentTask", "skill": "summarize", "pool": "writers", "next": next })
}

/// The publish input for `steps` as the registry files write them (`"type": "AgentTask"`), with each type
/// as the GraphQL enum names it (`AGENT_TASK`).
fn input(key: &str, mut steps: Value) -> Value {
    for s in steps.as_array_mut().unwrap() {
        let t = s["type"].as_str().unwrap().replace("AgentTask", "AGENT_TASK").to_uppercase();
        s["type"] = json!(t);
    }
    json!({ "input": { "key": key, "name": "Review", "start": steps[0]["id"], "steps": steps } })
}

/// The step a refusal names, and its message.
fn refused(v: &Value) -> (String, String) {
    assert_eq!(code(v), "BAD_USER_INPUT", "{v}");
    let e = &v["errors"][0];
    (e["extensions"]["step"].as_str().unwrap_or_default().to_owned(), e["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn publishing_versions_a_definition_and_the_same_steps_again_change_nothing() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    skill_published(&app, &t, "summarize", "1.0.0").await;
    let steps = json!([task("draft", Some("wait")), { "id": "wait", "type": "Wait", "waitSeconds": 30 }]);

    let v1 = app.ok(&token, PUBLISH, input("review", steps.clone())).await;
    let d = &v1["publishWorkflowDefinition"];
    assert_eq!(
        (d["version"].as_i64(), d["status"].as_str(), d["platform"].as_bool()),
        (Some(1), Some("PUBLISHED"), Some(false))
    );
    assert_eq!(d["steps"][0]["type"], "AGENT_TASK");
    assert_eq!(d["steps"][0]["skill"], "summarize");
    assert_eq!(d["steps"][1]["waitSeconds"], 30);
    assert!(d["contentHash"].as_str().unwrap().starts_with("sha256:"));

    // The same steps again: the same version, nothing new.
    let again = app.ok(&token, PUBLISH, input("review", steps.clone())).await;
    assert_eq!(again["publishWorkflowDefinition"]["version"], 1);
    // Changed steps: the next version; the first is still there as it was.
    let changed = json!([task("draft", Some("wait")), { "id": "wait", "type": "Wait", "waitSeconds": 60 }]);
    let v2 = app.ok(&token, PUBLISH, input("review", changed)).await;
    assert_eq!(v2["publishWorkflowDefinition"]["version"], 2);
    let first = app.ok(&token, GET, json!({ "key": "review", "version": 1 })).await;
    assert_eq!(first["workflowDefinition"]["version"], 1);
    let latest = app.ok(&token, GET, json!({ "key": "review" })).await;
    assert_eq!(latest["workflowDefinition"]["version"], 2);

    // Deprecated once, and only once.
    let dep = "mutation { deprecateWorkflowDefinition(key: \"review\", version: 1) { status deprecatedAt } }";
    let d = app.ok(&token, dep, json!({})).await;
    assert_eq!(d["deprecateWorkflowDefinition"]["status"], "DEPRECATED");
    assert_eq!(code(&app.gql(&token, dep, json!({})).await), "CONFLICT");
    app.cleanup().await;
}

#[tokio::test]
async fn steps_that_do_not_hold_together_are_refused_naming_the_step_and_nothing_is_stored() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    skill_published(&app, &t, "summarize", "1.0.0").await;
    let cases = [
        (json!([task("a", Some("nowhere"))]), "a", "`nowhere`"),
        (json!([task("a", None), task("orphan", None)]), "orphan", "no path"),
        (json!([task("a", Some("b")), task("b", Some("a"))]), "a", "no Wait"),
        (
            json!([{ "id": "fork", "type": "Parallel", "branches": ["x", "y"], "join": "meet" },
                   task("x", Some("meet")), task("y", None), { "id": "meet", "type": "Join" }]),
            "meet",
            "branch `y`",
        ),
        (json!([task("a", Some("meet")), { "id": "meet", "type": "Join" }]), "meet", "Parallel"),
        // A field of another type.
        (json!([{ "id": "w", "type": "Wait", "waitSeconds": 5, "skill": "summarize" }]), "w", "unknown field `skill`"),
        // A field its type needs.
        (json!([{ "id": "w", "type": "Wait" }]), "w", "missing field `waitSeconds`"),
        // A skill catalogue never published (or not in the asked range).
        (
            json!([{ "id": "a", "type": "AgentTask", "skill": "translate", "pool": "p" }]),
            "a",
            "no published skill `translate`",
        ),
        (
            json!([{ "id": "a", "type": "AgentTask", "skill": "summarize", "skillVersion": "^2", "pool": "p" }]),
            "a",
            "`^2`",
        ),
    ];
    for (steps, step, says) in cases {
        let v = app.gql(&token, PUBLISH, input("broken", steps.clone())).await;
        let (named, message) = refused(&v);
        assert_eq!(named, step, "{steps}: {message}");
        assert!(message.contains(says), "{steps}: {message}");
    }
    let none = app.ok(&token, GET, json!({ "key": "broken" })).await;
    assert!(none["workflowDefinition"].is_null(), "nothing was stored: {none}");
    let bad_key = app.gql(&token, PUBLISH, input("Bad Key", json!([task("a", None)]))).await;
    assert_eq!(code(&bad_key), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn a_published_version_cannot_change_even_in_sql_and_events_are_append_only() {
    let app = app().await;
    let t = tenant(&app, "acme");
    let token = member(&app, &t);
    skill_published(&app, &t, "summarize", "1.0.0").await;
    app.ok(&token, PUBLISH, input("frozen", json!([task("a", None)]))).await;
    let admin = app.admin_pool().await;
    let err = sqlx::query("UPDATE workflow_definitions SET spec = '{}' WHERE key = 'frozen'")
        .execute(&admin)
        .await
        .expect_err("the trigger refuses");
    assert!(err.to_string().contains("immutable"), "{err}");
    // The app role may not delete a definition at all.
    let app_err =
        sqlx::query("DELETE FROM workflow_definitions").execute(app.pool()).await.expect_err("no DELETE grant");
    assert!(app_err.to_string().contains("permission denied"), "{app_err}");
    app.cleanup().await;
}

#[tokio::test]
async fn the_platform_registry_is_loaded_once_and_every_tenant_reads_it() {
    let app = app().await;
    let token = member(&app, &tenant(&app, "acme"));
    let list = app
        .ok(
            &token,
            "{ workflowDefinitions(platform: true) { nodes { key version platform steps { id type } } } }",
            json!({}),
        )
        .await;
    let nodes = list["workflowDefinitions"]["nodes"].as_array().unwrap();
    let keys: Vec<&str> = nodes.iter().map(|n| n["key"].as_str().unwrap()).collect();
    let files = workflow::definitions::registry::entries().unwrap();
    assert_eq!(keys.len(), files.len(), "{list}");
    assert!(keys.contains(&"content-review") && keys.contains(&"parallel-checks"), "{keys:?}");
    assert!(nodes.iter().all(|n| n["platform"] == true));
    let review = app.ok(&token, GET, json!({ "key": "content-review", "platform": true })).await;
    assert_eq!(review["workflowDefinition"]["steps"].as_array().unwrap().len(), 3);

    // Loading again (a restart, an upgrade with nothing new) changes nothing: no row, no event.
    let admin = app.admin_pool().await;
    let count = |sql: &'static str| {
        let admin = admin.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&admin).await.unwrap() }
    };
    let (rows, events) =
        (count("SELECT count(*) FROM workflow_definitions").await, count("SELECT count(*) FROM outbox").await);
    let loaded = workflow::definitions::registry::load(&app.state.kernel.db).await.unwrap();
    assert_eq!(loaded, workflow::definitions::registry::Loaded { published: 0, unchanged: files.len() });
    assert_eq!(count("SELECT count(*) FROM workflow_definitions").await, rows);
    assert_eq!(count("SELECT count(*) FROM outbox").await, events);
    app.cleanup().await;
}

#[tokio::test]
async fn tenants_see_only_their_own_definitions_and_skills() {
    let app = app().await;
    let (a, b) = (tenant(&app, "alpha"), tenant(&app, "beta"));
    let (ta, tb) = (member(&app, &a), member(&app, &b));
    skill_published(&app, &a, "summarize", "1.0.0").await;
    app.ok(&ta, PUBLISH, input("mine", json!([task("a", None)]))).await;
    let other = app.ok(&tb, GET, json!({ "key": "mine" })).await;
    assert!(other["workflowDefinition"].is_null(), "{other}");
    let listed = app.ok(&tb, "{ workflowDefinitions { nodes { key } } }", json!({})).await;
    assert_eq!(listed["workflowDefinitions"]["nodes"], json!([]));
    // Beta has no skill `summarize` (alpha's is alpha's); a platform skill is everyone's.
    let v = app.gql(&tb, PUBLISH, input("theirs", json!([task("a", None)]))).await;
    assert_eq!(refused(&v).0, "a");
    skill_published(&app, "platform", "summarize", "2.1.0").await;
    app.ok(&tb, PUBLISH, input("theirs", json!([task("a", None)]))).await;
    // Without the permission, nothing.
    let reader = app.tenant_token(&b, &["workflow:read"]);
    assert_eq!(code(&app.gql(&reader, PUBLISH, input("nope", json!([task("a", None)]))).await), "FORBIDDEN");
    app.cleanup().await;
}
