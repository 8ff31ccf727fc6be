//! Audit exports: ranges written to a folder and to Azure Blob (Azurite), resumed after a crash without a
//! gap or a duplicate, and checked offline by `audit-verify` — which accepts them and rejects altered copies.

use std::path::{Path, PathBuf};

use governance::audit::{self, export};
use kernel::envelope::{Envelope, EventMeta};
use kernel::TenantId;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{json, Value};

use crate::helpers::{config, spawn_app_with, TestApp};

#[derive(serde::Serialize)]
struct ThingHappened {
    n: u32,
}

impl kernel::envelope::Event for ThingHappened {
    const DOMAIN: &'static str = "catalogue";
    const TYPE: &'static str = "ThingHappened";
}

async fn append(app: &TestApp, tenant: &str, from: u32, to: u32) {
    let tenant = TenantId::parse(tenant).unwrap();
    let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
    let events: Vec<Envelope> = (from..to).map(|n| Envelope::new(&tenant, &meta, &ThingHappened { n })).collect();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    audit::append(&mut tx, &tenant, events).await.unwrap();
    tx.commit().await.unwrap();
}

const EXPORTS: &str =
    "{ auditExports { edges { node { fromSequence toSequence objectKey location bytes sha256 checkpoint } } } }";

async fn exports(app: &TestApp, token: &str) -> Vec<Value> {
    let v = app.ok(token, EXPORTS, json!({})).await;
    v["auditExports"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

fn ranges(exports: &[Value]) -> Vec<(i64, i64)> {
    exports.iter().map(|e| (e["fromSequence"].as_i64().unwrap(), e["toSequence"].as_i64().unwrap())).collect()
}

/// Runs the offline verifier on `files`: its exit code and what it printed.
fn audit_verify(key: &str, files: &[&Path]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_audit-verify"))
        .args(["--verifier-key", key])
        .args(files)
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A copy of an export whose entry `seq` says `n: 99`, its hash and every later one recomputed — a rewrite
/// consistent with the chain, which only the signed Merkle root can catch.
fn rewritten(object: &str, seq: i64) -> String {
    let mut lines: Vec<Value> = object.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut prev: [u8; 32] = hex::decode(lines[0]["previousHash"].as_str().unwrap()).unwrap().try_into().unwrap();
    for line in lines.iter_mut().skip(1) {
        if line["sequence"] == seq {
            let mut entry: Value = serde_json::from_str(line["entry"].as_str().unwrap()).unwrap();
            entry["payload"]["n"] = json!(99);
            line["entry"] = json!(String::from_utf8(serde_jcs::to_vec(&entry).unwrap()).unwrap());
        }
        prev = audit::chain(&prev, line["entry"].as_str().unwrap().as_bytes());
        line["hash"] = json!(hex::encode(prev));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn ranges_are_exported_to_a_folder_resumed_after_a_crash_without_gap_or_duplicate_and_verified_offline() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("exports-{}", uuid::Uuid::new_v4().simple()));
    let app = spawn_app_with(governance::Config {
        audit_export_dir: dir.display().to_string(),
        audit_export_range: 10,
        ..config()
    })
    .await;
    let (db, signer) = (&app.state.kernel.db, app.state.checkpoints.clone().unwrap());
    let exporter = app.state.exports.clone().unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    append(&app, "acme", 0, 25).await;

    let first = export::export_next(db, &signer, &exporter, &tenant, false).await.unwrap().unwrap();
    assert_eq!((first.from_sequence, first.to_sequence), (1, 10));
    // The next range is uploaded, then the process dies before recording it — and a second attempt dies
    // mid-upload, leaving half an object.
    let crashed = {
        let mut tx = db.tenant_tx(&tenant).await.unwrap();
        export::render(&mut tx, &signer, &tenant, 11, 20).await.unwrap()
    };
    let key = object_store::path::Path::from(crashed.key.as_str());
    exporter.store.put(&key, PutPayload::from(crashed.bytes.clone())).await.unwrap();
    exporter.store.put(&key, PutPayload::from(crashed.bytes[..crashed.bytes.len() / 2].to_vec())).await.unwrap();

    // The worker resumes after the last recorded range: 11..=20 again, the same bytes; 21..=25 is not a full
    // range yet.
    assert_eq!(export::pass(db, &signer, &exporter).await.unwrap(), 1);
    let resumed = exporter.store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(resumed.as_ref(), crashed.bytes.as_slice(), "a range renders to the same bytes every time");
    assert_eq!(export::pass(db, &signer, &exporter).await.unwrap(), 0);

    // On demand, the rest.
    let token = app.member("acme");
    let v = app.ok(&token, "mutation { exportAuditLog { fromSequence toSequence } }", json!({})).await;
    assert_eq!(v["exportAuditLog"], json!([{ "fromSequence": 21, "toSequence": 25 }]));
    let v = app.ok(&token, "mutation { exportAuditLog { fromSequence } }", json!({})).await;
    assert_eq!(v["exportAuditLog"], json!([]), "nothing left to export");

    let listed = exports(&app, &token).await;
    assert_eq!(ranges(&listed), vec![(1, 10), (11, 20), (21, 25)], "contiguous: no gap, no duplicate");
    let files: Vec<PathBuf> = listed.iter().map(|e| dir.join(e["objectKey"].as_str().unwrap())).collect();
    let mut on_disk: Vec<_> = std::fs::read_dir(dir.join("audit/acme")).unwrap().map(|e| e.unwrap().path()).collect();
    on_disk.sort();
    assert_eq!(on_disk, files, "exactly one object per recorded range");
    for (e, f) in listed.iter().zip(&files) {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(e["bytes"].as_i64().unwrap() as usize, bytes.len());
        assert_eq!(e["sha256"], hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
        assert!(e["location"].as_str().unwrap().starts_with("file:///"), "{e}");
    }

    // Offline: the verifier accepts every object with the verifier key…
    let vkey = signer.verifier_key().to_owned();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, out) = audit_verify(&vkey, &paths);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches(": OK").count(), 3, "{out}");
    // …and rejects an altered entry, a rewrite with consistent chain hashes, a dropped line, and another key.
    let text = std::fs::read_to_string(&files[1]).unwrap();
    let tampered = dir.join("tampered.jsonl");
    let altered = text.replacen("\\\"n\\\":12", "\\\"n\\\":13", 1);
    assert_ne!(altered, text);
    for (copy, problem) in [
        (altered, "entry 13's hash is not sha256"),
        (rewritten(&text, 13), "do not give the checkpoint's root"),
        (text.lines().enumerate().filter(|(i, _)| *i != 4).map(|(_, l)| format!("{l}\n")).collect(), "sequence"),
    ] {
        std::fs::write(&tampered, copy).unwrap();
        let (code, out) = audit_verify(&vkey, &[tampered.as_path()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("FAILED") && out.contains(problem), "{problem}: {out}");
    }
    let (_, other) = audit::checkpoint::CheckpointSigner::generate("control-plane.test/audit").unwrap();
    let (code, out) = audit_verify(&other, &[files[0].as_path()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature"), "{out}");

    std::fs::remove_dir_all(&dir).unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn ranges_are_exported_to_azure_blob_and_verify() {
    let azurite = test_support::Azurite::start("audit").await;
    let key_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("azurite-account-key");
    std::fs::write(&key_file, test_support::azurite::KEY).unwrap();
    let app = spawn_app_with(governance::Config {
        audit_export_azure_container: Some(azurite.container.clone()),
        audit_export_azure_account: Some(test_support::azurite::ACCOUNT.into()),
        audit_export_azure_key: Some(format!("file:{}", key_file.display())),
        audit_export_azure_endpoint: Some(azurite.endpoint.clone()),
        audit_export_range: 5,
        ..config()
    })
    .await;
    let (db, signer) = (&app.state.kernel.db, app.state.checkpoints.clone().unwrap());
    let exporter = app.state.exports.clone().unwrap();
    append(&app, "acme", 0, 12).await;
    assert_eq!(export::pass(db, &signer, &exporter).await.unwrap(), 2);
    let token = app.member("acme");
    let v = app.ok(&token, "mutation { exportAuditLog { fromSequence toSequence location } }", json!({})).await;
    assert_eq!(v["exportAuditLog"][0]["toSequence"], 12, "{v}");
    assert_eq!(v["exportAuditLog"][0]["location"], format!("{}/audit/", azurite.endpoint));

    let listed = exports(&app, &token).await;
    assert_eq!(ranges(&listed), vec![(1, 5), (6, 10), (11, 12)]);
    for e in &listed {
        let key = object_store::path::Path::from(e["objectKey"].as_str().unwrap());
        let bytes = exporter.store.get(&key).await.unwrap().bytes().await.unwrap();
        let v = export::verify(&bytes, signer.verifier_key()).unwrap();
        assert_eq!(
            (v.from_sequence, v.to_sequence),
            (e["fromSequence"].as_i64().unwrap(), e["toSequence"].as_i64().unwrap())
        );
        assert_eq!(e["sha256"], hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    }
    app.cleanup().await;
}

/// Finding (Low): the app role could move an export cursor anywhere; past unexported entries, retention
/// would then drop them with their partition. It now moves only to the end of the export just recorded.
#[tokio::test]
async fn the_app_role_moves_an_export_cursor_only_as_an_export_records() {
    let app = spawn_app_with(config()).await;
    let tenant = TenantId::parse("acme").unwrap();
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    sqlx::query("INSERT INTO audit_export_cursors (tenant_id) VALUES ('acme')").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    for (to, why) in [(50_i64, "forward past what was never exported"), (0, "in place")] {
        let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
        let moved = sqlx::query("UPDATE audit_export_cursors SET exported_to = $1 WHERE tenant_id = 'acme'")
            .bind(to)
            .execute(&mut *tx)
            .await;
        assert!(moved.is_err(), "the app role moved the cursor {why}");
    }
    // As an export records it, it moves.
    let mut tx = app.state.kernel.db.tenant_tx(&tenant).await.unwrap();
    sqlx::query(
        "INSERT INTO audit_exports (tenant_id, from_seq, to_seq, object_key, location, bytes, sha256, checkpoint)
         VALUES ('acme', 1, 10, 'k', 'l', 1, 's', 'c')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE audit_export_cursors SET exported_to = 10 WHERE tenant_id = 'acme'")
        .execute(&mut *tx)
        .await
        .expect("moved to the end of the recorded export");
    tx.commit().await.unwrap();
    app.cleanup().await;
}
