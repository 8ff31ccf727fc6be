//! Classification and redaction in every path: a caller without `lineage:read-restricted` sees the
//! metadata of a confidential or restricted artifact, and `null` with a coded redaction for its sensitive
//! fields (attributes, body) — in queries, lists, entities the router resolves, subscriptions and the body
//! route; events never carry them. A caller with the permission sees all; public and internal artifacts
//! are not redacted.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use test_support::{Next, WsClient};

use crate::bodies::{get, put, sha256};

const REGISTER: &str = "mutation($input: RegisterArtifactInput!) { registerArtifact(input: $input) { id } }";
const RECORD: &str = "mutation($input: RecordArtifactVersionInput!) { recordArtifactVersion(input: $input) {
    version attributes redaction { reason } } }";
const CLASSIFY: &str =
    "mutation($id: ID!, $c: ArtifactClassification!) { classifyArtifact(id: $id, classification: $c) { id } }";
const VERSION_FIELDS: &str =
    "version contentHash producedByAgentId attributes body { state path } redaction { reason classification fields }";

fn one() -> String {
    format!("query($id: ID!) {{ artifact(id: $id) {{ name classification version(version: \"1.0.0\") {{ {VERSION_FIELDS} }} }} }}")
}

fn list() -> String {
    format!("{{ artifacts(first: 10) {{ edges {{ node {{ id versions(first: 5) {{ edges {{ node {{ {VERSION_FIELDS} }} }} }} }} }} }} }}")
}

fn entity() -> String {
    format!(
        "query($reps: [_Any!]!) {{ _entities(representations: $reps) {{
            ... on Artifact {{ id latest {{ {VERSION_FIELDS} }} }}
            ... on AgentTask {{ id outputArtifacts {{ {VERSION_FIELDS} }} }} }} }}"
    )
}

fn redacted(classification: &str) -> Value {
    json!({ "reason": "CLASSIFIED", "classification": classification, "fields": ["attributes", "body"] })
}

