//! Retention per artifact type: versions past their type's policy are deleted with `ArtifactVersionExpired`
//! — never the published one, never while the tenant is under legal hold — and a body goes with the last
//! version that shares it, from blob storage too; types without a policy are kept; bad policies are coded.

use serde_json::json;

use crate::bodies::{put, recorded, sha256};
use crate::App;

const RECORD: &str =
    "mutation($input: RecordArtifactVersionInput!) { recordArtifactVersion(input: $input) { version } }";
const RETAIN: &str =
    "mutation($t: String!, $d: Int) { setArtifactRetention(artifactType: $t, keepDays: $d) { artifactType keepDays } }";
const VERSIONS: &str =
    "query($id: ID!) { artifact(id: $id) { versions(first: 10) { edges { node { version status } } } } }";

async fn versions(app: &App, token: &str, id: &str) -> Vec<String> {
    let v = app.ok(token, VERSIONS, json!({ "id": id })).await;
    v["artifact"]["versions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["version"].as_str().unwrap().to_owned())
        .collect()
}

/// Makes versions look recorded `days` ago (the immutability trigger set aside, as only a test may).
async fn age(app: &App, tenant: &str, versions: &[(&str, &str)], days: i32) {
    let admin = app.admin_pool().await;
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
    for (id, v) in versions {
        sqlx::query("UPDATE artifact_versions SET created_at = now() - make_interval(days => $4) WHERE tenant_id = $1 AND artifact_id = $2 AND version = $3")
            .bind(tenant).bind(id).bind(v).bind(days)
            .execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn object_exists(app: &App, storage_ref: &str) -> bool {
    use object_store::ObjectStoreExt;
    app.state.bodies.blob.store.head(&lineage::bodies::object_path(storage_ref).unwrap()).await.is_ok()
}

async fn expired_events(app: &App, tenant: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type = 'ArtifactVersionExpired'")
        .bind(tenant)
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_versions_go_with_their_last_shared_body_but_never_the_published_one_nor_under_legal_hold() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let tenant = kernel::TenantId::parse(&t).unwrap();
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let reg = "mutation($id: String!, $ty: String!) { registerArtifact(input: { id: $id, artifactType: $ty, name: $id }) { id } }";
    app.ok(&token, reg, json!({ "id": "logs", "ty": "log-bundle" })).await;
    app.ok(&token, reg, json!({ "id": "doc", "ty": "document" })).await;
    let body = b"log lines".to_vec();
    let record = |id: &str, v: &str, content: &[u8]| {
        app.ok(&token, RECORD, json!({ "input": { "artifactId": id, "version": v, "contentHash": sha256(content) } }))
    };
    // 1.0.0 and 1.1.0 share one body; 2.0.0 is published; the document has no policy.
    record("logs", "1.0.0", &body).await;
    let shared = app
        .ok(&token, "{ artifact(id: \"logs\") { version(version: \"1.0.0\") { storageRef } } }", json!({}))
        .await["artifact"]["version"]["storageRef"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = put(&app, &token, "/api/v1/artifacts/logs/versions/1.0.0/body", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    record("logs", "1.1.0", &body).await;
    record("logs", "2.0.0", b"two").await;
    for s in ["VALIDATED", "PUBLISHED"] {
        let q = "mutation($s: ArtifactVersionStatus!) { changeArtifactVersionStatus(artifactId: \"logs\", version: \"2.0.0\", status: $s) { status } }";
        app.ok(&token, q, json!({ "s": s })).await;
    }
    recorded(&app, &token, "doc2", "1.0.0", b"doc").await;
    record("doc", "1.0.0", b"doc").await;

    // Bad policies are coded; a good one is kept.
    for (ty, days) in [("Bad Type", json!(1)), ("log-bundle", json!(0)), ("log-bundle", json!(40000))] {
        let v = app.gql(&token, RETAIN, json!({ "t": ty, "d": days })).await;
        assert_eq!(test_support::code(&v), "BAD_USER_INPUT", "{ty} {days}: {v}");
    }
    let p = app.ok(&token, RETAIN, json!({ "t": "log-bundle", "d": 30 })).await;
    assert_eq!(p["setArtifactRetention"], json!({ "artifactType": "log-bundle", "keepDays": 30 }));
    assert_eq!(
        app.ok(&token, "{ artifactRetention { artifactType keepDays } }", json!({})).await["artifactRetention"][0]
            ["keepDays"],
        30
    );

    // Nothing is old enough yet.
    assert_eq!(lineage::retention::run_once(&app.state).await.unwrap().expired, 0);

    // 1.0.0 and 2.0.0 (and the document) age past 30 days; 1.1.0 does not.
    age(&app, &t, &[("logs", "1.0.0"), ("logs", "2.0.0"), ("doc", "1.0.0")], 40).await;

    // Under legal hold nothing goes.
    let mut tx = kernel::db::tenant_tx(app.pool(), &tenant).await.unwrap();
    kernel::contracts::tenancy::record_legal_hold(&mut tx, &tenant, true, chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(lineage::retention::run_once(&app.state).await.unwrap().expired, 0);
    let mut tx = kernel::db::tenant_tx(app.pool(), &tenant).await.unwrap();
    kernel::contracts::tenancy::record_legal_hold(&mut tx, &tenant, false, chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();

    // Lifted: 1.0.0 goes; its body stays for 1.1.0; the published 2.0.0 and the document stay.
    let r = lineage::retention::run_once(&app.state).await.unwrap();
    assert_eq!((r.expired, r.blobs_deleted), (1, 0));
    assert_eq!(versions(&app, &token, "logs").await, ["2.0.0", "1.1.0"]);
    assert_eq!(versions(&app, &token, "doc").await, ["1.0.0"]);
    assert!(object_exists(&app, &shared).await, "1.1.0 still refers to the body");
    assert_eq!(expired_events(&app, &t).await, 1);

    // 1.1.0 ages too: it goes, and the body with it, from blob storage.
    age(&app, &t, &[("logs", "1.1.0")], 40).await;
    let r = lineage::retention::run_once(&app.state).await.unwrap();
    assert_eq!((r.expired, r.blobs_deleted), (1, 1));
    assert_eq!(versions(&app, &token, "logs").await, ["2.0.0"]);
    assert!(!object_exists(&app, &shared).await);
    let bodies: i64 =
        sqlx::query_scalar("SELECT count(*) FROM artifact_bodies WHERE tenant_id = $1 AND storage_ref = $2")
            .bind(&t)
            .bind(&shared)
            .fetch_one(&app.admin_pool().await)
            .await
            .unwrap();
    assert_eq!(bodies, 0);
    assert_eq!(expired_events(&app, &t).await, 2);
    // The graph remembers them.
    let g = app.ok(&token, "{ lineageNode(id: \"artifact:logs@1.0.0\") { id } }", json!({})).await;
    assert!(g["lineageNode"].is_null(), "a version with no edges was never a node: {g}");

    // The policy removed: kept for ever.
    let p = app.ok(&token, RETAIN, json!({ "t": "log-bundle", "d": null })).await;
    assert!(p["setArtifactRetention"].is_null());
    assert_eq!(
        app.ok(&token, "{ artifactRetention { artifactType } }", json!({})).await["artifactRetention"],
        json!([])
    );
    app.cleanup().await;
}
