//! Exports of a tenant's audit log to blob storage (`kernel::blob`: a local folder by default, Azure Blob by
//! configuration), one object per range of entries, each with the signed checkpoint that covers it, so
//! the object can be checked offline ([`verify`], the `audit-verify` binary) against the verifier key alone.
//!
//! An object is JSON Lines at `audit/<tenant>/<from>-<to>.jsonl` (sequences zero-padded to 12 digits):
//!
//! ```text
//! {"format":"control-plane.audit-export/1","tenantId":"acme","fromSequence":1,"toSequence":10000,
//!  "previousHash":"<hex: chain hash of entry from-1>","frontier":["<hex>",…],"checkpoint":"<signed note>"}
//! {"sequence":1,"hash":"<hex>","entry":"<the canonical entry, as a JSON string>"}
//! …
//! ```
//!
//! `checkpoint` signs the tree of `toSequence` entries; `frontier` is the tree of `fromSequence - 1`
//! entries (the roots of its complete subtrees). Growing that frontier by the object's entries must give
//! the checkpoint's root — which no altered, added or missing entry can (it would take a SHA-256
//! collision) — and the entries' hashes must chain from `previousHash`.
//!
//! **Resumable without gaps or duplicates.** A tenant's export cursor (`audit_export_cursors`) names the
//! last exported sequence; an export locks it, renders the next range, writes the object and records it in
//! the same transaction as it moves the cursor. A crash before the commit leaves the cursor where it was:
//! the next export renders the same range into the same object name, byte for byte (Ed25519 signatures
//! are deterministic), over whatever a crashed upload left. Ranges are contiguous by construction.

use std::sync::Arc;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use kernel::db::Tx;
use kernel::{Error, Result, TenantId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tlog_tiles::HashReader;

use super::checkpoint::{self, CheckpointSigner};
use super::tree::{self, Frontier, Hash};
use super::{chain, store, GENESIS};

pub const FORMAT: &str = "control-plane.audit-export/1";

/// Where exports go and how big a range is.
#[derive(Clone)]
pub struct Exporter {
    pub store: Arc<dyn ObjectStore>,
    /// Entries per object (the last range of a log may be shorter when exported on demand).
    pub range: i64,
    /// For the API's `where` of each export (`file:///…/` or `azure://<container>/`).
    pub location: String,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").field("range", &self.range).field("location", &self.location).finish()
    }
}

