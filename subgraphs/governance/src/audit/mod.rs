//! The audit log: one entry per event of every domain (governance's own included), appended by the
//! consumer in `consumer.rs`, hash-chained per tenant.
//!
//! An entry's **canonical bytes** are the RFC 8785 (JCS) serialization of this object — keys sorted by JCS,
//! absent values as `null`, `occurredAt` as the envelope carries it (RFC 3339, UTC, milliseconds):
//!
//! ```json
//! { "actor": null, "causationId": "…", "correlationId": "…", "eventId": "evt-…",
//!   "eventType": "ProjectCreated", "moduleId": null, "occurredAt": "2026-12-03T15:00:00.000Z",
//!   "payload": { … }, "projectId": "…", "sequence": 1, "tenantId": "acme", "traceId": "…" }
//! ```
//!
//! and its hash is `sha256(prev_hash ‖ canonical bytes)`, the first entry's `prev_hash` being 32 zero bytes.
//! The sequence is inside the hashed bytes, so an entry cannot be moved; `verify` recomputes the chain and
//! names the first broken link. `actor` is who acted (the `cs-actor` header beside the envelope: the token
//! subject whose request caused the event), `null` for what no principal did (expiries, retention).

pub mod checkpoint;
pub mod consumer;
pub mod export;
pub mod partitions;
pub mod schema;
pub mod store;
pub mod tree;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use kernel::envelope::Envelope;
use kernel::{Result, TenantId};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The hash before a tenant's first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// `sha256(prev ‖ entry)`.
pub fn chain(prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(entry);
    h.finalize().into()
}

/// An entry as it is appended: the envelope's fields, its sequence, its canonical bytes and hash.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub seq: i64,
    pub envelope: Envelope,
    pub entry: Vec<u8>,
    pub hash: [u8; 32],
}

/// The canonical bytes of `envelope` as entry `seq` of its tenant's log (see the module documentation).
pub fn canonical(envelope: &Envelope, seq: i64) -> Result<Vec<u8>> {
    let occurred_at = envelope.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let value = json!({
        "actor": envelope.actor,
        "causationId": envelope.causation_id,
        "correlationId": envelope.correlation_id,
        "eventId": envelope.event_id,
        "eventType": envelope.event_type,
        "moduleId": envelope.module_id,
        "occurredAt": occurred_at,
        "payload": envelope.payload,
        "projectId": envelope.project_id,
        "sequence": seq,
        "tenantId": envelope.tenant_id.as_str(),
        "traceId": envelope.trace_id,
    });
    Ok(serde_jcs::to_vec(&value).map_err(anyhow::Error::from)?)
}

/// Chains `envelopes` (all of one tenant, in order) after a head of `size` entries ending in `head`.
pub fn chain_after(size: i64, head: [u8; 32], envelopes: Vec<Envelope>) -> Result<Vec<NewEntry>> {
    let mut prev = head;
    envelopes
        .into_iter()
        .enumerate()
        .map(|(i, envelope)| {
            let seq = size + 1 + i as i64;
            let entry = canonical(&envelope, seq)?;
            let hash = chain(&prev, &entry);
            prev = hash;
            Ok(NewEntry { seq, envelope, entry, hash })
        })
        .collect()
}

/// Appends `envelopes` (in order, all of `tenant`) to `tenant`'s log in the caller's transaction, after
/// locking the tenant's head: one tenant's appends are serialized, other tenants' proceed in parallel. The
/// chain and the tree grow together.
pub async fn append(tx: &mut kernel::db::Tx, tenant: &TenantId, envelopes: Vec<Envelope>) -> Result<Vec<NewEntry>> {
    if let Some(other) = envelopes.iter().find(|e| &e.tenant_id != tenant) {
        return Err(kernel::Error::internal(anyhow::anyhow!(
            "an event of tenant {} cannot join tenant {tenant}'s audit log",
            other.tenant_id
        )));
    }
    append_many(tx, envelopes).await
}

