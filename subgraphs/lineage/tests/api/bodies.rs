//! Artifact bodies over HTTP, against lineage directly (as the edge passes them; the public endpoint is
//! the end-to-end tests'): upload checked against the declared sha256 with nothing stored on a mismatch,
//! restartable, idempotent, size-limited; download whole and by range; a failed metadata transaction
//! leaves no blob; the sweeper removes abandoned uploads; Azure Blob (Azurite) as the store; the router
//! secret and the bearer token demanded as on `/graphql`.

use axum::body::Body;
use axum::http::Request;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::App;

const REGISTER: &str = "mutation($input: RegisterArtifactInput!) { registerArtifact(input: $input) { id } }";
const RECORD: &str =
    "mutation($input: RecordArtifactVersionInput!) { recordArtifactVersion(input: $input) { version storageRef } }";
const BODY: &str = "query($id: ID!, $v: String!) { artifact(id: $id) { version(version: $v) {
    body { state size path } redaction { reason } } } }";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Registers `artifact` and records `version` with the content `body`; its storage reference.
pub async fn recorded(app: &App, token: &str, artifact: &str, version: &str, body: &[u8]) -> String {
    let input = json!({ "input": { "id": artifact, "artifactType": "document", "name": artifact } });
    app.ok(token, REGISTER, input).await;
    let input = json!({ "input": { "artifactId": artifact, "version": version, "contentHash": sha256(body) } });
    app.ok(token, RECORD, input).await["recordArtifactVersion"]["storageRef"].as_str().unwrap().to_owned()
}

fn path(artifact: &str, version: &str) -> String {
    format!("/api/v1/artifacts/{artifact}/versions/{version}/body")
}

fn request(app: &App, method: &str, uri: &str, token: Option<&str>) -> axum::http::request::Builder {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(kernel::server::ROUTER_SECRET_HEADER, app.config.router_secret.expose_secret());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req
}

pub async fn put(app: &App, token: &str, uri: &str, body: Vec<u8>) -> (u16, Value) {
    app.call(request(app, "PUT", uri, Some(token)).body(Body::from(body)).unwrap()).await
}

pub async fn get(app: &App, token: &str, uri: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = request(app, "GET", uri, Some(token));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    app.call_raw(req.body(Body::empty()).unwrap()).await
}

