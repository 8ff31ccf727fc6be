//! No tenant can see or change another tenant's catalogue: through the API, and in SQL as the app role.

use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::{code, spawn_app};

#[tokio::test]
async fn a_tenant_cannot_reach_another_tenants_catalogue_through_the_api() {
    let app = spawn_app().await;
    let (alpha, bravo) = (app.member("alpha"), app.member("bravo"));
    let p = app.project(&bravo, "secret-project").await;
    let m = app.module(&bravo, &p, "vault", json!({ "classified": true })).await;
    let m2 = app.module(&bravo, &p, "vault-ui", json!({})).await;
    let mine = app.project(&alpha, "mine").await;
    let my_module = app.module(&alpha, &mine, "mine", json!({})).await;

    for (what, q, vars) in [
        ("project", "query($id: ID!) { project(id: $id) { id } }", json!({ "id": p })),
        ("module", "query($id: ID!) { module(id: $id) { id } }", json!({ "id": m })),
        ("entity", "query($id: ID!) { _entities(representations: [{ __typename: \"Project\", id: $id }]) { ... on Project { id } } }", json!({ "id": p })),
        ("tenant entity", "{ _entities(representations: [{ __typename: \"Tenant\", id: \"bravo\" }]) { ... on Tenant { projects { nodes { id } } } } }", json!({})),
        ("environment", "query($id: ID!) { environment(projectId: $id, name: prod) { version } }", json!({ "id": p })),
        ("rename", "mutation($id: ID!) { updateProject(id: $id, input: { name: \"pwned\" }) { id } }", json!({ "id": p })),
        ("archive", "mutation($id: ID!) { archiveProject(id: $id) { id } }", json!({ "id": p })),
        ("change", "mutation($id: ID!) { changeEnvironment(projectId: $id, name: dev, config: { a: 1 }) { change { id } } }", json!({ "id": p })),
        ("register", "mutation($id: ID!) { registerModule(input: { projectId: $id, name: \"x\", version: \"1.0.0\", kind: \"service\" }) { id } }", json!({ "id": p })),
        ("depend from", "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"*\") { versionConstraint } }", json!({ "f": m, "t": m2 })),
        ("depend on", "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"*\") { versionConstraint } }", json!({ "f": my_module, "t": m })),
        ("remove", "mutation($id: ID!) { removeModule(id: $id) }", json!({ "id": m })),
        ("transitive", "query($id: ID!) { transitiveDependencies(moduleId: $id) { depth } }", json!({ "id": m })),
    ] {
        let v = app.gql(&alpha, q, vars).await;
        assert_eq!(code(&v), "NOT_FOUND", "{what}: {v}");
    }
    // Searches only ever see the caller's rows.
    let v = app
        .ok(
            &alpha,
            "{ modules(filter: { metadataContains: {} }) { nodes { name } } projects { nodes { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        v,
        json!({ "modules": { "nodes": [{ "name": "mine" }] }, "projects": { "nodes": [{ "slug": "mine" }] } })
    );
    // bravo's rows are as they were.
    let v = app
        .ok(&bravo, "query($id: ID!) { project(id: $id) { name environments { version } } }", json!({ "id": p }))
        .await;
    assert_eq!(v["project"]["name"], "P");
    assert!(v["project"]["environments"].as_array().unwrap().iter().all(|e| e["version"] == 1));
    app.cleanup().await;
}

#[tokio::test]
async fn row_level_security_confines_the_app_role_in_sql() {
    let app = spawn_app().await;
    let (alpha, bravo) = (app.member("alpha"), app.member("bravo"));
    for (t, slug) in [(&alpha, "a-proj"), (&bravo, "b-proj")] {
        let p = app.project(t, slug).await;
        let x = app.module(t, &p, "x", json!({ "k": 1 })).await;
        let y = app.module(t, &p, "y", json!({})).await;
        assert!(app.depend(t, &x, &y).await.get("errors").is_none());
        app.ok(
            t,
            "mutation($p: ID!) { changeEnvironment(projectId: $p, name: prod, config: {}) { change { id } } }",
            json!({ "p": p }),
        )
        .await;
    }
    let tables = [
        "projects",
        "environments",
        "environment_changes",
        "modules",
        "module_metadata_paths",
        "dependencies",
        "outbox",
    ];
    let mut conn = PgConnection::connect(&app.db.app_url).await.unwrap();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{table}: nothing visible without a tenant");
    }
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SELECT set_config('app.tenant_id', 'alpha', true)").await.unwrap();
    for table in tables {
        let ids: Vec<String> =
            sqlx::query_scalar(&format!("SELECT DISTINCT tenant_id FROM {table}")).fetch_all(&mut *tx).await.unwrap();
        assert_eq!(ids, vec!["alpha".to_string()], "{table}");
    }
    for stmt in [
        "UPDATE projects SET name = 'pwned' WHERE tenant_id = 'bravo'",
        "UPDATE modules SET metadata = '{}' WHERE tenant_id = 'bravo'",
        "DELETE FROM dependencies WHERE tenant_id = 'bravo'",
        "UPDATE environments SET config = '{\"x\": 1}' WHERE tenant_id = 'bravo'",
    ] {
        let hit = sqlx::query(stmt).execute(&mut *tx).await.unwrap().rows_affected();
        assert_eq!(hit, 0, "{stmt}");
    }
    let err = sqlx::query("INSERT INTO module_metadata_paths (tenant_id, path) VALUES ('bravo', '[\"x\"]')")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn every_tenant_table_forces_row_level_security_and_partitions_are_out_of_the_app_roles_reach() {
    let app = spawn_app().await;
    let admin = app.admin_pool().await;
    // Every table with a tenant_id column (partitions aside) has RLS enabled and forced.
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
         ORDER BY 1",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(unprotected, Vec::<String>::new());
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(tables >= 15, "the check saw the catalogue's tables ({tables})");
    // Partitions would bypass their parent's policies: the app role has no privilege on any of them.
    let app_role = app.db.roles.app.clone();
    let reachable: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         WHERE c.relispartition AND has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE')",
    )
    .bind(&app_role)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(reachable, Vec::<String>::new());
    app.cleanup().await;
}