/// Appends `envelopes` (in order; any tenants) each to its tenant's log, in the caller's transaction,
/// which must admit every one of those tenants' rows (a tenant's own scope for one tenant; the audit
/// consumer's scope for many). The heads are locked in tenant order, then the entries, the tree hashes
/// and the heads of all the tenants are written in one statement each.
pub async fn append_many(tx: &mut kernel::db::Tx, envelopes: Vec<Envelope>) -> Result<Vec<NewEntry>> {
    let mut groups: Vec<(TenantId, Vec<Envelope>)> = Vec::new();
    for e in envelopes {
        match groups.iter_mut().find(|(t, _)| *t == e.tenant_id) {
            Some((_, members)) => members.push(e),
            None => groups.push((e.tenant_id.clone(), vec![e])),
        }
    }
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<TenantId> = groups.iter().map(|(t, _)| t.clone()).collect();
    let mut heads: std::collections::HashMap<String, store::Head> =
        store::lock_heads(tx, &tenants).await?.into_iter().map(|(t, h)| (t.as_str().to_owned(), h)).collect();
    let (mut all, mut tree_rows, mut new_heads) = (Vec::new(), Vec::new(), Vec::new());
    for (tenant, envelopes) in groups {
        let head = heads
            .remove(tenant.as_str())
            .ok_or_else(|| kernel::Error::internal(anyhow::anyhow!("tenant {tenant}'s audit head was not locked")))?;
        let entries = chain_after(head.size, head.hash, envelopes)?;
        // A head from before the tree existed first gets the tree of the entries it has.
        let behind = if (head.frontier.size as i64) < head.size {
            store::entries(tx, &tenant, head.frontier.size as i64 + 1, head.size).await?
        } else {
            Vec::new()
        };
        if behind.len() as i64 != head.size - head.frontier.size as i64 {
            return Err(kernel::Error::internal(anyhow::anyhow!(
                "tenant {tenant}'s audit log lacks entries {}..={} to build its tree from",
                head.frontier.size + 1,
                head.size
            )));
        }
        let grown = tree::grow(
            &head.frontier,
            behind.iter().map(Vec::as_slice).chain(entries.iter().map(|e| e.entry.as_slice())),
        );
        let last = entries.last().expect("a group is never empty");
        new_heads.push(store::NewHead {
            tenant: tenant.clone(),
            size: last.seq,
            hash: last.hash,
            frontier: grown.frontier,
            root: grown.root,
        });
        tree_rows.extend(grown.stored.into_iter().map(|(i, h)| (tenant.clone(), i, h)));
        all.extend(entries);
    }
    store::insert(tx, &all).await?;
    store::insert_tree(tx, &tree_rows).await?;
    store::set_heads(tx, &new_heads).await?;
    Ok(all)
}

/// A stored entry, as the API reads it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "AuditEntry")]
pub struct Entry {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: Option<String>,
    pub trace_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub project_id: Option<String>,
    pub module_id: Option<String>,
    /// The canonical entry (RFC 8785 JSON) the hash covers.
    pub canonical: String,
    /// sha256(previous hash ‖ canonical entry), hex.
    pub hash: String,
}

/// The first link of a chain that does not hold.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct AuditBrokenLink {
    /// The entry whose stored hash (or sequence) is not what the chain gives.
    pub sequence: i64,
    /// The hash the chain gives for it (hex), or the sequence expected there.
    pub expected: String,
    /// What is stored (hex), or the sequence found.
    pub found: String,
    pub reason: String,
}

/// What walking a range of the chain found.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditVerification {
    pub from_sequence: i64,
    /// The last sequence checked: the broken one, or the range's end (`fromSequence - 1` for an empty range).
    pub to_sequence: i64,
    /// Entries whose link held, up to the first broken one.
    pub verified: i64,
    /// Whether every link in the range held.
    pub ok: bool,
    pub first_broken: Option<AuditBrokenLink>,
    /// Whether the range asked for was walked to its end: `false` when it was longer than one call walks
    /// (`AUDIT_VERIFY_MAX_ENTRIES`); continue from `toSequence + 1`.
    pub complete: bool,
}

