//! Signing keys, loaded by `configRef` from the secret store (never from the database). The first key signs;
//! the others only verify, so a rotated-out key keeps its tokens valid until they expire.

use kernel::auth::LocalSigner;
use kernel::secrets::Secrets;
use secrecy::ExposeSecret;

pub struct SigningKeys {
    keys: Vec<LocalSigner>,
}

impl SigningKeys {
    /// `refs` in order: current signing key first, then keys being rotated out.
    pub async fn load(secrets: &Secrets, refs: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!refs.is_empty(), "at least one signing key reference is needed");
        let mut keys = Vec::with_capacity(refs.len());
        for r in refs {
            let secret = secrets.resolve(r).await?;
            keys.push(LocalSigner::from_base64(secret.expose_secret()).map_err(|e| anyhow::anyhow!("{r}: {e}"))?);
        }
        Ok(Self { keys })
    }

    pub fn current(&self) -> &LocalSigner {
        &self.keys[0]
    }

    /// The public JWKS: every key, current first.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(LocalSigner::jwk).collect::<Vec<_>>() })
    }
}
