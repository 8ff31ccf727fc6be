//! The dependency graph: cycles refused with their path (also when two inserts race), transitive queries
//! with paths and depth limits, build order, impact analysis.

use serde_json::{json, Value};

use crate::helpers::{code, spawn_app, TestApp};

/// Modules `a`..`e` in one project, returned in that order.
async fn chain(app: &TestApp, t: &str, names: &[&str]) -> Vec<String> {
    let p = app.project(t, "graph").await;
    let mut ids = Vec::new();
    for n in names {
        ids.push(app.module(t, &p, n, json!({})).await);
    }
    ids
}

#[tokio::test]
async fn an_edge_that_closes_a_cycle_is_refused_with_the_path() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let ids = chain(&app, &t, &["a", "b", "c", "d"]).await;
    let (a, b, c, d) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    for (x, y) in [(a, b), (b, c), (c, d)] {
        let v = app.depend(&t, x, y).await;
        assert!(v.get("errors").is_none(), "{v}");
    }
    let v = app.depend(&t, d, a).await;
    assert_eq!(code(&v), "CONFLICT", "{v}");
    let cycle: Vec<&str> =
        v["errors"][0]["extensions"]["cycle"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(cycle, ["d", "a", "b", "c", "d"]);
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("d → a → b → c → d"), "{v}");
    let v = app.depend(&t, a, a).await;
    assert_eq!(code(&v), "CONFLICT");
    // A shortcut that closes no cycle is fine; a duplicate is a conflict; bad ranges are bad input.
    assert!(app.depend(&t, a, d).await.get("errors").is_none());
    assert_eq!(code(&app.depend(&t, a, d).await), "CONFLICT");
    let v = app
        .gql(&t, "mutation($f: ID!, $t: ID!) { addDependency(fromModuleId: $f, toModuleId: $t, versionConstraint: \"latest\") { versionConstraint } }", json!({ "f": b, "t": d }))
        .await;
    assert_eq!(code(&v), "BAD_USER_INPUT");

    let admin = app.admin_pool().await;
    let edges: i64 = sqlx::query_scalar("SELECT count(*) FROM dependencies").fetch_one(&admin).await.unwrap();
    assert_eq!(edges, 4, "nothing written by refused inserts");
    // The order's invariant holds on every edge.
    assert_eq!(edges_against_the_order(&admin).await, 0);
    app.cleanup().await;
}

/// Edges whose source does not rank above their target: 0 while the build order holds.
async fn edges_against_the_order(admin: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM dependencies d JOIN module_ranks f ON f.module_id = d.from_module
         JOIN module_ranks t ON t.module_id = d.to_module WHERE f.build_rank <= t.build_rank",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

/// Whether `from` reaches `to` through `adj` (edges "depends on").
fn reaches(adj: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; adj.len()];
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(&adj[n]);
        }
    }
    false
}

