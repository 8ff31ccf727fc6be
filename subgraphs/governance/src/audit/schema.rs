//! The audit log's share of the query root: the caller's entries in sequence order, verifying a range of
//! its chain, and what a third party checks — signed checkpoints of its Merkle tree, inclusion proofs of
//! entries and consistency proofs between checkpoints.

use crate::state;
use async_graphql::connection::Connection;
use async_graphql::{Context, Object, SimpleObject};
use kernel::pagination::Page;
use kernel::permissions::governance::{READ, WRITE};
use kernel::Authorize;
use kernel::{Error, Result};

use super::tree::{self, Hash};
use super::{store, verify, AuditBrokenLink, AuditVerification, Entry, GENESIS};

/// Entries read per statement while verifying.
const CHUNK: i64 = 10_000;

#[derive(Default)]
pub struct AuditQuery;

#[derive(Default)]
pub struct AuditMutation;

#[Object]
impl AuditMutation {
    /// Exports every entry of the caller's log not exported yet, now: full ranges and then the rest, each an
    /// object with its signed checkpoint (the worker exports full ranges by itself). Returns the new exports.
    async fn export_audit_log(&self, ctx: &Context<'_>) -> Result<Vec<super::export::Export>> {
        let tenant = ctx.authorize(WRITE)?;
        let state = state(ctx);
        let signer = state
            .checkpoints
            .as_ref()
            .ok_or_else(|| Error::unavailable("audit exports carry signed checkpoints: set AUDIT_CHECKPOINT_KEY"))?;
        let exporter = state.exports.as_ref().ok_or_else(|| Error::unavailable("audit exports are not configured"))?;
        let mut done = Vec::new();
        while let Some(e) = super::export::export_next(&state.kernel.db, signer, exporter, &tenant, true).await? {
            done.push(e);
        }
        Ok(done)
    }
}

/// A signed checkpoint of a tenant's audit tree (C2SP tlog-checkpoint in a signed note).
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditCheckpoint {
    /// The log's origin: the checkpoint key's name and the tenant.
    pub origin: String,
    /// Entries the tree covers (entries 1..=treeSize).
    pub tree_size: i64,
    /// The RFC 6962 root hash, hex.
    pub root_hash: String,
    /// The signed note: origin, size and base64 root, a blank line, the Ed25519 signature line.
    pub note: String,
    /// The verifier key (`<name>+<key id>+<base64 public key>`) the note verifies with.
    pub verifier_key: String,
}

/// Proof that an entry is leaf `sequence - 1` of the tree of `treeSize` entries (RFC 6962 audit path).
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditInclusionProof {
    pub sequence: i64,
    pub tree_size: i64,
    /// The leaf hash, sha256(0x00 ‖ canonical entry), hex.
    pub leaf_hash: String,
    /// The root of the tree of `treeSize` entries, hex.
    pub root_hash: String,
    /// The audit path, leaf to root, hex.
    pub proof: Vec<String>,
}

/// Proof that the tree of `fromSize` entries is a prefix of the tree of `toSize` (RFC 6962 consistency).
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditConsistencyProof {
    pub from_size: i64,
    pub to_size: i64,
    pub from_root_hash: String,
    pub to_root_hash: String,
    pub proof: Vec<String>,
}

fn hexes(hashes: Vec<Hash>) -> Vec<String> {
    hashes.into_iter().map(|h| hex::encode(h.0)).collect()
}

/// The tree size to prove against: `requested` (default: the whole tree), which must lie in 1..=size.
fn size_in_range(field: &str, requested: Option<i64>, size: u64) -> Result<u64> {
    let t = requested.unwrap_or(size as i64);
    if t < 1 || t as u64 > size {
        return Err(Error::bad_input(field, format!("{field} is between 1 and the log's size ({size})")));
    }
    Ok(t as u64)
}

/// The root of the tenant's tree at `size` (from the head when it is the whole tree).
async fn root_at(tx: &mut kernel::db::Tx, tenant: &kernel::TenantId, size: u64, head: (u64, Hash)) -> Result<Hash> {
    if size == head.0 {
        return Ok(head.1);
    }
    store::over_tree(tx, tenant, |r| tree::tree_hash(size, r)).await
}