#[tokio::test]
async fn callers_without_read_restricted_see_metadata_but_not_sensitive_fields_in_every_path() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let writer = app.tenant_token(&t, &["lineage:read", "lineage:write", "lineage:read-restricted"]);
    let reader = app.tenant_token(&t, &["lineage:read"]);
    let cleared = app.tenant_token(&t, &["lineage:read", "lineage:read-restricted"]);
    let task = uuid::Uuid::new_v4();
    let body = b"the secret plan".to_vec();
    let attributes = json!({ "prompt": "summarise the merger", "temperature": 0.2 });

    // A subscriber without the permission, listening before anything happens.
    let url = format!("{}/graphql", app.serve().await.replace("http://", "ws://"));
    let mut live = WsClient::init(&url, app.config.router_secret.expose_secret(), &reader).await;
    let changes =
        format!("subscription {{ artifactChanges {{ eventType version {{ artifactId {VERSION_FIELDS} }} }} }}");
    live.subscribe("1", &changes).await;
    // The replica's listener takes events once it is bound: probe versions until one comes through.
    app.ok(&writer, REGISTER, json!({ "input": { "id": "probe", "artifactType": "document", "name": "Probe" } })).await;
    let mut probe = 0;
    'ready: loop {
        probe += 1;
        assert!(probe < 60, "the listener never delivered a change");
        let input = json!({ "input": { "artifactId": "probe", "version": format!("0.0.{probe}"), "contentHash": sha256(&[probe as u8]) } });
        app.ok(&writer, RECORD, input).await;
        loop {
            match live.next(Duration::from_millis(500)).await {
                Next::Message(m) if m["type"] == "next" => break 'ready,
                Next::Message(_) => continue,
                _ => break,
            }
        }
    }

    let input = json!({ "input": { "id": "plan", "artifactType": "document", "name": "Merger plan",
        "classification": "CONFIDENTIAL" } });
    app.ok(&writer, REGISTER, input).await;
    let input = json!({ "input": { "artifactId": "plan", "version": "1.0.0", "contentHash": sha256(&body),
        "producedByAgentId": "planner", "producedByTaskId": task, "attributes": attributes } });
    let recorded = app.ok(&writer, RECORD, input).await;
    assert_eq!(recorded["recordArtifactVersion"]["attributes"], attributes, "the writer has read-restricted");
    let (status, v) = put(&app, &writer, "/api/v1/artifacts/plan/versions/1.0.0/body", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    for to in ["VALIDATED", "PUBLISHED"] {
        let q = "mutation($s: ArtifactVersionStatus!) { changeArtifactVersionStatus(artifactId: \"plan\", version: \"1.0.0\", status: $s) { status } }";
        app.ok(&writer, q, json!({ "s": to })).await;
    }

    let hidden = |v: &Value| {
        assert_eq!(v["version"], "1.0.0", "metadata stays: {v}");
        assert_eq!(v["contentHash"], sha256(&body));
        assert_eq!(v["producedByAgentId"], "planner");
        assert_eq!(v["attributes"], Value::Null, "{v}");
        assert_eq!(v["body"], Value::Null, "{v}");
        assert_eq!(v["redaction"], redacted("CONFIDENTIAL"));
    };
    let shown = |v: &Value| {
        assert_eq!(v["attributes"], attributes, "{v}");
        assert_eq!(v["body"]["state"], "STORED");
        assert_eq!(v["redaction"], Value::Null);
    };

    // One artifact.
    let q = one();
    let a = app.ok(&reader, &q, json!({ "id": "plan" })).await["artifact"].clone();
    assert_eq!((a["name"].clone(), a["classification"].clone()), (json!("Merger plan"), json!("CONFIDENTIAL")));
    hidden(&a["version"]);
    shown(&app.ok(&cleared, &q, json!({ "id": "plan" })).await["artifact"]["version"]);

    // Lists.
    let l = app.ok(&reader, &list(), json!({})).await;
    hidden(&l["artifacts"]["edges"][0]["node"]["versions"]["edges"][0]["node"]);
    let l = app.ok(&cleared, &list(), json!({})).await;
    shown(&l["artifacts"]["edges"][0]["node"]["versions"]["edges"][0]["node"]);

    // Entities the router resolves for other subgraphs' types.
    let reps = json!({ "reps": [{ "__typename": "Artifact", "id": "plan" },
                                { "__typename": "AgentTask", "id": task.to_string() }] });
    let e = app.ok(&reader, &entity(), reps.clone()).await;
    hidden(&e["_entities"][0]["latest"]);
    hidden(&e["_entities"][1]["outputArtifacts"][0]);
    let e = app.ok(&cleared, &entity(), reps).await;
    shown(&e["_entities"][0]["latest"]);
    shown(&e["_entities"][1]["outputArtifacts"][0]);

    // The body route.
    let (status, refused) = get(&app, &reader, "/api/v1/artifacts/plan/versions/1.0.0/body", None).await;
    let refused: Value = serde_json::from_slice(&refused).unwrap();
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(refused["errors"][0]["extensions"]["reason"], "REDACTED");
    assert!(!refused.to_string().contains("secret plan"));
    let (status, got) = get(&app, &cleared, "/api/v1/artifacts/plan/versions/1.0.0/body", None).await;
    assert_eq!((status, got), (200, body.clone()));

    // The subscription: every change of the version, redacted for this subscriber.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match live.next(Duration::from_secs(20)).await {
            Next::Message(m)
                if m["type"] == "next"
                    && m["payload"]["data"]["artifactChanges"]["version"]["artifactId"] == "probe" => {}
            Next::Message(m) if m["type"] == "next" => {
                let change = &m["payload"]["data"]["artifactChanges"];
                hidden(&change["version"]);
                seen.push(change["eventType"].as_str().unwrap().to_owned());
            }
            Next::Message(m) if m["type"] == "connection_ack" || m["type"] == "ping" => {}
            other => panic!("expected a change, got {other:?} after {seen:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            "ArtifactVersionRecorded",
            "ArtifactBodyStored",
            "ArtifactVersionStatusChanged",
            "ArtifactVersionStatusChanged"
        ]
    );

    // Events (and so the audit log, which records them): no attributes of a confidential artifact.
    let admin = app.admin_pool().await;
    let payload: Value = sqlx::query_scalar(
        "SELECT envelope->'payload' FROM outbox WHERE tenant_id = $1 AND event_type = 'ArtifactVersionRecorded'
          AND envelope->'payload'->>'artifactId' = 'plan'",
    )
    .bind(&t)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((payload["attributes"].clone(), payload["redacted"].clone()), (Value::Null, json!(true)), "{payload}");
    let all: Vec<Value> = sqlx::query_scalar("SELECT envelope FROM outbox WHERE tenant_id = $1")
        .bind(&t)
        .fetch_all(&admin)
        .await
        .unwrap();
    for env in &all {
        assert!(!env.to_string().contains("merger"), "no event carries a sensitive field: {env}");
    }

    // Reclassified internal: nothing redacted any more, in queries; its later events carry attributes.
    app.ok(&writer, CLASSIFY, json!({ "id": "plan", "c": "INTERNAL" })).await;
    shown(&app.ok(&reader, &q, json!({ "id": "plan" })).await["artifact"]["version"]);
    let input = json!({ "input": { "artifactId": "plan", "version": "1.1.0", "contentHash": sha256(b"x"),
        "attributes": attributes } });
    app.ok(&writer, RECORD, input).await;
    let payload: Value = sqlx::query_scalar(
        "SELECT envelope->'payload' FROM outbox WHERE tenant_id = $1 AND event_type = 'ArtifactVersionRecorded'
          AND envelope->'payload'->>'version' = '1.1.0'",
    )
    .bind(&t)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!((payload["attributes"].clone(), payload["redacted"].clone()), (attributes, json!(false)));
    drop(admin);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_attributes_are_coded_and_record_nothing() {
    let app = crate::spawn().await;
    let t = format!("acme-{}", app.id);
    let token = app.tenant_token(&t, &["lineage:read", "lineage:write"]);
    let input = json!({ "input": { "id": "a", "artifactType": "document", "name": "A" } });
    app.ok(&token, REGISTER, input).await;
    for (attributes, why) in [
        (json!([1, 2]), "a JSON object"),
        (json!({ "big": "x".repeat(17 * 1024) }), "16 KiB"),
        (json!({ "nul": "a\u{0}b" }), "NUL"),
    ] {
        let input = json!({ "input": { "artifactId": "a", "version": "1.0.0", "contentHash": sha256(b"a"),
            "attributes": attributes } });
        let v = app.gql(&token, RECORD, input).await;
        assert_eq!(test_support::code(&v), "BAD_USER_INPUT", "{v}");
        assert!(v.to_string().contains(why) || why == "NUL", "{why}: {v}");
    }
    let q = "{ artifact(id: \"a\") { versions(first: 5) { edges { node { version } } } } }";
    assert_eq!(app.ok(&token, q, json!({})).await["artifact"]["versions"]["edges"], json!([]));
    app.cleanup().await;
}
