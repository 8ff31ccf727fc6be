//! The audit log: one entry per event even when redelivered, one unbroken chain under concurrent appends,
//! an entry altered behind the app's back located by `verifyAudit`, append-only for the app role, and
//! isolation between tenants.

use std::time::Duration;

use governance::audit;
use kernel::envelope::{Envelope, EventMeta};
use kernel::TenantId;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Any domain's event: the audit consumer is bound to every routing key.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct ThingHappened {
    n: u32,
}

impl kernel::envelope::Event for ThingHappened {
    const DOMAIN: &'static str = "catalogue";
    const TYPE: &'static str = "ThingHappened";
}

const VERIFY: &str = "query($from: Int, $to: Int) { verifyAudit(fromSequence: $from, toSequence: $to) {
    fromSequence toSequence verified ok firstBroken { sequence expected found reason } } }";

async fn verify(app: &TestApp, token: &str, from: i64, to: Option<i64>) -> Value {
    app.ok(token, VERIFY, json!({ "from": from, "to": to })).await["verifyAudit"].clone()
}

fn envelope(tenant: &str, n: u32) -> Envelope {
    let meta = EventMeta { trace_id: "t".into(), correlation_id: format!("c{n}"), causation_id: None };
    Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, &ThingHappened { n })
}

#[tokio::test]
async fn every_event_is_audited_once_even_when_redelivered_and_the_chain_verifies() {
    let app = spawn_app().await;
    test_support::consuming(&format!("{}.audit", app.command_prefix())).await;
    let tenant = format!("t-{}", app.id);
    let token = app.member(&tenant);
    let first = app.publish(&tenant, "catalogue.ThingHappened", &ThingHappened { n: 1 }).await;
    app.publish_envelope("catalogue.ThingHappened", &first).await; // redelivered
    let second = app.publish(&tenant, "catalogue.ThingHappened", &ThingHappened { n: 2 }).await;
    let third = app.publish(&tenant, "catalogue.ThingHappened", &ThingHappened { n: 3 }).await;
    let admin = app.admin_pool().await;
    test_support::eventually("three audit entries", Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT size FROM audit_heads WHERE tenant_id = $1")
            .bind(&tenant)
            .fetch_optional(&admin)
            .await
            .unwrap()
            .unwrap_or(0);
        n >= 3
    })
    .await;
    // The consumer takes deliveries in order: once the third is in, the duplicate was handled too.
    let v = app
        .ok(
            &token,
            "{ auditEntries(first: 10) { edges { node { sequence eventId eventType correlationId canonical hash } } } }",
            json!({}),
        )
        .await;
    let nodes: Vec<&Value> = v["auditEntries"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
    let ids: Vec<(i64, &str)> =
        nodes.iter().map(|n| (n["sequence"].as_i64().unwrap(), n["eventId"].as_str().unwrap())).collect();
    assert_eq!(
        ids,
        vec![(1, first.event_id.as_str()), (2, second.event_id.as_str()), (3, third.event_id.as_str())],
        "one entry per event, in order"
    );
    let canonical: Value = serde_json::from_str(nodes[0]["canonical"].as_str().unwrap()).unwrap();
    assert_eq!(canonical["sequence"], 1);
    assert_eq!(canonical["payload"], json!({ "n": 1 }));
    assert_eq!(canonical["correlationId"], first.correlation_id.as_str());
    // The first hash is sha256(32 zero bytes ‖ canonical entry).
    let h = audit::chain(&audit::GENESIS, nodes[0]["canonical"].as_str().unwrap().as_bytes());
    assert_eq!(nodes[0]["hash"], hex::encode(h));

    let v = verify(&app, &token, 1, None).await;
    assert_eq!(v, json!({ "fromSequence": 1, "toSequence": 3, "verified": 3, "ok": true, "firstBroken": null }));
    let v = verify(&app, &token, 2, Some(3)).await;
    assert_eq!(
        (v["ok"].as_bool(), v["verified"].as_i64()),
        (Some(true), Some(2)),
        "a range starts after its predecessor's hash"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_appends_for_one_tenant_form_one_unbroken_chain_while_tenants_append_in_parallel() {
    let app = spawn_app().await;
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let db = app.state.kernel.db.clone();
            tokio::spawn(async move {
                let tenant = TenantId::parse(if i % 4 == 0 { "other" } else { "acme" }).unwrap();
                for j in 0..10 {
                    let mut tx = db.tenant_tx(&tenant).await.unwrap();
                    let batch = (0..3).map(|k| envelope(tenant.as_str(), i * 1000 + j * 10 + k)).collect();
                    audit::append(&mut tx, &tenant, batch).await.unwrap();
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let admin = app.admin_pool().await;
    for (tenant, expected) in [("acme", 6 * 30), ("other", 2 * 30)] {
        let (n, distinct, max): (i64, i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), count(DISTINCT seq), max(seq) FROM audit_entries WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&admin)
                .await
                .unwrap();
        assert_eq!(
            (n, distinct, max),
            (expected, expected, Some(expected)),
            "{tenant}: sequences 1..={expected}, no fork"
        );
        let v = verify(&app, &app.member(tenant), 1, None).await;
        assert_eq!((v["ok"].as_bool(), v["verified"].as_i64()), (Some(true), Some(expected)), "{tenant}: {v}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn an_entry_altered_by_a_superuser_is_located_and_the_app_role_cannot_alter_any() {
    let app = spawn_app().await;
    let tenant = TenantId::parse("acme").unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    let entries = audit::append(&mut tx, &tenant, (0..5).map(|n| envelope("acme", n)).collect()).await.unwrap();
    tx.commit().await.unwrap();

    for sql in ["UPDATE audit_entries SET event_type = 'x' WHERE seq = 3", "DELETE FROM audit_entries WHERE seq = 3"] {
        let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
        let e = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("42501"), "{sql}: {e}");
    }

    // A superuser edits entry 3 behind every trigger.
    let admin = app.admin_pool().await;
    let mut conn = admin.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE audit_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"n\":2', '\"n\":7'), 'UTF8') WHERE tenant_id = 'acme' AND seq = 3")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("RESET session_replication_role").execute(&mut *conn).await.unwrap();
    drop(conn);

    let token = app.member("acme");
    let v = verify(&app, &token, 1, None).await;
    assert_eq!((v["ok"].as_bool(), v["verified"].as_i64()), (Some(false), Some(2)), "{v}");
    let broken = &v["firstBroken"];
    assert_eq!(broken["sequence"], 3);
    assert_eq!(broken["found"], hex::encode(entries[2].hash), "the stored hash");
    assert_ne!(broken["expected"], broken["found"]);
    // Another tenant's log is its own, and empty.
    let v = verify(&app, &app.member("globex"), 1, None).await;
    assert_eq!(v, json!({ "fromSequence": 1, "toSequence": 0, "verified": 0, "ok": true, "firstBroken": null }));
    let v = app.ok(&app.member("globex"), "{ auditEntries { edges { node { sequence } } } }", json!({})).await;
    assert_eq!(v["auditEntries"]["edges"], json!([]));
    app.cleanup().await;
}