/// The object a storage reference names, as the app's store holds it (`None` when absent).
async fn object(app: &App, storage_ref: &str) -> Option<Vec<u8>> {
    let path = lineage::bodies::object_path(storage_ref).unwrap();
    match app.state.bodies.blob.store.get(&path).await {
        Ok(got) => Some(got.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

async fn body_state(app: &App, token: &str, artifact: &str, version: &str) -> Value {
    app.ok(token, BODY, json!({ "id": artifact, "v": version })).await["artifact"]["version"]["body"].clone()
}

/// A body of `len` bytes that is not all one byte.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn a_body_is_stored_only_when_its_sha256_is_the_declared_one_and_an_upload_can_simply_be_made_again() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let body = content(3 * 1024 * 1024 + 17, 1);
    let storage = recorded(&app, &token, "report", "1.0.0", &body).await;
    assert_eq!(body_state(&app, &token, "report", "1.0.0").await["state"], "MISSING");
    let (status, _) = get(&app, &token, &path("report", "1.0.0"), None).await;
    assert_eq!(status, 404, "nothing to download before an upload");

    // Other bytes: refused, naming both hashes; nothing stored, and the body can be uploaded again.
    let mut wrong = body.clone();
    wrong[1000] ^= 1;
    let (status, v) = put(&app, &token, &path("report", "1.0.0"), wrong.clone()).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(v["errors"][0]["extensions"]["contentHash"], sha256(&wrong));
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("nothing was stored"), "{v}");
    assert_eq!(object(&app, &storage).await, None, "a mismatch stores nothing");
    assert_eq!(body_state(&app, &token, "report", "1.0.0").await["state"], "MISSING");

    let (status, v) = put(&app, &token, &path("report", "1.0.0"), body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({ "artifactId": "report", "version": "1.0.0", "contentHash": sha256(&body), "storageRef": storage,
                "size": body.len(), "storedNow": true })
    );
    assert_eq!(object(&app, &storage).await.as_deref(), Some(&body[..]));
    let state = body_state(&app, &token, "report", "1.0.0").await;
    assert_eq!(state, json!({ "state": "STORED", "size": body.len().to_string(), "path": path("report", "1.0.0") }));

    // Again: answered from the record, the body not read (an empty one would not match).
    let (status, v) = put(&app, &token, &path("report", "1.0.0"), Vec::new()).await;
    assert_eq!((status, v["storedNow"].clone()), (200, json!(false)), "{v}");

    // Downloaded whole, and resumed from an offset.
    let (status, got) = get(&app, &token, &path("report", "1.0.0"), None).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&got), sha256(&body));
    let (status, tail) = get(&app, &token, &path("report", "1.0.0"), Some("bytes=1000000-")).await;
    assert_eq!(status, 206);
    assert_eq!(tail, body[1_000_000..]);
    let (status, _) = get(&app, &token, &path("report", "1.0.0"), Some("bytes=99999999-")).await;
    assert_eq!(status, 416, "a range past the end is unsatisfiable");
    let (status, _) = get(&app, &token, &path("report", "1.0.0"), Some("bytes=9-2")).await;
    assert_eq!(status, 400, "a range that is not one is refused");

    // The stored event, once.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE tenant_id = $1 AND event_type = 'ArtifactBodyStored'")
            .bind(&t)
            .fetch_one(&app.admin_pool().await)
            .await
            .unwrap();
    assert_eq!(stored, 1);

    // A version with identical content shares the body: stored already.
    let input = json!({ "input": { "artifactId": "report", "version": "1.0.1", "contentHash": sha256(&body) } });
    app.ok(&token, RECORD, input).await;
    assert_eq!(body_state(&app, &token, "report", "1.0.1").await["state"], "STORED");
    let (status, v) = put(&app, &token, &path("report", "1.0.1"), body.clone()).await;
    assert_eq!((status, v["storedNow"].clone()), (200, json!(false)), "{v}");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_requests_are_coded_and_store_nothing() {
    let app = crate::spawn_with(|c| c.artifact_max_body_bytes = 1024 * 1024).await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let reader = app.tenant_token(&t, &["lineage:read"]);
    let big = content(1024 * 1024 + 1, 2);
    let storage = recorded(&app, &token, "big", "1.0.0", &big).await;

    // Over the limit: 413, declared or not.
    let (status, v) = put(&app, &token, &path("big", "1.0.0"), big.clone()).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let (status, v) = app.call(request(&app, "PUT", &path("big", "1.0.0"), Some(&token)).body(streamed).unwrap()).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(object(&app, &storage).await, None);

    // Unknown artifact or version, bad ids: coded.
    let (status, v) = put(&app, &token, &path("nope", "1.0.0"), vec![1]).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (404, json!("NOT_FOUND")));
    let (status, v) = put(&app, &token, &path("big", "9.9.9"), vec![1]).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (404, json!("NOT_FOUND")));
    let (status, v) = put(&app, &token, &path("big", "one"), vec![1]).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (400, json!("BAD_USER_INPUT")));
    let (status, v) = put(&app, &token, &path("b%20ad", "1.0.0"), vec![1]).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (400, json!("BAD_USER_INPUT")));

    // Permissions: reading is not writing; no token, no secret.
    let (status, v) = put(&app, &reader, &path("big", "1.0.0"), vec![1]).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (403, json!("FORBIDDEN")));
    let (status, v) = app.call(request(&app, "GET", &path("big", "1.0.0"), None).body(Body::empty()).unwrap()).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (401, json!("UNAUTHENTICATED")));
    let no_secret = Request::get(path("big", "1.0.0")).header("authorization", format!("Bearer {token}"));
    let (status, _) = app.call(no_secret.body(Body::empty()).unwrap()).await;
    assert_eq!(status, 403, "only through the edge or router");

    // Another tenant sees no such artifact.
    let other = app.tenant_token(&format!("other-{}", app.id), &["lineage:read", "lineage:write"]);
    let (status, _) = get(&app, &other, &path("big", "1.0.0"), None).await;
    assert_eq!(status, 404);

    // An upload under way (a live claim) turns another away.
    let small = content(10, 3);
    let storage = recorded(&app, &token, "small", "1.0.0", &small).await;
    let mut tx = kernel::db::tenant_tx(app.pool(), &kernel::TenantId::parse(&t).unwrap()).await.unwrap();
    let claimed = lineage::bodies::store::claim(
        &mut tx,
        &kernel::TenantId::parse(&t).unwrap(),
        &storage,
        &sha256(&small),
        uuid::Uuid::new_v4(),
        600.0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(claimed);
    let (status, v) = put(&app, &token, &path("small", "1.0.0"), small.clone()).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (409, json!("CONFLICT")), "{v}");
    assert_eq!(body_state(&app, &token, "small", "1.0.0").await["state"], "UPLOADING");
    app.cleanup().await;
}

