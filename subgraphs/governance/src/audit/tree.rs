//! Each tenant's log is also an RFC 6962 / RFC 9162 Merkle tree over its canonical entries (leaf `i` is
//! entry `i + 1`), stored the way Go's `sumdb/tlog` stores one: appending record `n` stores the hashes
//! `tlog_tiles::stored_hashes` gives (its leaf hash and the subtrees it completes, about two per record) at
//! stored indexes `stored_hash_index(0, n)…` in `audit_tree`. Any root and any inclusion or consistency
//! proof is computed from those stored hashes (`tlog_tiles`, a port of `sumdb/tlog` checked against
//! Certificate Transparency logs) — no leaf is re-read.
//!
//! The head keeps the tree's **frontier**: the roots of the complete subtrees that make up the tree
//! (`sub_tree_index(0, size)`, at most log₂ size hashes), so an append needs no read of stored hashes.

use std::collections::HashMap;
use std::sync::Mutex;

use kernel::{Error, Result};
pub use tlog_tiles::tlog::Error as TlogError;
pub use tlog_tiles::{check_record, check_tree, record_hash, Hash, EMPTY_HASH};
pub use tlog_tiles::{prove_record, prove_tree, tree_hash};
use tlog_tiles::{stored_hash_index, stored_hashes_for_record_hash, sub_tree_index, HashReader};

/// The stored hashes a tree of `size` records needs to grow: the roots of its complete subtrees.
#[derive(Clone, Debug, PartialEq)]
pub struct Frontier {
    pub size: u64,
    /// In the order of `sub_tree_index(0, size)`.
    pub hashes: Vec<Hash>,
}

impl Frontier {
    pub fn empty() -> Self {
        Self { size: 0, hashes: Vec::new() }
    }

    /// From the head's columns (the hashes concatenated).
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Self> {
        let want = sub_tree_index(0, size, Vec::new()).len();
        if bytes.len() != want * 32 {
            return Err(Error::internal(anyhow::anyhow!(
                "an audit tree frontier of size {size} has {} bytes, not {}",
                bytes.len(),
                want * 32
            )));
        }
        let hashes = bytes.chunks_exact(32).map(|c| Hash(c.try_into().expect("32 bytes"))).collect();
        Ok(Self { size, hashes })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.iter().flat_map(|h| h.0).collect()
    }

    /// The tree's root hash (RFC 6962 `MTH`; the empty tree's is `sha256("")`).
    pub fn root(&self) -> Hash {
        tree_hash(self.size, &self.reader()).expect("a frontier holds every hash its root needs")
    }

    fn reader(&self) -> MapReader {
        MapReader(sub_tree_index(0, self.size, Vec::new()).into_iter().zip(self.hashes.iter().copied()).collect())
    }
}

/// What appending records to a tree produced.
pub struct Grown {
    /// `(stored index, hash)` to insert into `audit_tree`.
    pub stored: Vec<(u64, Hash)>,
    pub frontier: Frontier,
    pub root: Hash,
}

/// Appends `records` (canonical entries, in order) to the tree `frontier` describes.
pub fn grow<'a>(frontier: &Frontier, records: impl IntoIterator<Item = &'a [u8]>) -> Grown {
    let mut known = frontier.reader();
    let mut stored = Vec::new();
    let mut n = frontier.size;
    for record in records {
        let hashes = stored_hashes_for_record_hash(n, record_hash(record), &known)
            .expect("the frontier and the hashes stored since hold every hash an append reads");
        let first = stored_hash_index(0, n);
        for (i, h) in hashes.into_iter().enumerate() {
            known.0.insert(first + i as u64, h);
            stored.push((first + i as u64, h));
        }
        n += 1;
    }
    let indexes = sub_tree_index(0, n, Vec::new());
    let hashes = indexes.iter().map(|i| known.0[i]).collect();
    let frontier = Frontier { size: n, hashes };
    let root = frontier.root();
    Grown { stored, frontier, root }
}

/// Serves stored hashes from memory.
struct MapReader(HashMap<u64, Hash>);

impl HashReader for MapReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes.iter().map(|i| self.0.get(i).copied().ok_or(TlogError::IndexesNotInTree)).collect()
    }
}

