//! Artifacts and their versions through the API: registration, versions by semver with their content,
//! identical content stored once, the status chain with publication superseding, `latest` and range
//! resolution, immutability (API and trigger), the catalogue entities, tenant isolation, and bad input
//! coded with nothing written.

use serde_json::{json, Value};
use test_support::code;

use crate::App;

const REGISTER: &str = "mutation($input: RegisterArtifactInput!) { registerArtifact(input: $input) { id artifactType name projectId classification } }";
const RECORD: &str = "mutation($input: RecordArtifactVersionInput!) { recordArtifactVersion(input: $input) { version status contentHash storageRef } }";
const MOVE: &str = "mutation($a: ID!, $v: String!, $s: ArtifactVersionStatus!) { changeArtifactVersionStatus(artifactId: $a, version: $v, status: $s) { version status publishedAt } }";
const ARTIFACT: &str = "query($id: ID!, $range: String!) { artifact(id: $id) { id
    versions(first: 10) { edges { node { version status } } }
    latest { version } resolve(range: $range) { version } } }";

fn hash(byte: u8) -> String {
    format!("sha256:{}", hex(byte).repeat(32))
}

fn hex(byte: u8) -> String {
    format!("{byte:02x}")
}

async fn record(app: &App, token: &str, artifact: &str, version: &str, content: u8) -> Value {
    let input = json!({ "input": { "artifactId": artifact, "version": version, "contentHash": hash(content),
        "producedByAgentId": "writer", "producedBySkillId": "draft" } });
    app.ok(token, RECORD, input).await["recordArtifactVersion"].clone()
}

async fn status(app: &App, token: &str, artifact: &str, version: &str, to: &str) -> Value {
    let v = app.gql(token, MOVE, json!({ "a": artifact, "v": version, "s": to })).await;
    v
}