impl Exporter {
    /// The store the settings name (`kernel::blob`): Azure Blob when a container is given, else the folder.
    pub async fn from_config(config: &crate::Config, secrets: &kernel::secrets::Secrets) -> anyhow::Result<Self> {
        anyhow::ensure!(config.audit_export_range >= 1, "AUDIT_EXPORT_RANGE must be at least 1");
        let settings = kernel::blob::BlobSettings {
            prefix: "AUDIT_EXPORT".into(),
            dir: config.audit_export_dir.clone(),
            azure_container: config.audit_export_azure_container.clone(),
            azure_account: config.audit_export_azure_account.clone(),
            azure_key: config.audit_export_azure_key.clone(),
            azure_endpoint: config.audit_export_azure_endpoint.clone(),
        };
        let blob = kernel::blob::Blob::open(&settings, secrets).await?;
        Ok(Self { store: blob.store, range: config.audit_export_range, location: blob.location })
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: String,
    pub tenant_id: String,
    pub from_sequence: i64,
    pub to_sequence: i64,
    pub previous_hash: String,
    pub frontier: Vec<String>,
    pub checkpoint: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct Line {
    sequence: i64,
    hash: String,
    entry: String,
}

/// A recorded export.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "AuditExport")]
pub struct Export {
    pub from_sequence: i64,
    pub to_sequence: i64,
    /// The object's name in the export store.
    pub object_key: String,
    /// Where the store is.
    pub location: String,
    pub bytes: i64,
    /// sha256 of the object, hex.
    pub sha256: String,
    /// The signed checkpoint of the tree of `toSequence` entries the object carries.
    pub checkpoint: String,
    pub exported_at: DateTime<Utc>,
}

/// A rendered range: its object name and bytes.
pub struct Rendered {
    pub key: String,
    pub bytes: Vec<u8>,
    pub checkpoint: String,
}

pub fn object_key(tenant: &TenantId, from: i64, to: i64) -> String {
    format!("audit/{tenant}/{from:012}-{to:012}.jsonl")
}

/// Renders entries `from..=to` of `tenant`'s log (all stored) as an export object.
pub async fn render(tx: &mut Tx, signer: &CheckpointSigner, tenant: &TenantId, from: i64, to: i64) -> Result<Rendered> {
    let previous: [u8; 32] = if from == 1 {
        GENESIS
    } else {
        store::hash_of(tx, tenant, from - 1)
            .await?
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| Error::internal(anyhow::anyhow!("{tenant}'s audit entry {} is missing", from - 1)))?
    };
    let before = (from - 1) as u64;
    let frontier =
        store::over_tree(tx, tenant, |r| r.read_hashes(&tlog_tiles::sub_tree_index(0, before, Vec::new()))).await?;
    let root = store::over_tree(tx, tenant, |r| tree::tree_hash(to as u64, r)).await?;
    let links = store::links(tx, tenant, from, to).await?;
    if links.len() as i64 != to - from + 1 {
        return Err(Error::internal(anyhow::anyhow!("{tenant}'s audit entries {from}..={to} are not all stored")));
    }
    let note = signer.sign(tenant.as_str(), to as u64, root)?;
    let header = Header {
        format: FORMAT.into(),
        tenant_id: tenant.to_string(),
        from_sequence: from,
        to_sequence: to,
        previous_hash: hex::encode(previous),
        frontier: frontier.iter().map(|h| hex::encode(h.0)).collect(),
        checkpoint: note.clone(),
    };
    let mut bytes = serde_json::to_vec(&header).map_err(anyhow::Error::from)?;
    bytes.push(b'\n');
    for link in links {
        let entry = String::from_utf8(link.entry)
            .map_err(|_| Error::internal(anyhow::anyhow!("an audit entry is not UTF-8")))?;
        let line = Line { sequence: link.seq, hash: hex::encode(&link.hash), entry };
        serde_json::to_writer(&mut bytes, &line).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
    }
    Ok(Rendered { key: object_key(tenant, from, to), bytes, checkpoint: note })
}

/// Exports `tenant`'s next range: `range` entries after the last exported, or fewer when `partial` (an
/// on-demand export of everything not yet exported). `None` when there is nothing to export, or another
/// replica is exporting this tenant right now.
pub async fn export_next(
    db: &kernel::db::Db,
    signer: &CheckpointSigner,
    exporter: &Exporter,
    tenant: &TenantId,
    partial: bool,
) -> Result<Option<Export>> {
    let mut tx = db.tenant_tx(tenant).await?;
    let Some(exported) = store::lock_export_cursor(&mut tx, tenant).await? else { return Ok(None) };
    let (size, _) = store::tree_head(&mut tx, tenant).await?;
    let from = exported + 1;
    let to = (exported + exporter.range).min(size as i64);
    if to < from || (!partial && to - from + 1 < exporter.range) {
        // Released now: a dropped transaction rolls back only when its connection is next used, and the
        // cursor would stay locked (and skipped by the next export) until then.
        tx.rollback().await?;
        return Ok(None);
    }
    let rendered = render(&mut tx, signer, tenant, from, to).await?;
    let sha256 = hex::encode(Sha256::digest(&rendered.bytes));
    let bytes = rendered.bytes.len() as i64;
    exporter
        .store
        .put(&Path::from(rendered.key.as_str()), PutPayload::from(rendered.bytes))
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("writing {}: {e}", rendered.key)))?;
    let export = Export {
        from_sequence: from,
        to_sequence: to,
        object_key: rendered.key,
        location: exporter.location.clone(),
        bytes,
        sha256,
        checkpoint: rendered.checkpoint,
        exported_at: Utc::now(),
    };
    store::record_export(&mut tx, tenant, &export).await?;
    tx.commit().await?;
    Ok(Some(export))
}

/// One pass of the export worker: every full range of every tenant. How many objects it wrote.
pub async fn pass(db: &kernel::db::Db, signer: &CheckpointSigner, exporter: &Exporter) -> Result<usize> {
    let due = {
        let mut tx = db.shared().begin().await?;
        let due = store::exports_due(&mut tx, exporter.range).await?;
        tx.commit().await?;
        due
    };
    let mut written = 0;
    for tenant in due {
        while export_next(db, signer, exporter, &tenant, false).await?.is_some() {
            written += 1;
        }
    }
    Ok(written)
}

