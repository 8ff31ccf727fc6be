//! The module catalogue: typed filters over JSONB metadata, tags, kind and name; stable pagination; coded
//! errors for bad JSON, oversize metadata and unknown paths.

use serde_json::{json, Value};

use crate::helpers::{code, spawn_app};

const SEARCH: &str = "query($f: ModuleFilter, $first: Int, $after: String) {
    modules(filter: $f, first: $first, after: $after) { nodes { name } pageInfo { hasNextPage endCursor } } }";

fn names(v: &Value) -> Vec<String> {
    v["modules"]["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn modules_are_found_by_tag_kind_metadata_and_name() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let p = app.project(&t, "shop").await;
    app.module(&t, &p, "billing-api", json!({ "build": { "tool": "cargo", "lto": true }, "team": "payments" })).await;
    app.module(&t, &p, "billing-ui", json!({ "build": { "tool": "vite" }, "team": "payments" })).await;
    app.module(
        &t,
        &p,
        "search",
        json!({ "build": { "tool": "cargo" }, "team": "discovery", "langs": ["rust", "sql"] }),
    )
    .await;
    app.ok(
        &t,
        "mutation($p: ID!) { registerModule(input: { projectId: $p, name: \"tools\", version: \"0.3.0\", kind: \"library\",
           tags: [\"internal\", \"rust\"] }) { id } }",
        json!({ "p": p }),
    )
    .await;

    let q = |f: Value| {
        let app = &app;
        let t = t.clone();
        async move { names(&app.ok(&t, SEARCH, json!({ "f": f })).await) }
    };
    assert_eq!(q(json!({ "kind": "library" })).await, ["tools"]);
    assert_eq!(q(json!({ "tags": ["rust", "internal"] })).await, ["tools"]);
    assert_eq!(q(json!({ "metadataContains": { "team": "payments" } })).await, ["billing-api", "billing-ui"]);
    assert_eq!(q(json!({ "metadataContains": { "langs": ["sql"] } })).await, ["search"]);
    assert_eq!(
        q(json!({ "metadataEquals": [{ "path": ["build", "tool"], "equals": "cargo" }] })).await,
        ["billing-api", "search"]
    );
    // Equality is exact where containment is not: `build` must be exactly this object.
    assert_eq!(
        q(json!({ "metadataEquals": [{ "path": ["build"], "equals": { "tool": "cargo" } }] })).await,
        ["search"]
    );
    assert_eq!(
        q(json!({ "search": "BILLING", "metadataEquals": [{ "path": ["build", "lto"], "equals": true }] })).await,
        ["billing-api"]
    );
    assert_eq!(q(json!({ "search": "%" })).await, Vec::<String>::new(), "wildcards are literal");

    // Pagination: stable (name, id) order, page by page.
    let first = app.ok(&t, SEARCH, json!({ "first": 3 })).await;
    assert_eq!(names(&first), ["billing-api", "billing-ui", "search"]);
    assert_eq!(first["modules"]["pageInfo"]["hasNextPage"], true);
    let next = app.ok(&t, SEARCH, json!({ "first": 3, "after": first["modules"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(names(&next), ["tools"]);
    assert_eq!(next["modules"]["pageInfo"]["hasNextPage"], false);
    app.cleanup().await;
}

/// Under row-level security PostgreSQL may use a condition in an index only if its function is leakproof;
/// provisioning marks `@>` and `ILIKE` so (kernel `db::LEAKPROOF_BUILTINS`). Here the app role, tenant set,
/// gets the GIN indexes with the search's own conditions as index conditions, not just the tenant.
#[tokio::test]
async fn containment_tag_and_name_searches_reach_their_gin_indexes_under_row_level_security() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let p = app.project(&t, "shop").await;
    let admin = app.admin_pool().await;
    // Enough rows that a selective condition is worth its index (bulk-loaded as the superuser).
    sqlx::query(
        "INSERT INTO modules (tenant_id, module_id, project_id, name, version, kind, tags, metadata)
         SELECT 'acme', gen_random_uuid(), $1::uuid, md5(i::text), '1.0.0', 'library', ARRAY['t' || (i % 40)],
                jsonb_build_object('team', 'team-' || (i % 50))
         FROM generate_series(1, 3000) i",
    )
    .bind(&p)
    .execute(&admin)
    .await
    .unwrap();
    // However a module is inserted, it gets its place in the build order (the `modules_ranked` trigger).
    let ranks: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT build_rank) FROM module_ranks WHERE tenant_id = 'acme'")
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(ranks, (3000, 3000));
    // As autovacuum would: statistics, and the GIN indexes' pending entries merged.
    sqlx::query("VACUUM ANALYZE modules").execute(&admin).await.unwrap();
    let tenant = kernel::TenantId::parse("acme").unwrap();
    for (index, condition) in [
        ("modules_metadata", r#"metadata @> '{"team": "team-7"}'"#),
        ("modules_tags", "tags @> ARRAY['t7']"),
        ("modules_name_trgm", "name ILIKE '%c4ca4238%'"),
    ] {
        let mut tx = kernel::db::tenant_tx(app.pool(), &tenant).await.unwrap();
        // Only bitmap scans, so the plan shows what an index itself is asked.
        for off in ["enable_seqscan", "enable_indexscan"] {
            sqlx::query(&format!("SET LOCAL {off} = off")).execute(&mut *tx).await.unwrap();
        }
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "EXPLAIN SELECT module_id FROM modules WHERE tenant_id = 'acme' AND {condition}"
        ))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        let plan = plan.join("\n");
        let column = condition.split_whitespace().next().unwrap();
        let used = plan.lines().any(|l| l.contains("Index Cond") && l.contains(column));
        assert!(plan.contains(index) && used, "{plan}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn bad_module_input_is_coded_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let p = app.project(&t, "shop").await;
    app.module(&t, &p, "known", json!({ "build": { "tool": "cargo" } })).await;
    let register = "mutation($i: RegisterModuleInput!) { registerModule(input: $i) { id } }";
    let base = json!({ "projectId": p, "name": "m", "version": "1.0.0", "kind": "service" });
    let with = |k: &str, v: Value| {
        let mut i = base.clone();
        i[k] = v;
        json!({ "i": i })
    };
    for (what, vars) in [
        ("metadata not an object", with("metadata", json!("{\"a\": 1}"))),
        ("metadata an array", with("metadata", json!([1]))),
        ("metadata over 16 KiB", with("metadata", json!({ "blob": "x".repeat(17_000) }))),
        ("version", with("version", json!("1.0"))),
        ("kind", with("kind", json!("Micro Service"))),
        ("name", with("name", json!("has space"))),
        ("tags", with("tags", json!(["Nope!"]))),
    ] {
        let v = app.gql(&t, register, vars).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{what}: {v}");
    }
    let dup = app.gql(&t, register, with("name", json!("known"))).await;
    assert_eq!(code(&dup), "CONFLICT");

    // A filter on a path no module has is a likely typo, not an empty answer.
    let v = app
        .gql(&t, SEARCH, json!({ "f": { "metadataEquals": [{ "path": ["biuld", "tool"], "equals": "cargo" }] } }))
        .await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("biuld"), "{v}");
    for f in [
        json!({ "metadataContains": [1] }),
        json!({ "metadataEquals": [{ "path": [], "equals": 1 }] }),
        json!({ "search": "" }),
    ] {
        let v = app.gql(&t, SEARCH, json!({ "f": f })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    }
    let v = app.gql(&t, SEARCH, json!({ "after": "garbage" })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");

    let admin = app.admin_pool().await;
    let (modules, registered): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM modules), (SELECT count(*) FROM outbox WHERE event_type = 'ModuleRegistered')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((modules, registered), (1, 1));
    app.cleanup().await;
}