#[tokio::test]
async fn edges_in_any_order_are_refused_exactly_when_they_close_a_cycle_and_the_order_holds() {
    use rand::{Rng, SeedableRng};
    let app = spawn_app().await;
    let t = app.member("acme");
    let p = app.project(&t, "order").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(app.module(&t, &p, &format!("m{i:02}"), json!({})).await);
    }
    let admin = app.admin_pool().await;
    // Random edges, most of them against the registration order (so the order must be repaired), each
    // checked against reachability computed here.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
    let (mut added, mut cycles) = (0, 0);
    for step in 0..70 {
        let (a, b) = (rng.gen_range(0..ids.len()), rng.gen_range(0..ids.len()));
        if a == b || adj[a].contains(&b) {
            continue;
        }
        let v = app.depend(&t, &ids[a], &ids[b]).await;
        if reaches(&adj, b, a) {
            cycles += 1;
            assert_eq!(code(&v), "CONFLICT", "step {step}: {v}");
            // The reported cycle is real: it starts and ends at `a`, and each hop is an edge (the new one first).
            let cycle: Vec<usize> = v["errors"][0]["extensions"]["cycle"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| ids.iter().position(|id| id == m["id"].as_str().unwrap()).unwrap())
                .collect();
            assert_eq!((cycle[0], cycle[1], *cycle.last().unwrap()), (a, b, a), "step {step}: {v}");
            assert!(cycle.windows(2).skip(1).all(|w| adj[w[0]].contains(&w[1])), "step {step}: {v}");
        } else {
            assert!(v.get("errors").is_none(), "step {step}: {v}");
            adj[a].push(b);
            added += 1;
        }
        assert_eq!(edges_against_the_order(&admin).await, 0, "step {step}");
        // A reorder reuses exactly the ranks it moved: no two modules ever share one (no index enforces it).
        let (ranked, ranks): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT build_rank) FROM module_ranks WHERE tenant_id = 'acme'")
                .fetch_one(&admin)
                .await
                .unwrap();
        assert_eq!((ranked, ranks), (ids.len() as i64, ids.len() as i64), "step {step}");
    }
    assert!(added >= 15 && cycles >= 5, "the walk exercised both outcomes: {added} added, {cycles} refused");
    // The build order puts every module in a later stage than everything it depends on.
    let v =
        app.ok(&t, "query($p: ID!) { buildOrder(projectId: $p) { stage modules { id } } }", json!({ "p": p })).await;
    let stage_of = |i: usize| -> i64 {
        v["buildOrder"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["modules"].as_array().unwrap().iter().any(|m| m["id"] == ids[i].as_str()))
            .map(|s| s["stage"].as_i64().unwrap())
            .unwrap()
    };
    for (a, deps) in adj.iter().enumerate() {
        for &b in deps {
            assert!(stage_of(a) > stage_of(b), "{a} → {b}");
        }
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_edges_that_together_close_a_cycle_exactly_one_is_refused() {
    let app = spawn_app().await;
    let t = app.member("acme");
    for round in 0..8 {
        let p = app.project(&t, &format!("race-{round}")).await;
        let x = app.module(&t, &p, "x", json!({})).await;
        let y = app.module(&t, &p, "y", json!({})).await;
        // x → y and y → x at the same moment: each alone is fine, together a cycle.
        let (r1, r2) = tokio::join!(app.depend(&t, &x, &y), app.depend(&t, &y, &x));
        let refused: Vec<&Value> = [&r1, &r2].into_iter().filter(|v| v.get("errors").is_some()).collect();
        assert_eq!(refused.len(), 1, "round {round}: {r1} {r2}");
        assert_eq!(code(refused[0]), "CONFLICT");
    }
    let admin = app.admin_pool().await;
    let edges: i64 = sqlx::query_scalar("SELECT count(*) FROM dependencies").fetch_one(&admin).await.unwrap();
    assert_eq!(edges, 8);
    app.cleanup().await;
}

#[tokio::test]
async fn transitive_queries_build_order_and_impact() {
    let app = spawn_app().await;
    let t = app.member("acme");
    // app → api → db, app → ui → api, api → log
    let ids = chain(&app, &t, &["app", "api", "db", "ui", "log"]).await;
    let id = |n: &str| ids[["app", "api", "db", "ui", "log"].iter().position(|x| *x == n).unwrap()].clone();
    for (x, y) in [("app", "api"), ("api", "db"), ("app", "ui"), ("ui", "api"), ("api", "log")] {
        assert!(app.depend(&t, &id(x), &id(y)).await.get("errors").is_none());
    }
    let q = "query($m: ID!, $d: DependencyDirection!, $n: Int!) { transitiveDependencies(moduleId: $m, direction: $d, maxDepth: $n) {
               depth moduleId path module { name } } }";
    let v = app.ok(&t, q, json!({ "m": id("app"), "d": "DEPENDENCIES", "n": 10 })).await;
    let reached: Vec<(String, i64, usize)> = v["transitiveDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["module"]["name"].as_str().unwrap().to_owned(),
                r["depth"].as_i64().unwrap(),
                r["path"].as_array().unwrap().len(),
            )
        })
        .collect();
    let mut sorted = reached.clone();
    sorted.sort();
    assert_eq!(sorted, [("api".into(), 1, 2), ("db".into(), 2, 3), ("log".into(), 2, 3), ("ui".into(), 1, 2)]);
    let db_path = v["transitiveDependencies"].as_array().unwrap().iter().find(|r| r["module"]["name"] == "db").unwrap()
        ["path"]
        .clone();
    assert_eq!(db_path, json!([id("app"), id("api"), id("db")]), "the shortest path");
    for r in v["transitiveDependencies"].as_array().unwrap() {
        let name = r["module"]["name"].as_str().unwrap();
        assert_eq!(r["moduleId"], json!(id(name)), "moduleId is the module's id without loading it");
        assert_eq!(r["path"].as_array().unwrap().last(), Some(&r["moduleId"]), "a path ends at its module");
    }
    // Depth limit.
    let v = app.ok(&t, q, json!({ "m": id("app"), "d": "DEPENDENCIES", "n": 1 })).await;
    assert_eq!(v["transitiveDependencies"].as_array().unwrap().len(), 2);
    let v = app.gql(&t, q, json!({ "m": id("app"), "d": "DEPENDENCIES", "n": 0 })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    // Dependents of db: api (1), app and ui (2).
    let v = app.ok(&t, q, json!({ "m": id("db"), "d": "DEPENDENTS", "n": 10 })).await;
    let mut dependents: Vec<&str> =
        v["transitiveDependencies"].as_array().unwrap().iter().map(|r| r["module"]["name"].as_str().unwrap()).collect();
    dependents.sort();
    assert_eq!(dependents, ["api", "app", "ui"]);

    let p = app.ok(&t, "query($m: ID!) { module(id: $m) { projectId } }", json!({ "m": id("app") })).await["module"]
        ["projectId"]
        .clone();
    let order =
        app.ok(&t, "query($p: ID!) { buildOrder(projectId: $p) { stage modules { name } } }", json!({ "p": p })).await;
    let position = |n: &str| {
        order["buildOrder"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["modules"].as_array().unwrap().iter().any(|m| m["name"] == n))
            .unwrap()["stage"]
            .as_i64()
            .unwrap()
    };
    for (x, y) in [("app", "api"), ("api", "db"), ("app", "ui"), ("ui", "api"), ("api", "log")] {
        assert!(position(x) > position(y), "{x} builds after {y}: {order}");
    }

    // Bumping api to 2.0.0 breaks its direct dependents' `^1` ranges.
    let impact = app
        .ok(
            &t,
            "query($m: ID!) { impactAnalysis(moduleId: $m, newVersion: \"2.0.0\") { affected { module { name } }
               breaking { module { name } versionConstraint satisfied } truncated } }",
            json!({ "m": id("api") }),
        )
        .await;
    let mut breaking: Vec<&str> = impact["impactAnalysis"]["breaking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["module"]["name"].as_str().unwrap())
        .collect();
    breaking.sort();
    assert_eq!(breaking, ["app", "ui"]);
    assert_eq!(impact["impactAnalysis"]["affected"].as_array().unwrap().len(), 2);
    assert_eq!(impact["impactAnalysis"]["truncated"], false);

    // A module with dependents cannot be removed; a leaf can, with its edges.
    let v = app.gql(&t, "mutation($m: ID!) { removeModule(id: $m) }", json!({ "m": id("db") })).await;
    assert_eq!(code(&v), "CONFLICT");
    let admin = app.admin_pool().await;
    let rank_rows = "SELECT count(*) FROM module_ranks WHERE module_id = $1::uuid";
    let ranked: i64 = sqlx::query_scalar(rank_rows).bind(id("app")).fetch_one(&admin).await.unwrap();
    assert_eq!(ranked, 1);
    app.ok(&t, "mutation($m: ID!) { removeModule(id: $m) }", json!({ "m": id("app") })).await;
    let ranked: i64 = sqlx::query_scalar(rank_rows).bind(id("app")).fetch_one(&admin).await.unwrap();
    assert_eq!(ranked, 0, "the module's rank goes with it");
    app.cleanup().await;
}

