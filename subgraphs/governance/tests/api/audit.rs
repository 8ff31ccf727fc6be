//! The audit log: one entry per event even when redelivered, one unbroken chain under concurrent appends,
//! an entry altered behind the app's back located by `verifyAudit`, append-only for the app role, and
//! isolation between tenants.

use std::time::Duration;

use governance::audit;
use kernel::envelope::{Envelope, EventMeta};
use kernel::TenantId;
use serde_json::{json, Value};

use crate::helpers::{code, spawn_app, TestApp};

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
    let meta = EventMeta { trace_id: "t".into(), correlation_id: format!("c{n}"), causation_id: None, actor: None };
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
            "{ auditEntries(first: 10) { edges { node { sequence eventId eventType correlationId actor canonical hash } } } }",
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
    // Who acted, from the message's `cs-actor` header, is recorded and covered by the hash.
    let actor = format!("publisher-of-{tenant}");
    assert_eq!((nodes[0]["actor"].as_str(), canonical["actor"].as_str()), (Some(actor.as_str()), Some(actor.as_str())));
    // The first hash is sha256(32 zero bytes ‖ canonical entry).
    let h = audit::chain(&audit::GENESIS, nodes[0]["canonical"].as_str().unwrap().as_bytes());
    assert_eq!(nodes[0]["hash"], hex::encode(h));

    // One entry by its sequence: the same as in the list; none past the end, none before the start.
    let q = "query($s: Int!) { auditEntry(sequence: $s) { sequence eventId hash } }";
    let one = app.ok(&token, q, json!({ "s": 2 })).await;
    assert_eq!(
        (one["auditEntry"]["eventId"].as_str(), &one["auditEntry"]["hash"]),
        (Some(second.event_id.as_str()), &nodes[1]["hash"])
    );
    assert_eq!(code(&app.gql(&token, q, json!({ "s": 4 })).await), "NOT_FOUND");
    assert_eq!(code(&app.gql(&token, q, json!({ "s": 0 })).await), "BAD_USER_INPUT");
    // Another tenant's entry 1 is its own, never this tenant's.
    let (neighbour, other) = (format!("u-{}", app.id), app.member(&format!("u-{}", app.id)));
    assert_eq!(code(&app.gql(&other, q, json!({ "s": 1 })).await), "NOT_FOUND");
    let theirs = app.publish(&neighbour, "catalogue.ThingHappened", &ThingHappened { n: 9 }).await;
    let got = test_support::eventually_value("the neighbour's entry 1", Duration::from_secs(10), || async {
        let v = app.gql(&other, q, json!({ "s": 1 })).await;
        v["data"]["auditEntry"]["eventId"].as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(got, theirs.event_id);

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
        // The tree grew with the chain: its root is the RFC 6962 root of the entries in sequence order.
        assert_eq!(stored_root(&admin, tenant).await, root_of_entries(&admin, tenant).await, "{tenant}");
    }
    app.cleanup().await;
}