/// What [`with_stored`] hands its computation: a dry run's recorder, then the hashes it asked for.
pub enum Stored {
    Wants(Mutex<Vec<u64>>),
    Loaded(HashMap<u64, Hash>),
}

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        match self {
            Stored::Wants(wants) => {
                wants.lock().expect("not poisoned").extend_from_slice(indexes);
                Err(TlogError::IndexesNotInTree)
            }
            Stored::Loaded(map) => {
                indexes.iter().map(|i| map.get(i).copied().ok_or(TlogError::IndexesNotInTree)).collect()
            }
        }
    }
}

/// Runs `f` (a `tlog` computation) over stored hashes: first dry, to learn the indexes it reads — every
/// `tlog` function reads its hashes in one call whose indexes depend only on the sizes — then over those
/// hashes as `load` returns them, in the order asked. An input `tlog` refuses is the caller's error.
pub async fn with_stored<T, F, L, Fut>(f: F, load: L) -> Result<T>
where
    F: Fn(&Stored) -> Result<T, TlogError>,
    L: FnOnce(Vec<u64>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Hash>>>,
{
    let dry = Stored::Wants(Mutex::new(Vec::new()));
    match f(&dry) {
        Ok(v) => return Ok(v), // it read nothing (an empty proof)
        Err(TlogError::IndexesNotInTree) => {}
        Err(e) => return Err(Error::internal(anyhow::anyhow!("audit tree: {e}"))),
    }
    let Stored::Wants(wants) = dry else { unreachable!() };
    let indexes = wants.into_inner().expect("not poisoned");
    let hashes = load(indexes.clone()).await?;
    if hashes.len() != indexes.len() {
        return Err(Error::internal(anyhow::anyhow!(
            "the audit tree lacks stored hashes ({} of {} found)",
            hashes.len(),
            indexes.len()
        )));
    }
    f(&Stored::Loaded(indexes.into_iter().zip(hashes).collect()))
        .map_err(|e| Error::internal(anyhow::anyhow!("audit tree: {e}")))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// RFC 6962 §2.1 straight from its definition, as an independent check.
    fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
        match leaves.len() {
            0 => Sha256::digest(b"").into(),
            1 => Sha256::digest([&[0u8][..], &leaves[0]].concat()).into(),
            n => {
                let k = n.next_power_of_two() / 2;
                let (l, r) = (mth(&leaves[..k]), mth(&leaves[k..]));
                Sha256::digest([&[1u8][..], &l, &r].concat()).into()
            }
        }
    }

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{{\"sequence\":{}}}", i + 1).into_bytes()).collect()
    }

    #[test]
    fn roots_match_rfc_6962_however_the_appends_are_batched() {
        let all = records(70);
        let mut stored = HashMap::new();
        let mut frontier = Frontier::empty();
        assert_eq!(frontier.root().0, mth(&[]));
        let mut at = 0;
        for batch in [1usize, 2, 5, 1, 8, 16, 3, 34] {
            let grown = grow(&frontier, all[at..at + batch].iter().map(Vec::as_slice));
            stored.extend(grown.stored.iter().copied());
            at += batch;
            assert_eq!(grown.root.0, mth(&all[..at]), "root after {at} records");
            assert_eq!(Frontier::from_bytes(at as u64, &grown.frontier.to_bytes()).unwrap(), grown.frontier);
            frontier = grown.frontier;
        }
        // The known ["a","b","c"] root (ct-merkle, certificate-transparency-go).
        let abc: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let grown = grow(&Frontier::empty(), abc.iter().map(Vec::as_slice));
        assert_eq!(hex::encode(grown.root.0), "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1");

        // Proofs from the stored hashes verify against the roots, and fail for another record.
        let reader = MapReader(stored);
        let root_at = |t: u64| tree_hash(t, &reader).unwrap();
        for (t, n) in [(70u64, 0u64), (70, 69), (64, 33), (13, 12), (1, 0)] {
            let proof = tlog_tiles::prove_record(t, n, &reader).unwrap();
            check_record(&proof, t, root_at(t), n, record_hash(&all[n as usize])).unwrap();
            assert!(check_record(&proof, t, root_at(t), n, record_hash(b"forged")).is_err());
        }
        for (t, n) in [(70u64, 1u64), (70, 64), (70, 70), (33, 17)] {
            let proof = tlog_tiles::prove_tree(t, n, &reader).unwrap();
            check_tree(&proof, t, root_at(t), n, root_at(n)).unwrap();
            let other = Hash(mth(&records(n as usize + 1)[1..]));
            assert!(n == t || check_tree(&proof, t, root_at(t), n, other).is_err());
        }
    }
}
