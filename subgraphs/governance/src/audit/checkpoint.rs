//! Signed checkpoints of a tenant's audit tree, in the C2SP formats a transparency-log tool reads:
//! the text is a [tlog-checkpoint](https://c2sp.org/tlog-checkpoint) — origin, size and base64 root hash,
//! one per line — and the note around it a [signed-note](https://c2sp.org/signed-note) with an Ed25519
//! signature line:
//!
//! ```text
//! control-plane.example/audit/acme
//! 1742
//! 9SJ1f2N2BGbXv9qEYZz7e1j4T4CDuPgOe6JqyAtTMW4=
//!
//! — control-plane.example/audit AbCdEf…
//! ```
//!
//! The signing key is a signed-note signer key (`PRIVATE+KEY+<name>+<key id>+<base64>`, as
//! `governance audit-keygen` or Go's `note.GenerateKey` writes it) reached by `configRef`
//! (`AUDIT_CHECKPOINT_KEY`); the key's name, plus `/<tenant>`, is each tenant's log origin. Anyone holding
//! the verifier key (`<name>+<key id>+<base64 public key>`, served by the API) checks a checkpoint with
//! [`open`] — or any signed-note implementation.

use base64::Engine;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

/// Signs checkpoints with the deployment's audit key.
pub struct CheckpointSigner {
    name: String,
    signer: StandardSigner,
    verifier_key: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner").field("verifier_key", &self.verifier_key).finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// From a signed-note signer key.
    pub fn new(signer_key: &str) -> anyhow::Result<Self> {
        let signer_key = signer_key.trim();
        let signer = StandardSigner::new(signer_key)
            .map_err(|e| anyhow::anyhow!("the audit checkpoint key is not a signed-note Ed25519 signer key: {e}"))?;
        // PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>: the verifier key is the seed's public half.
        let mut parts = signer_key.splitn(5, '+');
        let name = parts.nth(2).expect("StandardSigner checked the format").to_owned();
        let key = base64::engine::general_purpose::STANDARD
            .decode(parts.nth(1).expect("StandardSigner checked the format"))
            .expect("StandardSigner checked the base64");
        let seed: [u8; 32] = key[1..].try_into().expect("StandardSigner checked the key length");
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier_key = signed_note::new_ed25519_verifier_key(&name, &public);
        Ok(Self { name, signer, verifier_key })
    }

    /// A new key pair named `name` (signer key, verifier key).
    pub fn generate(name: &str) -> anyhow::Result<(String, String)> {
        anyhow::ensure!(
            signed_note::is_key_name_valid(name),
            "a key name is non-empty, without spaces or '+': {name:?}"
        );
        Ok(signed_note::generate_key(&mut rand::rngs::OsRng, name))
    }

    /// The verifier key (`<name>+<key id>+<base64 public key>`) auditors check checkpoints with.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// `tenant`'s log origin: the key's name and the tenant.
    pub fn origin(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.name)
    }

    /// The signed checkpoint (note text and signature) of `tenant`'s tree at `size` with root `root`.
    pub fn sign(&self, tenant: &str, size: u64, root: Hash) -> anyhow::Result<String> {
        let checkpoint =
            Checkpoint::new(&self.origin(tenant), size, root, "").map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
        let mut note = Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| anyhow::anyhow!("checkpoint note: {e}"))?;
        note.add_sigs(&[&self.signer]).map_err(|e| anyhow::anyhow!("signing a checkpoint: {e}"))?;
        String::from_utf8(note.to_bytes()).map_err(|e| anyhow::anyhow!("checkpoint note: {e}"))
    }
}

/// Writes a signer key to a new file at `path` that only its owner can read.
pub fn write_key(path: &std::path::Path, signer_key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    writeln!(file, "{signer_key}")?;
    Ok(())
}

/// A checkpoint whose signature by `verifier_key` held.
#[derive(Debug, PartialEq)]
pub struct Opened {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Checks `note`'s signature by `verifier_key` and parses the checkpoint it signs.
pub fn open(note: &[u8], verifier_key: &str) -> Result<Opened, String> {
    let verifier = StandardVerifier::new(verifier_key.trim()).map_err(|e| format!("verifier key: {e}"))?;
    let note = Note::from_bytes(note).map_err(|e| format!("not a signed note: {e}"))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| format!("the checkpoint's signature does not verify: {e}"))?;
    let checkpoint = Checkpoint::from_bytes(note.text()).map_err(|e| format!("not a checkpoint: {e}"))?;
    Ok(Opened { origin: checkpoint.origin().to_owned(), size: checkpoint.size(), root: *checkpoint.hash() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_opens_with_its_verifier_key_only() {
        let (skey, vkey) = CheckpointSigner::generate("cp.example/audit").unwrap();
        let signer = CheckpointSigner::new(&skey).unwrap();
        assert_eq!(signer.verifier_key(), vkey, "the verifier key is derived from the signer key");
        let root = Hash([7; 32]);
        let note = signer.sign("acme", 42, root).unwrap();
        assert!(note.starts_with("cp.example/audit/acme\n42\nBwcH"), "{note}");
        assert!(note.contains("\n\n\u{2014} cp.example/audit "), "{note}");
        let opened = open(note.as_bytes(), &vkey).unwrap();
        assert_eq!(opened, Opened { origin: "cp.example/audit/acme".into(), size: 42, root });

        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(open(forged.as_bytes(), &vkey).unwrap_err().contains("does not verify"));
        let (_, other) = CheckpointSigner::generate("cp.example/audit").unwrap();
        assert!(open(note.as_bytes(), &other).is_err());
        assert!(CheckpointSigner::new("PRIVATE+KEY+x+00000000+AAAA").is_err());
        assert!(CheckpointSigner::generate("has space").is_err());
    }
}
