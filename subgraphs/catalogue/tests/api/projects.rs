//! Projects: creation with their environments, archive (read-only, hidden), the idempotent CreateProject
//! command, coded errors with nothing half-written.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{code, spawn_app};

#[tokio::test]
async fn a_project_comes_with_its_environments_and_archiving_makes_it_read_only_and_hidden() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let id = app.project(&t, "web-shop").await;
    let v = app
        .ok(
            &t,
            "query($id: ID!) { project(id: $id) { slug status writable environments { name version } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(v["project"]["status"], "ACTIVE");
    let names: Vec<&str> =
        v["project"]["environments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev", "test", "staging", "prod"]);

    // The slug is unique within the tenant.
    let dup = app
        .gql(&t, "mutation { createProject(input: { slug: \"web-shop\", name: \"Again\" }) { id } }", json!({}))
        .await;
    assert_eq!(code(&dup), "CONFLICT", "{dup}");

    app.ok(&t, "mutation($id: ID!) { archiveProject(id: $id) { status archivedAt } }", json!({ "id": id })).await;
    let listed = app
        .ok(
            &t,
            "{ projects { nodes { slug } } all: projects(includeArchived: true) { nodes { slug status } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["projects"]["nodes"], json!([]));
    assert_eq!(listed["all"]["nodes"], json!([{ "slug": "web-shop", "status": "ARCHIVED" }]));

    // Read-only: through the API, and in SQL for any writer.
    for (what, q) in [
        ("rename", "mutation($id: ID!) { updateProject(id: $id, input: { name: \"X\" }) { id } }"),
        ("module", "mutation($id: ID!) { registerModule(input: { projectId: $id, name: \"m\", version: \"1.0.0\", kind: \"service\" }) { id } }"),
        ("environment", "mutation($id: ID!) { changeEnvironment(projectId: $id, name: dev, config: {}) { change { status } } }"),
        ("archive again", "mutation($id: ID!) { archiveProject(id: $id) { id } }"),
    ] {
        let v = app.gql(&t, q, json!({ "id": id })).await;
        assert_eq!(code(&v), "CONFLICT", "{what}: {v}");
    }
    let admin = app.admin_pool().await;
    let err = sqlx::query("UPDATE environments SET config = '{\"x\": 1}' WHERE project_id = $1::uuid")
        .bind(&id)
        .execute(&admin)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("archived and read-only"), "{err}");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_coded_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.member("acme");
    for (field, input) in [
        ("slug", json!({ "slug": "No Spaces", "name": "P" })),
        ("slug", json!({ "slug": "ab", "name": "P" })),
        ("name", json!({ "slug": "fine-slug", "name": "   " })),
        ("description", json!({ "slug": "fine-slug", "name": "P", "description": "x".repeat(4001) })),
    ] {
        let v = app
            .gql(&t, "mutation($i: CreateProjectInput!) { createProject(input: $i) { id } }", json!({ "i": input }))
            .await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
    }
    let v = app.gql(&t, "{ project(id: \"not-a-uuid\") { id } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    // Without the write permission, nothing happens either.
    let reader = app.tenant_token("acme", &["catalogue:read"]);
    let v = app
        .gql(&reader, "mutation { createProject(input: { slug: \"fine-slug\", name: \"P\" }) { id } }", json!({}))
        .await;
    assert_eq!(code(&v), "FORBIDDEN");
    let admin = app.admin_pool().await;
    let (projects, outbox): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM projects), (SELECT count(*) FROM outbox)")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!((projects, outbox), (0, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn create_project_commands_are_idempotent() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.commands", app.command_prefix())).await;
    let command = catalogue::events::CreateProject {
        slug: "from-command".into(),
        name: "By command".into(),
        description: String::new(),
        owner_principal_id: None,
    };
    // The same envelope twice (redelivery), then the same command again under a new event id (a retry by
    // the sender), then a sentinel: once the sentinel exists, everything before it was handled.
    let env = app.publish("acme", "CreateProject", &command).await;
    app.publish_envelope("CreateProject", &env).await;
    app.publish("acme", "CreateProject", &command).await;
    let sentinel = catalogue::events::CreateProject { slug: "sentinel".into(), ..command.clone() };
    app.publish("acme", "CreateProject", &sentinel).await;

    let admin = app.admin_pool().await;
    test_support::eventually("the commands to be consumed", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM projects WHERE slug = 'sentinel'")
            .fetch_one(&admin)
            .await
            .unwrap()
            == 1
    })
    .await;
    let (projects, created): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM projects WHERE tenant_id = 'acme' AND slug = 'from-command'),
                (SELECT count(*) FROM outbox WHERE event_type = 'ProjectCreated' AND envelope->'payload'->>'slug' = 'from-command')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((projects, created), (1, 1));
    let envs: i64 = sqlx::query_scalar("SELECT count(*) FROM environments e JOIN projects p USING (tenant_id, project_id) WHERE p.slug = 'from-command'")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(envs, 4);
    app.cleanup().await;
}