#[tokio::test]
async fn a_dependency_elsewhere_may_reorder_an_archived_projects_modules_and_nothing_else_changes_there() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let (pa, pb) = (app.project(&t, "archived").await, app.project(&t, "live").await);
    let a = app.module(&t, &pa, "a", json!({})).await;
    let (b, c) = (app.module(&t, &pb, "b", json!({})).await, app.module(&t, &pb, "c", json!({})).await);
    assert!(app.depend(&t, &a, &b).await.get("errors").is_none());
    app.ok(&t, "mutation($p: ID!) { archiveProject(id: $p) { status } }", json!({ "p": pa })).await;

    // b → c (c registered after b) moves c below b and a (in the archived project, depending on b) above
    // it: allowed, as only the derived rank changes.
    let v = app.depend(&t, &b, &c).await;
    assert!(v.get("errors").is_none(), "{v}");
    let admin = app.admin_pool().await;
    assert_eq!(edges_against_the_order(&admin).await, 0);
    // Everything else in the archived project is read-only for any writer, deletes included.
    for stmt in [
        "UPDATE modules SET version = '9.9.9' WHERE module_id = $1::uuid",
        "DELETE FROM dependencies WHERE from_module = $1::uuid",
        "DELETE FROM modules WHERE module_id = $1::uuid",
    ] {
        let err = sqlx::query(stmt).bind(&a).execute(&admin).await.unwrap_err();
        assert!(err.to_string().contains("archived and read-only"), "{stmt}: {err}");
    }
    assert_eq!(code(&app.gql(&t, "mutation($m: ID!) { removeModule(id: $m) }", json!({ "m": a })).await), "CONFLICT");
    app.cleanup().await;
}

