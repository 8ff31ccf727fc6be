//! Retention per artifact type: versions past their type's policy are deleted with `ArtifactVersionExpired`
//! — never the published one, never while the tenant is under legal hold — and a body goes with the last
//! version that shares it, from blob storage too; types without a policy are kept; bad policies are coded.

use std::time::Duration;

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

/// Tenancy's `TenantLegalHoldChanged`, as it publishes it.
async fn hold(app: &App, tenant: &kernel::TenantId, on: bool) {
    use kernel::envelope::{Envelope, EventMeta};
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let payload = kernel::contracts::tenancy::TenantLegalHoldChanged { tenant_id: tenant.to_string(), legal_hold: on };
    let env = Envelope::new(tenant, &meta, &payload);
    let ch = kernel::broker::Broker::new(test_support::AMQP_URL.to_owned().into()).channel().await.unwrap();
    let key = format!("{}.tenancy.TenantLegalHoldChanged", app.command_prefix());
    let props = lapin::BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish(kernel::broker::EXCHANGE, &key, Default::default(), &serde_json::to_vec(&env).unwrap(), props)
        .await
        .unwrap()
        .await
        .unwrap();
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
    test_support::consuming(&format!("{}.legal-holds", app.command_prefix())).await;
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

    // Under legal hold (tenancy's event, through lineage's consumer) nothing goes.
    let admin = app.admin_pool().await;
    let held = |on: bool| {
        let (admin, t) = (admin.clone(), t.clone());
        async move {
            sqlx::query_scalar::<_, bool>("SELECT on_hold FROM legal_holds WHERE tenant_id = $1")
                .bind(&t)
                .fetch_optional(&admin)
                .await
                .unwrap()
                == Some(on)
        }
    };
    hold(&app, &tenant, true).await;
    test_support::eventually("the hold to reach lineage", Duration::from_secs(10), || held(true)).await;
    assert_eq!(lineage::retention::run_once(&app.state).await.unwrap().expired, 0);
    hold(&app, &tenant, false).await;
    test_support::eventually("the hold to be lifted", Duration::from_secs(10), || held(false)).await;

    // Lifted: 1.0.0 goes; its body stays for 1.1.0; the published 2.0.0 and the document stay.
    let r = lineage::retention::run_once(&app.state).await.unwrap();
    assert_eq!((r.expired, r.blobs_deleted), (1, 0));
    assert_eq!(versions(&app, &token, "logs").await, ["2.0.0", "1.1.0"]);
    assert_eq!(versions(&app, &token, "doc").await, ["1.0.0"]);
    assert!(object_exists(&app, &shared).await, "1.1.0 still refers to the body");
    assert_eq!(expired_events(&app, &t).await, 1);
    // An expired number is never recorded again (its storage path is 1.1.0's body's).
    let again = json!({ "input": { "artifactId": "logs", "version": "1.0.0", "contentHash": sha256(b"other") } });
    let v = app.gql(&token, RECORD, again).await;
    assert_eq!(test_support::code(&v), "CONFLICT", "{v}");
    assert!(v.to_string().contains("retention"), "{v}");

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

    // The policy removed: kept for ever.
    let p = app.ok(&token, RETAIN, json!({ "t": "log-bundle", "d": null })).await;
    assert!(p["setArtifactRetention"].is_null());
    assert_eq!(
        app.ok(&token, "{ artifactRetention { artifactType } }", json!({})).await["artifactRetention"],
        json!([])
    );
    app.cleanup().await;
}
