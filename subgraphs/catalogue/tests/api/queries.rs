//! Nested queries batch: `Tenant { projects { modules(filter) { dependencies { module } } } }` issues the
//! same number of SQL statements however many objects it returns (the filter's path check included).

use serde_json::json;

use crate::helpers::{spawn_app_without_polling, TestApp};

const DEEP: &str = "{ _entities(representations: [{ __typename: \"Tenant\", id: \"acme\" }]) { ... on Tenant {
    projects(first: 10) { nodes { slug environments { name } modules(first: 10, filter: { metadataEquals: [{ path: [\"tier\"], equals: 1 }] }) { nodes { name project { slug }
      dependencies { versionConstraint satisfied module { name } } dependents { module { name } } } } } } } } }";

async fn grow(app: &TestApp, t: &str, projects: usize, modules: usize, from: usize) {
    for p in from..from + projects {
        let pid = app.project(t, &format!("proj-{p}")).await;
        let mut prev: Option<String> = None;
        for m in 0..modules {
            let id = app.module(t, &pid, &format!("m-{m}"), json!({ "tier": 1 })).await;
            if let Some(prev) = &prev {
                assert!(app.depend(t, &id, prev).await.get("errors").is_none());
            }
            prev = Some(id);
        }
    }
}

#[tokio::test]
async fn statement_count_is_constant_in_the_number_of_objects_returned() {
    let app = spawn_app_without_polling().await;
    let t = app.member("acme");
    grow(&app, &t, 1, 2, 0).await;
    let (few, data) = test_support::count_statements(app.ok(&t, DEEP, json!({}))).await;
    let projects = data["_entities"][0]["projects"]["nodes"].as_array().unwrap();
    assert_eq!(projects.len(), 1);

    grow(&app, &t, 4, 6, 1).await;
    let (many, data) = test_support::count_statements(app.ok(&t, DEEP, json!({}))).await;
    let projects = data["_entities"][0]["projects"]["nodes"].as_array().unwrap();
    assert_eq!(projects.len(), 5);
    let modules: usize = projects.iter().map(|p| p["modules"]["nodes"].as_array().unwrap().len()).sum();
    assert_eq!(modules, 2 + 4 * 6);
    let deps: usize = projects
        .iter()
        .flat_map(|p| p["modules"]["nodes"].as_array().unwrap())
        .map(|m| m["dependencies"].as_array().unwrap().len())
        .sum();
    assert_eq!(deps, 1 + 4 * 5);
    assert!(few > 0, "statements were counted");
    assert_eq!(few, many, "statements with 1 project/2 modules: {few}; with 5/26: {many}");
    app.cleanup().await;
}