#[Object]
impl AuditQuery {
    /// The caller's audit entries in sequence order (one per event of any domain about the tenant).
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn audit_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Entry>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let after = match page.after.as_deref() {
            None => 0,
            Some(c) => c.parse::<i64>().map_err(|_| Error::bad_input("after", "not a cursor of this connection"))?,
        };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &tenant, after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |e| e.sequence.to_string()))
    }

    /// One of the caller's audit entries, by its sequence (`NOT_FOUND` past the end of the log).
    async fn audit_entry(&self, ctx: &Context<'_>, sequence: i64) -> Result<Entry> {
        let tenant = ctx.authorize(READ)?;
        if sequence < 1 {
            return Err(Error::bad_input("sequence", "sequences start at 1"));
        }
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let found = store::page(&mut tx, &tenant, sequence - 1, 1).await?.pop();
        tx.commit().await?;
        found.filter(|e| e.sequence == sequence).ok_or_else(|| Error::not_found(format!("no audit entry {sequence}")))
    }

    /// Walks the caller's hash chain over sequences [fromSequence, toSequence] (default: to the end of the
    /// log), recomputing each `sha256(previous hash ‖ entry)`, and names the first broken link. One call
    /// walks at most `AUDIT_VERIFY_MAX_ENTRIES` (100,000) entries (`complete: false` past that: continue from `toSequence + 1`).
    async fn verify_audit(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] from_sequence: i64,
        to_sequence: Option<i64>,
    ) -> Result<AuditVerification> {
        let tenant = ctx.authorize(READ)?;
        if from_sequence < 1 {
            return Err(Error::bad_input("fromSequence", "fromSequence is at least 1"));
        }
        let db = &state(ctx).kernel.db;
        let mut tx = db.tenant_tx(&tenant).await?;
        let size = store::size(&mut tx, &tenant).await?;
        let asked = to_sequence.unwrap_or(size).min(size);
        // At most AUDIT_VERIFY_MAX_ENTRIES per call: a longer range is verified in calls, each continuing
        // after the last (`complete` says whether this one reached the end asked for).
        let cap = state(ctx).config.audit_verify_max_entries.max(1);
        let to = asked.min(from_sequence.saturating_add(cap - 1));
        if to_sequence.is_some_and(|t| t < from_sequence) {
            return Err(Error::bad_input("toSequence", "toSequence is at least fromSequence"));
        }
        let prev = if from_sequence == 1 {
            GENESIS
        } else {
            match store::hash_of(&mut tx, &tenant, from_sequence - 1).await? {
                Some(h) => {
                    h.try_into().map_err(|_| Error::internal(anyhow::anyhow!("an audit hash is not 32 bytes")))?
                }
                None => {
                    return Err(Error::bad_input(
                        "fromSequence",
                        format!("there is no entry {} to start after", from_sequence - 1),
                    ))
                }
            }
        };
        // Chunk by chunk, each continuing from the last hash checked.
        let (mut next, mut prev, mut verified) = (from_sequence, prev, 0);
        let mut broken = None;
        while next <= to {
            let last = (next + CHUNK - 1).min(to);
            let links = store::links(&mut tx, &tenant, next, last).await?;
            let found = links.len() as i64;
            let tail = links.last().map(|l| l.hash.clone());
            let chunk = verify(next, prev, links);
            verified += chunk.verified;
            if chunk.first_broken.is_some() {
                broken = chunk.first_broken;
                break;
            }
            if found < last - next + 1 {
                // The entries present hold, but the chunk ends short: the next one is missing.
                broken = Some(AuditBrokenLink {
                    sequence: next + found,
                    expected: (next + found).to_string(),
                    found: "nothing".into(),
                    reason: "an entry is missing from the sequence".into(),
                });
                break;
            }
            prev = tail.and_then(|h| h.try_into().ok()).unwrap_or(prev);
            next = last + 1;
        }
        let result = AuditVerification {
            from_sequence,
            to_sequence: broken.as_ref().map_or(to.max(from_sequence - 1), |b| b.sequence),
            verified,
            ok: broken.is_none(),
            complete: broken.is_some() || to == asked,
            first_broken: broken,
        };
        tx.commit().await?;
        Ok(result)
    }

    /// The caller's audit exports in sequence order: each object written to blob storage, its range and the
    /// checkpoint it carries.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn audit_exports(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::export::Export>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let after = match page.after.as_deref() {
            None => 0,
            Some(c) => c.parse::<i64>().map_err(|_| Error::bad_input("after", "not a cursor of this connection"))?,
        };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::exports(&mut tx, &tenant, after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |e| e.from_sequence.to_string()))
    }

    /// A checkpoint of the caller's audit tree at `treeSize` (default: now), signed with the deployment's
    /// checkpoint key. Keep it: a later consistency proof from it shows nothing was rewritten since.
    async fn audit_checkpoint(&self, ctx: &Context<'_>, tree_size: Option<i64>) -> Result<AuditCheckpoint> {
        let tenant = ctx.authorize(READ)?;
        let state = state(ctx);
        let signer = state.checkpoints.as_ref().ok_or_else(|| {
            Error::unavailable("audit checkpoints are not signed on this deployment: set AUDIT_CHECKPOINT_KEY")
        })?;
        let mut tx = state.kernel.db.tenant_tx(&tenant).await?;
        let head = store::tree_head(&mut tx, &tenant).await?;
        let size = match tree_size {
            None => head.0,
            Some(_) => size_in_range("treeSize", tree_size, head.0)?,
        };
        let root = root_at(&mut tx, &tenant, size, head).await?;
        tx.commit().await?;
        Ok(AuditCheckpoint {
            origin: signer.origin(tenant.as_str()),
            tree_size: size as i64,
            root_hash: hex::encode(root.0),
            note: signer.sign(tenant.as_str(), size, root)?,
            verifier_key: signer.verifier_key().to_owned(),
        })
    }

    /// Proof that entry `sequence` is in the caller's tree of `treeSize` entries (default: now).
    async fn audit_inclusion_proof(
        &self,
        ctx: &Context<'_>,
        sequence: i64,
        tree_size: Option<i64>,
    ) -> Result<AuditInclusionProof> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let head = store::tree_head(&mut tx, &tenant).await?;
        let t = size_in_range("treeSize", tree_size, head.0)?;
        if sequence < 1 || sequence as u64 > t {
            return Err(Error::bad_input("sequence", format!("sequence is between 1 and treeSize ({t})")));
        }
        let n = sequence as u64 - 1;
        let leaf = store::tree_hashes(&mut tx, &tenant, &[tlog_tiles::stored_hash_index(0, n)])
            .await?
            .pop()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("audit leaf {n} of {tenant} is not stored")))?;
        let root = root_at(&mut tx, &tenant, t, head).await?;
        let proof = store::over_tree(&mut tx, &tenant, |r| tree::prove_record(t, n, r)).await?;
        tx.commit().await?;
        Ok(AuditInclusionProof {
            sequence,
            tree_size: t as i64,
            leaf_hash: hex::encode(leaf.0),
            root_hash: hex::encode(root.0),
            proof: hexes(proof),
        })
    }

    /// Proof that the caller's tree of `fromSize` entries is a prefix of its tree of `toSize` (default:
    /// now) — an auditor holding a checkpoint of `fromSize` learns that nothing before it was rewritten.
    async fn audit_consistency_proof(
        &self,
        ctx: &Context<'_>,
        from_size: i64,
        to_size: Option<i64>,
    ) -> Result<AuditConsistencyProof> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let head = store::tree_head(&mut tx, &tenant).await?;
        let t = size_in_range("toSize", to_size, head.0)?;
        let n = size_in_range("fromSize", Some(from_size), t)?;
        let from_root = root_at(&mut tx, &tenant, n, head).await?;
        let to_root = root_at(&mut tx, &tenant, t, head).await?;
        let proof = store::over_tree(&mut tx, &tenant, |r| tree::prove_tree(t, n, r)).await?;
        tx.commit().await?;
        Ok(AuditConsistencyProof {
            from_size: n as i64,
            to_size: t as i64,
            from_root_hash: hex::encode(from_root.0),
            to_root_hash: hex::encode(to_root.0),
            proof: hexes(proof),
        })
    }
}