/// A stored entry's chain fields, in sequence order, for [`verify`].
pub struct Link {
    pub seq: i64,
    pub entry: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Walks `links` (entries `from`… in order) from `prev` (the hash of entry `from - 1`, or [`GENESIS`]) and
/// names the first broken link: a missing sequence, or a stored hash that is not `sha256(prev ‖ entry)`.
pub fn verify<L: std::borrow::Borrow<Link>>(
    from: i64,
    prev: [u8; 32],
    links: impl IntoIterator<Item = L>,
) -> AuditVerification {
    let mut prev = prev;
    let mut expected_seq = from;
    let mut verified = 0;
    for link in links {
        let link = link.borrow();
        if link.seq != expected_seq {
            return AuditVerification {
                from_sequence: from,
                to_sequence: expected_seq,
                verified,
                ok: false,
                complete: true,
                first_broken: Some(AuditBrokenLink {
                    sequence: expected_seq,
                    expected: expected_seq.to_string(),
                    found: link.seq.to_string(),
                    reason: "an entry is missing from the sequence".into(),
                }),
            };
        }
        let computed = chain(&prev, &link.entry);
        if link.hash.as_slice() != computed {
            return AuditVerification {
                from_sequence: from,
                to_sequence: link.seq,
                verified,
                ok: false,
                complete: true,
                first_broken: Some(AuditBrokenLink {
                    sequence: link.seq,
                    expected: hex::encode(computed),
                    found: hex::encode(&link.hash),
                    reason: "the stored hash is not sha256(previous hash ‖ entry): the entry or a hash was altered"
                        .into(),
                }),
            };
        }
        prev = computed;
        expected_seq += 1;
        verified += 1;
    }
    AuditVerification {
        from_sequence: from,
        to_sequence: expected_seq - 1,
        verified,
        ok: true,
        first_broken: None,
        complete: true,
    }
}

#[cfg(test)]
mod tests {
    use kernel::envelope::EventMeta;
    use serde_json::Value;

    use super::*;

    fn envelope(tenant: &str, n: u32) -> Envelope {
        #[derive(serde::Serialize)]
        struct Thing {
            n: u32,
            b: &'static str,
            a: &'static str,
        }
        impl kernel::envelope::Event for Thing {
            const DOMAIN: &'static str = "test";
            const TYPE: &'static str = "ThingHappened";
        }
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
        Envelope::new(&TenantId::parse(tenant).unwrap(), &meta, &Thing { n, b: "b", a: "a" })
    }

    #[test]
    fn the_canonical_entry_is_rfc_8785_whatever_the_key_order() {
        let e = envelope("acme", 1);
        let bytes = canonical(&e, 7).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"actor\":null,\"causationId\":null,\"correlationId\":\"c\",\"eventId\":"),
            "{text}"
        );
        assert!(
            text.contains("\"payload\":{\"a\":\"a\",\"b\":\"b\",\"n\":1}"),
            "keys sorted inside the payload: {text}"
        );
        assert!(text.contains("\"sequence\":7"), "{text}");
        let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_jcs::to_vec(&reparsed).unwrap(), bytes, "canonical bytes are a fixed point");
    }

    #[test]
    fn a_chain_verifies_and_an_altered_or_missing_entry_is_located() {
        let envs: Vec<_> = (0..5).map(|i| envelope("acme", i)).collect();
        let entries = chain_after(0, GENESIS, envs).unwrap();
        let links = |entries: &[NewEntry]| -> Vec<Link> {
            entries.iter().map(|e| Link { seq: e.seq, entry: e.entry.clone(), hash: e.hash.to_vec() }).collect()
        };
        let v = verify(1, GENESIS, links(&entries));
        assert!(v.ok && v.verified == 5 && v.to_sequence == 5 && v.first_broken.is_none());
        // From the middle, given the previous entry's hash.
        assert!(verify(3, entries[1].hash, links(&entries[2..])).ok);

        let mut altered = links(&entries);
        altered[2].entry = canonical(&envelope("acme", 99), 3).unwrap();
        let v = verify(1, GENESIS, altered);
        let broken = v.first_broken.unwrap();
        assert_eq!((v.ok, v.verified, broken.sequence), (false, 2, 3));
        assert_eq!(broken.found, hex::encode(entries[2].hash));

        let mut gap = links(&entries);
        gap.remove(3);
        let broken = verify(1, GENESIS, gap).first_broken.unwrap();
        assert_eq!((broken.sequence, broken.found.as_str()), (4, "5"));
    }
}