async fn stored_root(admin: &sqlx::PgPool, tenant: &str) -> (i64, Vec<u8>) {
    sqlx::query_as("SELECT tree_size, root FROM audit_heads WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(admin)
        .await
        .unwrap()
}

/// The root computed afresh from the stored entries.
async fn root_of_entries(admin: &sqlx::PgPool, tenant: &str) -> (i64, Vec<u8>) {
    let entries: Vec<Vec<u8>> = sqlx::query_scalar("SELECT entry FROM audit_entries WHERE tenant_id = $1 ORDER BY seq")
        .bind(tenant)
        .fetch_all(admin)
        .await
        .unwrap();
    let grown = audit::tree::grow(&audit::tree::Frontier::empty(), entries.iter().map(Vec::as_slice));
    (entries.len() as i64, grown.root.0.to_vec())
}

#[tokio::test]
async fn one_consumer_batch_of_many_tenants_events_grows_each_tenants_own_chain_and_tree() {
    let app = spawn_app().await;
    let queue = format!("{}.audit", app.command_prefix());
    test_support::consuming(&queue).await;
    let tenants: Vec<String> = (0..4).map(|i| format!("b{i}-{}", app.id)).collect();
    // Interleaved, quickly: the consumer takes what is waiting, several tenants' events per transaction.
    let mut published: Vec<Vec<String>> = vec![Vec::new(); tenants.len()];
    for n in 0..15u32 {
        for (i, t) in tenants.iter().enumerate() {
            published[i].push(app.publish(t, "catalogue.ThingHappened", &ThingHappened { n }).await.event_id);
        }
    }
    let admin = app.admin_pool().await;
    test_support::eventually("every tenant's 15 entries", Duration::from_secs(20), || async {
        let n: i64 = sqlx::query_scalar("SELECT coalesce(sum(size), 0)::bigint FROM audit_heads")
            .fetch_one(&admin)
            .await
            .unwrap();
        n >= 60
    })
    .await;
    for (i, t) in tenants.iter().enumerate() {
        let token = app.member(t);
        let v = app.ok(&token, "{ auditEntries(first: 100) { edges { node { sequence eventId } } } }", json!({})).await;
        let ids: Vec<&str> = v["auditEntries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["eventId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, published[i].iter().map(String::as_str).collect::<Vec<_>>(), "{t}: its own events, in order");
        let v = verify(&app, &token, 1, None).await;
        assert_eq!((v["ok"].as_bool(), v["verified"].as_i64()), (Some(true), Some(15)), "{t}: {v}");
        assert_eq!(stored_root(&admin, t).await, root_of_entries(&admin, t).await, "{t}: its tree");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_log_from_before_the_tree_gets_its_tree_at_its_next_append() {
    let app = spawn_app().await;
    let tenant = TenantId::parse("acme").unwrap();
    let append = |from: u32, to: u32| {
        let db = app.state.kernel.db.clone();
        let tenant = tenant.clone();
        async move {
            let mut tx = db.tenant_tx(&tenant).await.unwrap();
            audit::append(&mut tx, &tenant, (from..to).map(|n| envelope("acme", n)).collect()).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    append(0, 6).await;
    // As migration 1007 left a log written before it: entries and chain, no tree.
    let admin = app.admin_pool().await;
    let mut conn = admin.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query("DELETE FROM audit_tree WHERE tenant_id = 'acme'").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE audit_heads SET tree_size = 0, frontier = '\\x', root = sha256('') WHERE tenant_id = 'acme'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("RESET session_replication_role").execute(&mut *conn).await.unwrap();
    drop(conn);
    append(6, 9).await;
    assert_eq!(stored_root(&admin, "acme").await, root_of_entries(&admin, "acme").await);
    let token = app.member("acme");
    let p = app.ok(&token, "{ auditInclusionProof(sequence: 2) { treeSize rootHash proof } }", json!({})).await;
    assert_eq!(p["auditInclusionProof"]["treeSize"], 9, "{p}");
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

const CHECKPOINT: &str =
    "query($size: Int) { auditCheckpoint(treeSize: $size) { origin treeSize rootHash note verifierKey } }";

fn hash(hex_text: &Value) -> audit::tree::Hash {
    audit::tree::Hash(hex::decode(hex_text.as_str().unwrap()).unwrap().try_into().unwrap())
}

fn hashes(list: &Value) -> Vec<audit::tree::Hash> {
    list.as_array().unwrap().iter().map(hash).collect()
}

#[tokio::test]
async fn signed_checkpoints_inclusion_and_consistency_proofs_verify_and_fail_for_a_tampered_entry() {
    let app = spawn_app().await;
    let tenant = TenantId::parse("acme").unwrap();
    let token = app.member("acme");
    let append = |from: u32, to: u32| {
        let db = app.state.kernel.db.clone();
        let tenant = tenant.clone();
        async move {
            let mut tx = db.tenant_tx(&tenant).await.unwrap();
            let entries =
                audit::append(&mut tx, &tenant, (from..to).map(|n| envelope("acme", n)).collect()).await.unwrap();
            tx.commit().await.unwrap();
            entries
        }
    };
    // An empty log has a checkpoint too: size 0, the empty tree's root.
    let empty = app.ok(&token, CHECKPOINT, json!({})).await["auditCheckpoint"].clone();
    assert_eq!((empty["treeSize"].as_i64(), hash(&empty["rootHash"])), (Some(0), audit::tree::EMPTY_HASH));

    let mut entries = append(0, 3).await;
    let old = app.ok(&token, CHECKPOINT, json!({})).await["auditCheckpoint"].clone();
    entries.extend(append(3, 5).await);
    entries.extend(append(5, 11).await);
    let new = app.ok(&token, CHECKPOINT, json!({})).await["auditCheckpoint"].clone();
    assert_eq!((old["treeSize"].as_i64(), new["treeSize"].as_i64()), (Some(3), Some(11)));
    assert_eq!(new["origin"], "control-plane.test/audit/acme");

    // The notes are signed: they open with the verifier key, and say what the fields say.
    let vkey = new["verifierKey"].as_str().unwrap();
    for c in [&old, &new] {
        let opened = audit::checkpoint::open(c["note"].as_str().unwrap().as_bytes(), vkey).unwrap();
        assert_eq!(
            (opened.origin.as_str(), opened.size as i64, opened.root),
            ("control-plane.test/audit/acme", c["treeSize"].as_i64().unwrap(), hash(&c["rootHash"]))
        );
    }
    // A checkpoint of an older size is the one issued then.
    let again = app.ok(&token, CHECKPOINT, json!({ "size": 3 })).await["auditCheckpoint"].clone();
    assert_eq!(again["rootHash"], old["rootHash"]);

    // Every entry's inclusion proof verifies against the new root, and fails for a tampered entry.
    let new_root = hash(&new["rootHash"]);
    for e in &entries {
        let p = app
            .ok(
                &token,
                "query($s: Int!) { auditInclusionProof(sequence: $s) { sequence treeSize leafHash rootHash proof } }",
                json!({ "s": e.seq }),
            )
            .await["auditInclusionProof"]
            .clone();
        assert_eq!((p["treeSize"].as_i64(), hash(&p["rootHash"])), (Some(11), new_root));
        let leaf = audit::tree::record_hash(&e.entry);
        assert_eq!(hash(&p["leafHash"]), leaf, "the leaf is the canonical entry");
        let proof = hashes(&p["proof"]);
        let n = e.seq as u64 - 1;
        audit::tree::check_record(&proof, 11, new_root, n, leaf).unwrap();
        let mut tampered = e.entry.clone();
        tampered[1] ^= 1;
        assert!(audit::tree::check_record(&proof, 11, new_root, n, audit::tree::record_hash(&tampered)).is_err());
    }
    // Entry 2 is in the old tree as well.
    let p = app.ok(&token, "{ auditInclusionProof(sequence: 2, treeSize: 3) { rootHash proof } }", json!({})).await
        ["auditInclusionProof"]
        .clone();
    let old_root = hash(&old["rootHash"]);
    audit::tree::check_record(&hashes(&p["proof"]), 3, old_root, 1, audit::tree::record_hash(&entries[1].entry))
        .unwrap();

    // The old checkpoint is a prefix of the new: the consistency proof verifies, and not for another root.
    let c = app
        .ok(
            &token,
            "{ auditConsistencyProof(fromSize: 3) { fromSize toSize fromRootHash toRootHash proof } }",
            json!({}),
        )
        .await["auditConsistencyProof"]
        .clone();
    assert_eq!((c["fromSize"].as_i64(), c["toSize"].as_i64()), (Some(3), Some(11)));
    assert_eq!((hash(&c["fromRootHash"]), hash(&c["toRootHash"])), (old_root, new_root));
    let proof = hashes(&c["proof"]);
    audit::tree::check_tree(&proof, 11, new_root, 3, old_root).unwrap();
    let rewritten = audit::tree::Hash([9; 32]);
    assert!(audit::tree::check_tree(&proof, 11, new_root, 3, rewritten).is_err());

    // Sizes outside the log are the caller's error.
    for (q, field) in [
        ("{ auditInclusionProof(sequence: 12) { rootHash } }", "sequence"),
        ("{ auditInclusionProof(sequence: 1, treeSize: 12) { rootHash } }", "treeSize"),
        ("{ auditConsistencyProof(fromSize: 0) { proof } }", "fromSize"),
        ("{ auditConsistencyProof(fromSize: 5, toSize: 4) { proof } }", "fromSize"),
        ("{ auditCheckpoint(treeSize: 12) { note } }", "treeSize"),
    ] {
        let v = app.gql(&token, q, json!({})).await;
        assert_eq!(code(&v), "BAD_USER_INPUT", "{q}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{q}");
    }
    // Another tenant proves nothing about acme's log.
    let v = app.gql(&app.member("globex"), "{ auditInclusionProof(sequence: 1) { proof } }", json!({})).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    app.cleanup().await;
}

#[tokio::test]
async fn without_a_checkpoint_key_checkpoints_are_unavailable_but_proofs_are_not() {
    let app = crate::helpers::spawn_app_with(governance::Config::default()).await;
    let tenant = TenantId::parse("acme").unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    audit::append(&mut tx, &tenant, vec![envelope("acme", 1)]).await.unwrap();
    tx.commit().await.unwrap();
    let token = app.member("acme");
    let v = app.gql(&token, "{ auditCheckpoint { note } }", json!({})).await;
    assert_eq!(code(&v), "UNAVAILABLE", "{v}");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("AUDIT_CHECKPOINT_KEY"), "{v}");
    let v = app.ok(&token, "{ auditInclusionProof(sequence: 1) { proof } }", json!({})).await;
    assert_eq!(v["auditInclusionProof"]["proof"], json!([]), "a one-entry tree's proof is empty");
    app.cleanup().await;
}

/// Finding (Low): `(tenant, seq)` was unique within a partition only (a partitioned table's key must hold the
/// partition key), so the same sequence number could be written again in another month. Entries are now
/// admitted only as the next numbers of their tenant's sequence, whatever partition they land in.
#[tokio::test]
async fn a_sequence_number_is_written_once_across_partitions() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin_pool().await;
    let tenant = format!("t-{}", app.id);
    sqlx::query("INSERT INTO audit_heads (tenant_id, size, head) VALUES ($1, 0, $2)")
        .bind(&tenant)
        .bind(vec![0u8; 32])
        .execute(&admin)
        .await
        .unwrap();
    // This month's partition and next month's (the partition worker keeps months ahead).
    let insert = |seq: i64, months_ahead: i32| {
        let (admin, tenant) = (admin.clone(), tenant.clone());
        async move {
            sqlx::query(
                "INSERT INTO audit_entries (tenant_id, seq, recorded_at, event_id, event_type, occurred_at, trace_id,
                                            correlation_id, entry, hash)
                 VALUES ($1, $2, now() + make_interval(months => $3), 'evt', 'T', now(), 't', 'c', '\\x7b7d', $4)",
            )
            .bind(&tenant)
            .bind(seq)
            .bind(months_ahead)
            .bind(vec![0u8; 32])
            .execute(&admin)
            .await
        }
    };
    insert(1, 0).await.unwrap();
    let refused = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| {
        let e = r.expect_err("refused");
        e.as_database_error().and_then(|d| d.constraint().map(str::to_owned))
    };
    assert_eq!(refused(insert(1, 1).await).as_deref(), Some("audit_entries_tenant_seq"), "a duplicate, next month");
    assert_eq!(refused(insert(1, 0).await).as_deref(), Some("audit_entries_tenant_seq"), "a duplicate, same month");
    assert_eq!(refused(insert(3, 1).await).as_deref(), Some("audit_entries_tenant_seq"), "a gap");
    insert(2, 1).await.expect("the next number, in another partition");
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_entries WHERE tenant_id = $1 ORDER BY seq")
        .bind(&tenant)
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(seqs, vec![1, 2]);
    app.cleanup().await;
}

#[tokio::test]
async fn expired_partitions_are_dropped_unless_a_tenant_in_them_is_on_hold_or_not_exported() {
    // The app's own worker keeps a century (it must not race the passes below, which keep seven years).
    let app =
        crate::helpers::spawn_app_with(governance::Config { audit_retention_months: 1200, ..crate::helpers::config() })
            .await;
    let admin = app.admin_pool().await;
    // Two months of entries from long ago, as if written then: acme's (exported) in both, globex's (on hold)
    // in the first. Their heads first: an entry is admitted only as the next of its tenant's sequence.
    sqlx::query("INSERT INTO audit_heads (tenant_id, size, head) VALUES ('acme', 2, $1), ('globex', 1, $1)")
        .bind(vec![0u8; 32])
        .execute(&admin)
        .await
        .unwrap();
    for (month, tenants) in [("2017-01", vec!["acme", "globex"]), ("2017-02", vec!["acme"])] {
        // Created by the database owner, as governance_audit_partitions creates them.
        let part = format!("audit_entries_{}", month.replace('-', ""));
        let owner = kernel::db::Roles::for_domain("governance").owner;
        let mut conn = admin.acquire().await.unwrap();
        sqlx::query(&format!("SET ROLE {owner}")).execute(&mut *conn).await.unwrap();
        sqlx::query(&format!(
            "CREATE TABLE {part} PARTITION OF audit_entries FOR VALUES FROM ('{month}-01') TO ('{month}-01'::date + interval '1 month')"
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query("RESET ROLE").execute(&mut *conn).await.unwrap();
        drop(conn);
        for tenant in tenants {
            sqlx::query(
                "INSERT INTO audit_entries (tenant_id, seq, recorded_at, event_id, event_type, occurred_at, trace_id,
                                            correlation_id, entry, hash)
                 VALUES ($1, $2, $3::timestamptz, 'evt', 'Old', $3::timestamptz, 't', 'c', '\\x7b7d', $4)",
            )
            .bind(tenant)
            .bind(if month == "2017-01" { 1i64 } else { 2 })
            .bind(format!("{month}-15T00:00:00Z"))
            .bind(vec![0u8; 32])
            .execute(&admin)
            .await
            .unwrap();
        }
    }
    sqlx::query("INSERT INTO audit_export_cursors (tenant_id, exported_to) VALUES ('acme', 2), ('globex', 1)")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO legal_holds (tenant_id, on_hold) VALUES ('globex', true)").execute(&admin).await.unwrap();

    let pass = governance::audit::partitions::run_once(&app.state.kernel.db, 84).await.unwrap();
    assert_eq!(pass.dropped, vec!["audit_entries_201702".to_owned()]);
    assert_eq!(pass.kept, vec![("audit_entries_201701".to_owned(), "tenant globex is under legal hold".to_owned())]);
    let present = |name: &'static str| {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(name)
                .fetch_one(&admin)
                .await
                .unwrap()
        }
    };
    assert!(!present("audit_entries_201702").await && present("audit_entries_201701").await);

    // The hold is lifted, but acme has an entry there not exported yet: still kept. Exported: dropped.
    sqlx::query("UPDATE legal_holds SET on_hold = false WHERE tenant_id = 'globex'").execute(&admin).await.unwrap();
    sqlx::query("UPDATE audit_export_cursors SET exported_to = 0 WHERE tenant_id = 'acme'")
        .execute(&admin)
        .await
        .unwrap();
    let pass = governance::audit::partitions::run_once(&app.state.kernel.db, 84).await.unwrap();
    assert_eq!(
        pass.kept,
        vec![("audit_entries_201701".to_owned(), "tenant acme has entries here not exported yet".to_owned())]
    );
    sqlx::query("UPDATE audit_export_cursors SET exported_to = 2 WHERE tenant_id = 'acme'")
        .execute(&admin)
        .await
        .unwrap();
    let pass = governance::audit::partitions::run_once(&app.state.kernel.db, 84).await.unwrap();
    assert_eq!((pass.dropped, pass.kept), (vec!["audit_entries_201701".to_owned()], vec![]));
    assert!(!present("audit_entries_201701").await);
    // This month's and the months ahead are untouched.
    let parts: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_entries'::regclass")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(parts, i64::from(governance::audit::partitions::MONTHS_AHEAD) + 1);
    app.cleanup().await;
}

/// Finding (Low): `verifyAudit` walked the whole log in one call. A call walks at most
/// AUDIT_VERIFY_MAX_ENTRIES; a longer range is verified call by call, each saying whether it was complete.
#[tokio::test]
async fn verify_audit_walks_a_bounded_range_per_call() {
    let app =
        crate::helpers::spawn_app_with(governance::Config { audit_verify_max_entries: 10, ..crate::helpers::config() })
            .await;
    let tenant = TenantId::parse("acme").unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    governance::audit::append(&mut tx, &tenant, (0..25).map(|n| envelope("acme", n)).collect()).await.unwrap();
    tx.commit().await.unwrap();
    let token = app.member("acme");
    let q = "query($from: Int) { verifyAudit(fromSequence: $from) { fromSequence toSequence verified ok complete } }";
    let mut from = 1;
    let mut calls = Vec::new();
    loop {
        let v = app.ok(&token, q, json!({ "from": from })).await["verifyAudit"].clone();
        calls.push((
            v["toSequence"].as_i64().unwrap(),
            v["verified"].as_i64().unwrap(),
            v["complete"].as_bool().unwrap(),
        ));
        assert_eq!(v["ok"], true);
        if v["complete"] == true {
            break;
        }
        from = v["toSequence"].as_i64().unwrap() + 1;
    }
    assert_eq!(calls, vec![(10, 10, false), (20, 10, false), (25, 5, true)]);
    app.cleanup().await;
}
