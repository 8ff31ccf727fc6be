//! An audit entry's inclusion in the tenant's log, checked on the client.
//!
//! Governance keeps each tenant's audit log as an RFC 6962 Merkle tree and signs its checkpoints as
//! [C2SP signed notes](https://c2sp.org/signed-note) with an Ed25519 key. The client trusts nothing the
//! API says about itself: it checks the checkpoint's signature with the verifier key **it was given out
//! of band** (the deployment's `<name>+<key id>+<base64>` key, pinned in the partner's configuration — the
//! API's own `verifierKey` field is only for comparing), that the checkpoint is of its tenant's log, that
//! the leaf is the hash of the entry it holds, and that the audit path leads from that leaf to the signed
//! root.
//!
//! ```no_run
//! # async fn demo(client: cp_sdk::Client, entry: cp_sdk::ops::governance::AuditEntry) -> Result<(), cp_sdk::Error> {
//! // The deployment's audit verifier key, as its operators publish it.
//! let pinned = "cp.example/audit+1a2b3c4d+AcAFe…";
//! let checkpoint = client.prove_audit_entry(&entry, pinned).await?;
//! println!("entry {} is in {} of size {}", entry.sequence, checkpoint.origin, checkpoint.tree_size);
//! # Ok(()) }
//! ```

use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{check_record, record_hash, Checkpoint, Hash};

use crate::ops::governance::{AuditCheckpoint, AuditEntry, AuditInclusionProof};
use crate::{Client, Error};

/// A checkpoint whose signature held: the tree of `tree_size` entries with root `root_hash` is the log
/// `origin` as the key's holder signed it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub tree_size: u64,
    /// Hex, as the API writes root hashes.
    pub root_hash: String,
}

/// Checks `checkpoint`'s signed note with `verifier_key` and, when given, that it is the log of
/// `tenant` (its origin ends with `/<tenant>`). The fields beside the note must agree with it.
pub fn verify_checkpoint(
    checkpoint: &AuditCheckpoint,
    verifier_key: &str,
    tenant: Option<&str>,
) -> Result<VerifiedCheckpoint, Error> {
    let fail = |why: String| Error::Verification(why);
    let verifier = StandardVerifier::new(verifier_key.trim()).map_err(|e| fail(format!("the verifier key: {e}")))?;
    let note = Note::from_bytes(checkpoint.note.as_bytes()).map_err(|e| fail(format!("not a signed note: {e}")))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| fail(format!("the checkpoint's signature does not verify with the pinned key: {e}")))?;
    let signed = Checkpoint::from_bytes(note.text()).map_err(|e| fail(format!("not a checkpoint: {e}")))?;
    let verified = VerifiedCheckpoint {
        origin: signed.origin().to_owned(),
        tree_size: signed.size(),
        root_hash: hex::encode(signed.hash().0),
    };
    if let Some(tenant) = tenant {
        if verified.origin.rsplit_once('/').map(|(_, t)| t) != Some(tenant) {
            return Err(fail(format!("the checkpoint is of log `{}`, not tenant `{tenant}`'s", verified.origin)));
        }
    }
    let agrees = i64::try_from(verified.tree_size) == Ok(i64::from(checkpoint.tree_size))
        && verified.root_hash == checkpoint.root_hash.to_ascii_lowercase()
        && verified.origin == checkpoint.origin;
    if !agrees {
        return Err(fail("the checkpoint's fields disagree with the note it signed".into()));
    }
    Ok(verified)
}

/// Checks that `entry` (its canonical form, as hashed) is entry `entry.sequence` of the tree
/// `checkpoint` signed, by `proof`'s audit path.
pub fn verify_inclusion(
    entry: &AuditEntry,
    proof: &AuditInclusionProof,
    checkpoint: &VerifiedCheckpoint,
) -> Result<(), Error> {
    let fail = |why: String| Error::Verification(why);
    let leaf = record_hash(entry.canonical.as_bytes());
    if hex::encode(leaf.0) != proof.leaf_hash.to_ascii_lowercase() {
        return Err(fail(format!("the proof is of another leaf than entry {}", entry.sequence)));
    }
    if proof.sequence != entry.sequence || u64::try_from(proof.tree_size).ok() != Some(checkpoint.tree_size) {
        return Err(fail(format!(
            "the proof is of entry {} in a tree of {}, not entry {} in the checkpoint's {}",
            proof.sequence, proof.tree_size, entry.sequence, checkpoint.tree_size
        )));
    }
    // The leaf covers the canonical entry only: the fields shown beside it must be the ones it holds.
    let canonical: serde_json::Value = serde_json::from_str(&entry.canonical)
        .map_err(|_| fail(format!("entry {}'s canonical form is not JSON", entry.sequence)))?;
    let holds = canonical["sequence"] == entry.sequence
        && canonical["eventId"] == entry.event_id.as_str()
        && canonical["eventType"] == entry.event_type.as_str()
        && canonical["correlationId"] == entry.correlation_id.as_str()
        && canonical["actor"].as_str() == entry.actor.as_deref();
    if !holds {
        return Err(fail(format!("entry {}'s fields are not the ones its canonical form holds", entry.sequence)));
    }
    if let Some((_, tenant)) = checkpoint.origin.rsplit_once('/') {
        if canonical["tenantId"] != tenant {
            return Err(fail(format!("entry {} is not of the checkpoint's tenant `{tenant}`", entry.sequence)));
        }
    }
    let index = entry
        .sequence
        .checked_sub(1)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| fail("an entry's sequence starts at 1".into()))?;
    let path = proof.proof.iter().map(|h| hash(h)).collect::<Result<Vec<_>, _>>()?;
    check_record(&path, checkpoint.tree_size, hash(&checkpoint.root_hash)?, index, leaf)
        .map_err(|e| fail(format!("entry {} is not in the signed tree: {e}", entry.sequence)))
}

fn hash(hex_hash: &str) -> Result<Hash, Error> {
    let bytes = hex::decode(hex_hash).map_err(|_| Error::Verification(format!("`{hex_hash}` is not a hex hash")))?;
    bytes.try_into().map(Hash).map_err(|_| Error::Verification(format!("`{hex_hash}` is not a 32-byte hash")))
}

impl Client {
    /// Proves `entry` is in the tenant's signed audit log: fetches the latest checkpoint, checks its
    /// signature with the pinned `verifier_key` and that it is the caller's tenant's log, then fetches the
    /// entry's inclusion proof in that very tree and checks it. The checkpoint, when all holds.
    pub async fn prove_audit_entry(&self, entry: &AuditEntry, verifier_key: &str) -> Result<VerifiedCheckpoint, Error> {
        let tenant = self.current_tenant().await?;
        let checkpoint = self.audit_checkpoint(None).await?;
        let verified = verify_checkpoint(&checkpoint, verifier_key, Some(tenant.id.inner()))?;
        let proof = self.audit_inclusion_proof(entry.sequence, Some(checkpoint.tree_size)).await?;
        verify_inclusion(entry, &proof, &verified)?;
        Ok(verified)
    }
}