/// Finding (High): `Module.dependencies`/`dependents` are whole lists, uncounted by complexity, so four
/// nested levels over a fully connected 25-module graph — a ten-line query — asked for ~10^5 objects and
/// were answered (over 64 KB, 412 ms). Such lists are charged to the operation's object budget as they are
/// read; the query is refused whole, with a code, and small nestings still pass.
#[tokio::test]
async fn nested_dependency_lists_are_refused_once_they_pass_the_object_budget() {
    let app = spawn_app().await;
    let t = app.member("acme");
    let names: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
    let ids = chain(&app, &t, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for (i, from) in ids.iter().enumerate() {
        for to in &ids[i + 1..] {
            let v = app.depend(&t, from, to).await;
            assert!(v.get("errors").is_none(), "{v}");
        }
    }
    // Down to what depends on it, up to what that depends on, and again: 80,274 dependency objects.
    let level = |list: &str, inner: &str| format!("{list} {{ module {{ name {inner} }} }}");
    let nested = ["dependencies", "dependents", "dependencies", "dependents"]
        .iter()
        .fold(String::new(), |inner, l| level(l, &inner));
    let q = format!("query($m: ID!) {{ module(id: $m) {{ name {nested} }} }}");
    let started = std::time::Instant::now();
    let v = app.gql(&t, &q, json!({ "m": ids[24] })).await;
    let body = v.to_string();
    assert_eq!(code(&v), "BAD_USER_INPUT", "{}", &body[..body.len().min(500)]);
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_OBJECTS"), "{v}");
    assert!(v["data"].is_null(), "refused whole: nothing resolved before the budget ran out is sent");
    assert!(body.len() < 64 * 1024, "answered with {} bytes", body.len());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    // Two levels (300 dependents of dependents) are well within the budget: answered.
    let two = ["dependencies", "dependents"].iter().fold(String::new(), |inner, l| level(l, &inner));
    let v = app.ok(&t, &format!("query($m: ID!) {{ module(id: $m) {{ name {two} }} }}"), json!({ "m": ids[24] })).await;
    assert_eq!(v["module"]["dependents"].as_array().unwrap().len(), 24);
    app.cleanup().await;
}