#[tokio::test]
async fn a_failed_metadata_transaction_leaves_no_blob_and_the_sweeper_removes_abandoned_uploads() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let tenant = kernel::TenantId::parse(&t).unwrap();
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let body = content(100_000, 4);
    let storage = recorded(&app, &token, "doomed", "1.0.0", &body).await;

    // The record of the stored body fails (after the blob was written whole): the blob is deleted.
    let admin = app.admin_pool().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_stored() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.state = 'stored' THEN RAISE EXCEPTION 'the disk is full'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_stored BEFORE UPDATE ON artifact_bodies FOR EACH ROW EXECUTE FUNCTION refuse_stored();",
    )
    .execute(&admin)
    .await
    .unwrap();
    let (status, v) = put(&app, &token, &path("doomed", "1.0.0"), body.clone()).await;
    assert_eq!((status, v["errors"][0]["extensions"]["code"].clone()), (500, json!("INTERNAL")), "{v}");
    assert!(!v.to_string().contains("disk is full"), "no internals reach the client: {v}");
    assert_eq!(object(&app, &storage).await, None, "no blob outlives a failed metadata transaction");
    assert_eq!(body_state(&app, &token, "doomed", "1.0.0").await["state"], "MISSING");
    sqlx::raw_sql("DROP TRIGGER refuse_stored ON artifact_bodies").execute(&admin).await.unwrap();

    // An upload that died after writing (its blob there, its claim never renewed): swept once stale.
    let upload = uuid::Uuid::new_v4();
    let mut tx = kernel::db::tenant_tx(app.pool(), &tenant).await.unwrap();
    assert!(lineage::bodies::store::claim(&mut tx, &tenant, &storage, &sha256(&body), upload, 600.0).await.unwrap());
    tx.commit().await.unwrap();
    let path_in_store: Path = lineage::bodies::object_path(&storage).unwrap();
    app.state.bodies.blob.store.put(&path_in_store, body.clone().into()).await.unwrap();
    // Fresh claims stay.
    assert_eq!(lineage::bodies::sweeper::sweep(&app.state, lineage::bodies::CLAIM_STALE).await.unwrap(), 0);
    assert!(object(&app, &storage).await.is_some());
    sqlx::query("UPDATE artifact_bodies SET touched_at = now() - interval '11 minutes' WHERE storage_ref = $1")
        .bind(&storage)
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(lineage::bodies::sweeper::sweep(&app.state, lineage::bodies::CLAIM_STALE).await.unwrap(), 1);
    assert_eq!(object(&app, &storage).await, None, "the abandoned blob is gone");
    assert_eq!(body_state(&app, &token, "doomed", "1.0.0").await["state"], "MISSING");
    // And the body can be uploaded.
    let (status, v) = put(&app, &token, &path("doomed", "1.0.0"), body.clone()).await;
    assert_eq!(status, 200, "{v}");
    // A stored body is never swept.
    sqlx::query("UPDATE artifact_bodies SET touched_at = touched_at WHERE storage_ref = $1")
        .bind(&storage)
        .execute(&admin)
        .await
        .expect_err("a stored body's row never changes");
    assert_eq!(lineage::bodies::sweeper::sweep(&app.state, std::time::Duration::ZERO).await.unwrap(), 0);
    assert!(object(&app, &storage).await.is_some());
    drop(admin);
    app.cleanup().await;
}

#[tokio::test]
async fn bodies_go_to_azure_blob_when_configured() {
    let azurite = test_support::Azurite::start("artifacts").await;
    let key_file = std::env::temp_dir().join(format!("cp-azurite-key-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&key_file, test_support::azurite::KEY).unwrap();
    let app = crate::spawn_with(|c| {
        c.artifact_store_azure_container = Some(azurite.container.clone());
        c.artifact_store_azure_account = Some(test_support::azurite::ACCOUNT.into());
        c.artifact_store_azure_key = Some(format!("file:{}", key_file.display()));
        c.artifact_store_azure_endpoint = Some(azurite.endpoint.clone());
    })
    .await;
    let _ = std::fs::remove_file(&key_file);
    assert!(app.state.bodies.blob.location.starts_with(&azurite.endpoint), "{}", app.state.bodies.blob.location);
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    // More than one part, so the multipart upload has several blocks.
    let body = content(lineage::bodies::PART * 2 + 5, 5);
    let storage = recorded(&app, &token, "model", "2.0.0", &body).await;
    let mut wrong = body.clone();
    wrong[0] ^= 1;
    let (status, _) = put(&app, &token, &path("model", "2.0.0"), wrong).await;
    assert_eq!(status, 400);
    assert_eq!(object(&app, &storage).await, None, "an aborted multipart upload leaves no blob");
    let (status, v) = put(&app, &token, &path("model", "2.0.0"), body.clone()).await;
    assert_eq!(status, 200, "{v}");
    let (status, got) = get(&app, &token, &path("model", "2.0.0"), Some("bytes=5-")).await;
    assert_eq!(status, 206);
    assert_eq!(got, body[5..]);
    app.cleanup().await;
}