/// The export worker's pass (every `AUDIT_EXPORT_INTERVAL_SECS`); nothing without a checkpoint signer and
/// an export destination.
pub async fn worker_pass(state: Arc<crate::State>) -> kernel::Result<()> {
    let (Some(signer), Some(exporter)) = (state.checkpoints.clone(), state.exports.clone()) else { return Ok(()) };
    let n = pass(&state.kernel.db, &signer, &exporter).await?;
    if n > 0 {
        tracing::info!(objects = n, location = %exporter.location, "audit ranges exported");
    }
    Ok(())
}

/// What [`verify`] found in a sound export.
#[derive(Debug, PartialEq)]
pub struct Verified {
    pub tenant_id: String,
    pub origin: String,
    pub from_sequence: i64,
    pub to_sequence: i64,
}

/// Checks an export object offline against the verifier key: the checkpoint's signature and origin, every
/// entry's sequence, tenant and chain hash, and that the entries grow the frontier to the signed root.
/// Names the first problem (with its line) otherwise.
pub fn verify(object: &[u8], verifier_key: &str) -> std::result::Result<Verified, String> {
    let text = std::str::from_utf8(object).map_err(|_| "the object is not UTF-8".to_owned())?;
    let mut lines = text.lines();
    let header: Header = serde_json::from_str(lines.next().ok_or("the object is empty")?)
        .map_err(|e| format!("line 1: not an export header: {e}"))?;
    if header.format != FORMAT {
        return Err(format!("line 1: format {:?}, not {FORMAT:?}", header.format));
    }
    let (from, to) = (header.from_sequence, header.to_sequence);
    if from < 1 || to < from {
        return Err(format!("line 1: the range {from}..={to} is empty or invalid"));
    }
    let opened = checkpoint::open(header.checkpoint.as_bytes(), verifier_key)?;
    if !opened.origin.ends_with(&format!("/{}", header.tenant_id)) {
        return Err(format!("the checkpoint's origin {:?} is not tenant {}'s log", opened.origin, header.tenant_id));
    }
    if opened.size != to as u64 {
        return Err(format!("the checkpoint covers {} entries, the object ends at {to}", opened.size));
    }
    let hash = |s: &str, what: &str| -> std::result::Result<[u8; 32], String> {
        hex::decode(s).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| format!("{what} is not a 32-byte hex hash"))
    };
    let frontier = header
        .frontier
        .iter()
        .map(|h| hash(h, "a frontier hash").map(Hash))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let frontier = Frontier::from_bytes((from - 1) as u64, &frontier.iter().flat_map(|h| h.0).collect::<Vec<_>>())
        .map_err(|_| format!("line 1: the frontier does not describe a tree of {} entries", from - 1))?;
    let mut prev = hash(&header.previous_hash, "previousHash")?;
    let mut entries = Vec::new();
    for (i, raw) in lines.enumerate() {
        let at = i + 2;
        let expected = from + i as i64;
        let line: Line = serde_json::from_str(raw).map_err(|e| format!("line {at}: not an entry line: {e}"))?;
        if line.sequence != expected {
            return Err(format!("line {at}: sequence {}, expected {expected}", line.sequence));
        }
        let entry: serde_json::Value =
            serde_json::from_str(&line.entry).map_err(|e| format!("line {at}: the entry is not JSON: {e}"))?;
        if entry["sequence"] != expected || entry["tenantId"] != header.tenant_id.as_str() {
            return Err(format!("line {at}: the entry names another sequence or tenant"));
        }
        let computed = chain(&prev, line.entry.as_bytes());
        if hash(&line.hash, "an entry hash")? != computed {
            return Err(format!(
                "line {at}: entry {expected}'s hash is not sha256(previous hash ‖ entry): the entry or its hash was altered"
            ));
        }
        prev = computed;
        entries.push(line.entry);
    }
    if entries.len() as i64 != to - from + 1 {
        return Err(format!("the object holds {} entries, its header says {}", entries.len(), to - from + 1));
    }
    let grown = tree::grow(&frontier, entries.iter().map(|e| e.as_bytes()));
    if grown.root != opened.root {
        return Err(format!(
            "the entries do not give the checkpoint's root ({} ≠ {}): an entry was altered, added or removed",
            hex::encode(grown.root.0),
            hex::encode(opened.root.0)
        ));
    }
    Ok(Verified { tenant_id: header.tenant_id, origin: opened.origin, from_sequence: from, to_sequence: to })
}
