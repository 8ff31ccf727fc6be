//! OpenLineage through the public endpoint: the real `openlineage-python` client (PyPI, pinned in
//! tests/openlineage/requirements.txt), its HTTP transport pointed at the edge with a tenant's bearer
//! token, reports a run START and COMPLETE with schema and column-lineage facets; lineage records the job,
//! the run, the datasets and their edges, and answers Marquez-style `lineage(nodeId, depth)` through the
//! router.

use serde_json::json;

use e2e::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openlineage_python_client_reports_a_run_into_the_graph_through_the_public_endpoint() {
    let python = e2e::openlineage_python().await;
    let stack = Stack::start().await;
    let hive = stack.hive().await;
    let tenant = format!("ol-{}", stack.id);
    let token = stack.token(&tenant, "airflow", &["lineage:read", "lineage:write"]);
    let run = uuid::Uuid::now_v7();
    let base = hive.url.trim_end_matches("/graphql").to_owned();
    let out = tokio::process::Command::new(&python)
        .arg(e2e::repo().join("tests/openlineage/emit.py"))
        .args([&base, &token, &run.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "emit.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    const LINEAGE: &str = "query($n: ID!) { lineage(nodeId: $n, depth: 20) { nodes { id kind depth direction path
        node { label facets } } edges { from to kind } } }";
    let totals = "dataset:postgres://warehouse:5432/public.daily_totals";
    let g = stack.ok(&hive.url, &token, LINEAGE, json!({ "n": totals })).await["lineage"].clone();
    let nodes: Vec<(String, String, i64)> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (n["id"].as_str().unwrap().to_owned(), n["kind"].as_str().unwrap().to_owned(), n["depth"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        nodes,
        [
            (format!("run:{run}"), "RUN".to_owned(), 1),
            ("dataset:postgres://warehouse:5432/public.orders".to_owned(), "DATASET".to_owned(), 2),
            ("job:etl/orders.daily_totals".to_owned(), "JOB".to_owned(), 2),
        ]
    );
    let mut edges: Vec<(String, String, String)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["from"].as_str().unwrap().into(), e["to"].as_str().unwrap().into(), e["kind"].as_str().unwrap().into())
        })
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            ("dataset:postgres://warehouse:5432/public.orders".into(), format!("run:{run}"), "INPUT".into()),
            ("job:etl/orders.daily_totals".into(), format!("run:{run}"), "RUN".into()),
            (format!("run:{run}"), totals.into(), "OUTPUT".into()),
        ]
    );
    // The run's state is the last event's; the datasets carry their schema, the output its column lineage.
    let run_node = &g["nodes"][0]["node"];
    assert_eq!(run_node["facets"]["state"], "COMPLETE");
    assert_eq!(run_node["label"], "orders.daily_totals");
    let q = "query($n: ID!) { lineageNode(id: $n) { kind label facets } }";
    let out = stack.ok(&hive.url, &token, q, json!({ "n": totals })).await["lineageNode"].clone();
    let fields: Vec<&str> =
        out["facets"]["schema"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(fields, ["day", "total"]);
    let total = &out["facets"]["columnLineage"]["fields"]["total"]["inputFields"][0];
    assert_eq!((total["name"].as_str(), total["field"].as_str()), (Some("public.orders"), Some("amount")));
    assert!(out["facets"]["schema"]["_producer"].as_str().unwrap().starts_with("https://"));

    // Another tenant's token sees none of it; a token without lineage:write cannot report.
    let other = stack.token(&format!("other-{}", stack.id), "x", &["lineage:read"]);
    let g = stack.ok(&hive.url, &other, LINEAGE, json!({ "n": totals })).await;
    assert_eq!(g["lineage"]["nodes"], json!([]));
    let reader = stack.token(&tenant, "viewer", &["lineage:read"]);
    let refused = tokio::process::Command::new(&python)
        .arg(e2e::repo().join("tests/openlineage/emit.py"))
        .args([&base, &reader, &uuid::Uuid::now_v7().to_string()])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success(), "a reader's report is refused");
    hive.stop().await;
    stack.stop().await;
}