#[tokio::test]
async fn versions_move_along_their_chain_and_publishing_supersedes_the_last_published() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let project = uuid::Uuid::now_v7().to_string();
    let input = json!({ "input": { "id": "launch-post", "artifactType": "document", "name": "Launch post",
        "projectId": project } });
    let a = app.ok(&token, REGISTER, input.clone()).await["registerArtifact"].clone();
    assert_eq!(
        a,
        json!({ "id": "launch-post", "artifactType": "document", "name": "Launch post",
        "projectId": project, "classification": "INTERNAL" })
    );
    // The same registration again is no change; another under its id is refused.
    assert_eq!(app.ok(&token, REGISTER, input.clone()).await["registerArtifact"], a);
    let mut other = input.clone();
    other["input"]["name"] = json!("Something else");
    assert_eq!(code(&app.gql(&token, REGISTER, other).await), "CONFLICT");

    // Versions: each one content. The same version and content again is no change; other content is refused.
    let v1 = record(&app, &token, "launch-post", "1.0.0", 1).await;
    assert_eq!(v1["status"], "GENERATED");
    assert_eq!(v1["storageRef"], format!("blob://artifacts/{t}/{project}/launch-post/1.0.0"));
    assert_eq!(record(&app, &token, "launch-post", "1.0.0", 1).await, v1);
    let clash = json!({ "input": { "artifactId": "launch-post", "version": "1.0.0", "contentHash": hash(2) } });
    let v = app.gql(&token, RECORD, clash).await;
    assert_eq!(code(&v), "CONFLICT");
    assert_eq!(v["errors"][0]["extensions"]["contentHash"], hash(1));
    record(&app, &token, "launch-post", "1.1.0-rc.1", 2).await;
    record(&app, &token, "launch-post", "1.1.0", 3).await;
    record(&app, &token, "launch-post", "2.0.0", 4).await;
    // Identical content is stored once: 1.0.1 carries 1.0.0's content, and its storage.
    let same = record(&app, &token, "launch-post", "1.0.1", 1).await;
    assert_eq!(same["storageRef"], v1["storageRef"]);

    // The chain: Generated → Validated → Published; publishing 1.1.0 supersedes 1.0.0.
    for to in ["VALIDATED", "PUBLISHED"] {
        let v = status(&app, &token, "launch-post", "1.0.0", to).await;
        assert_eq!(v["data"]["changeArtifactVersionStatus"]["status"], to, "{v}");
    }
    for to in ["VALIDATED", "PUBLISHED"] {
        status(&app, &token, "launch-post", "1.1.0", to).await;
    }
    let v = app.ok(&token, ARTIFACT, json!({ "id": "launch-post", "range": "^1.0" })).await["artifact"].clone();
    let versions: Vec<(String, String)> = v["versions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["version"].as_str().unwrap().into(), e["node"]["status"].as_str().unwrap().into()))
        .collect();
    let expected = [
        ("2.0.0", "GENERATED"),
        ("1.1.0", "PUBLISHED"),
        ("1.1.0-rc.1", "GENERATED"),
        ("1.0.1", "GENERATED"),
        ("1.0.0", "SUPERSEDED"),
    ];
    assert_eq!(versions, expected.map(|(a, b)| (a.to_owned(), b.to_owned())), "newest first by semver");
    // Page by page, the same order.
    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let q = "query($id: ID!, $after: String) { artifact(id: $id) { versions(first: 2, after: $after) {
            edges { node { version } } pageInfo { hasNextPage endCursor } } } }";
        let page =
            app.ok(&token, q, json!({ "id": "launch-post", "after": after })).await["artifact"]["versions"].clone();
        paged.extend(
            page["edges"].as_array().unwrap().iter().map(|e| e["node"]["version"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(paged, versions.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>());
    assert_eq!(v["latest"]["version"], "1.1.0");
    assert_eq!(v["resolve"]["version"], "1.1.0", "the highest released version in range");
    let resolve = |range: &str| {
        let (app, token) = (&app, &token);
        let range = range.to_owned();
        async move {
            app.ok(token, ARTIFACT, json!({ "id": "launch-post", "range": range })).await["artifact"]["resolve"]
                ["version"]
                .clone()
        }
    };
    assert_eq!(resolve(">=1.0.0, <1.1.0").await, "1.0.0", "a superseded version is still released");
    assert!(resolve("^2").await.is_null(), "2.0.0 is not released");
    assert_eq!(
        code(&app.gql(&token, ARTIFACT, json!({ "id": "launch-post", "range": "not a range" })).await),
        "BAD_USER_INPUT"
    );

    // Final states stay final: the API names both statuses; the trigger refuses every role.
    for (version, to) in [("1.0.0", "PUBLISHED"), ("1.1.0", "VALIDATED"), ("2.0.0", "PUBLISHED")] {
        let v = status(&app, &token, "launch-post", version, to).await;
        assert_eq!(code(&v), "CONFLICT", "{version} → {to}: {v}");
    }
    let admin = app.admin_pool().await;
    let tamper = sqlx::query(
        "UPDATE artifact_versions SET status = 'Validated' WHERE artifact_id = 'launch-post' AND version = '1.1.0'",
    )
    .execute(&admin)
    .await;
    assert!(tamper.unwrap_err().to_string().contains("immutable"));
    let tamper = sqlx::query(
        "UPDATE artifact_versions SET content_hash = $1 WHERE artifact_id = 'launch-post' AND version = '2.0.0'",
    )
    .bind(hash(9))
    .execute(&admin)
    .await;
    assert!(tamper.unwrap_err().to_string().contains("keeps its content"));

    // Every change left its event.
    let changes: Vec<Value> = sqlx::query_scalar(
        "SELECT envelope->'payload' FROM outbox WHERE event_type = 'ArtifactVersionStatusChanged' ORDER BY seq",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    let published: Vec<&Value> = changes.iter().filter(|c| c["to"] == "Published").collect();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1]["superseded"], "1.0.0");
    // And publication on its own: each ArtifactPublished, and the second one's ArtifactSuperseded.
    let told: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, envelope->'payload' FROM outbox
          WHERE event_type IN ('ArtifactPublished', 'ArtifactSuperseded') ORDER BY seq",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    let kinds: Vec<&str> = told.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["ArtifactPublished", "ArtifactSuperseded", "ArtifactPublished"]);
    assert_eq!((told[1].1["version"].clone(), told[1].1["by"].clone()), (json!("1.0.0"), told[2].1["version"].clone()));
    assert_eq!(told[2].1["superseded"], "1.0.0");
    app.cleanup().await;
}

#[tokio::test]
async fn artifacts_reach_catalogues_entities_and_no_other_tenant() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let (project, module) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    for (id, module) in [("a-1", Some(&module)), ("a-2", None)] {
        let input = json!({ "input": { "id": id, "artifactType": "build", "name": id, "projectId": project,
            "moduleId": module } });
        app.ok(&token, REGISTER, input).await;
    }
    let entities = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Project { artifacts(first: 10) { edges { node { id } } } }
        ... on Module { artifacts(first: 10) { edges { node { id } } } }
        ... on Artifact { name } } }";
    let reps = json!({ "r": [
        { "__typename": "Project", "id": project },
        { "__typename": "Module", "id": module },
        { "__typename": "Artifact", "id": "a-2" },
    ] });
    let v = app.ok(&token, entities, reps.clone()).await["_entities"].clone();
    let ids = |v: &Value| -> Vec<String> {
        v["artifacts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&v[0]), ["a-1", "a-2"]);
    assert_eq!(ids(&v[1]), ["a-1"]);
    assert_eq!(v[2]["name"], "a-2");

    // Another tenant sees none of it, and may register the same id as its own.
    let other = app.tenant_token(&format!("globex-{}", app.id), &["lineage:read", "lineage:write"]);
    let v = app.gql(&other, entities, reps).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let mine = app.ok(&other, "{ artifacts(first: 10) { edges { node { id } } } }", json!({})).await;
    assert_eq!(mine["artifacts"]["edges"], json!([]));
    let input = json!({ "input": { "id": "a-1", "artifactType": "model", "name": "theirs" } });
    assert_eq!(app.ok(&other, REGISTER, input).await["registerArtifact"]["name"], "theirs");
    let v = app
        .gql(&other, RECORD, json!({ "input": { "artifactId": "a-2", "version": "1.0.0", "contentHash": hash(1) } }))
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_coded_and_writes_nothing() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let reader = app.tenant_token(&t, &["lineage:read"]);
    for (field, input) in [
        ("id", json!({ "id": "../etc", "artifactType": "document", "name": "x" })),
        ("id", json!({ "id": "x".repeat(201), "artifactType": "document", "name": "x" })),
        ("artifactType", json!({ "id": "ok", "artifactType": "Doc Type", "name": "x" })),
        ("name", json!({ "id": "ok", "artifactType": "document", "name": "  " })),
        ("projectId", json!({ "id": "ok", "artifactType": "document", "name": "x", "projectId": "p-1" })),
    ] {
        let v = app.gql(&token, REGISTER, json!({ "input": input })).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{field}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
    }
    assert_eq!(
        code(
            &app.gql(&reader, REGISTER, json!({ "input": { "id": "ok", "artifactType": "document", "name": "x" } }))
                .await
        ),
        "FORBIDDEN"
    );
    app.ok(&token, REGISTER, json!({ "input": { "id": "ok", "artifactType": "document", "name": "x" } })).await;
    for (field, version, content) in [
        ("version", "1.0", hash(1)),
        ("version", "v1.0.0", hash(1)),
        ("contentHash", "1.0.0", "sha256:abc".to_owned()),
        ("contentHash", "1.0.0", hash(1).to_uppercase()),
    ] {
        let input = json!({ "input": { "artifactId": "ok", "version": version, "contentHash": content } });
        let v = app.gql(&token, RECORD, input).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{field}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
    }
    let v = app
        .gql(&token, RECORD, json!({ "input": { "artifactId": "nope", "version": "1.0.0", "contentHash": hash(1) } }))
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    let versions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM artifact_versions").fetch_one(&app.admin_pool().await).await.unwrap();
    assert_eq!(versions, 0, "nothing recorded");
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_publications_leave_one_published_version() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    app.ok(&token, REGISTER, json!({ "input": { "id": "model", "artifactType": "model", "name": "Model" } })).await;
    let versions: Vec<String> = (1..=6).map(|i| format!("1.{i}.0")).collect();
    for (i, v) in versions.iter().enumerate() {
        record(&app, &token, "model", v, i as u8 + 1).await;
        status(&app, &token, "model", v, "VALIDATED").await;
    }
    // Six publications at once: each supersedes whichever was published when it took the artifact's lock.
    let publishing = versions.iter().map(|v| status(&app, &token, "model", v, "PUBLISHED"));
    for v in futures::future::join_all(publishing).await {
        assert_eq!(v["data"]["changeArtifactVersionStatus"]["status"], "PUBLISHED", "{v}");
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT version, status FROM artifact_versions WHERE artifact_id = 'model' ORDER BY version")
            .fetch_all(&app.admin_pool().await)
            .await
            .unwrap();
    let published: Vec<&(String, String)> = rows.iter().filter(|(_, s)| s == "Published").collect();
    assert_eq!(published.len(), 1, "{rows:?}");
    assert!(rows.iter().all(|(_, s)| s == "Published" || s == "Superseded"), "{rows:?}");
    // The events tell the same story: every publication but the first superseded exactly the one before it.
    let changes: Vec<Value> = sqlx::query_scalar(
        "SELECT envelope->'payload' FROM outbox WHERE event_type = 'ArtifactVersionStatusChanged' AND envelope->'payload'->>'to' = 'Published' ORDER BY seq",
    )
    .fetch_all(&app.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(changes.len(), 6);
    assert!(changes[0]["superseded"].is_null());
    for pair in changes.windows(2) {
        assert_eq!(pair[1]["superseded"], pair[0]["version"], "{changes:?}");
    }
    assert_eq!(published[0].0, changes[5]["version"].as_str().unwrap());
    app.cleanup().await;
}
