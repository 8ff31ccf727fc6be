//! The local Ed25519 signing key and its JWKS (identity signs with it; dev tools and tests mint with it).

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::Algorithm;

/// A locally generated Ed25519 signing key and its public JWKS.
pub struct LocalSigner {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl LocalSigner {
    pub fn generate(kid: impl Into<String>) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 key generation");
        Self::from_pkcs8(kid, pkcs8.as_ref().to_vec()).expect("fresh key parses")
    }

    pub fn from_pkcs8(kid: impl Into<String>, pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        use ring::signature::KeyPair;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self { kid: kid.into(), public: pair.public_key().as_ref().to_vec(), pkcs8 })
    }

    /// Loads the key from `dir/signing-key` (base64 PKCS#8, the form a secret store holds), creating it
    /// (and `dir/jwks.json`) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key_path = dir.join("signing-key");
        let signer = if key_path.exists() {
            Self::from_base64(std::fs::read_to_string(&key_path)?.trim())?
        } else {
            let s = Self::from_pkcs8_derived(Self::generate("new").pkcs8)?;
            write_private(&key_path, s.to_base64().as_bytes())?;
            s
        };
        std::fs::write(dir.join("jwks.json"), signer.jwks().to_string())?;
        Ok(signer)
    }

    /// A key from base64 PKCS#8, with its key id derived from the public key.
    pub fn from_base64(b64: &str) -> anyhow::Result<Self> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| anyhow::anyhow!("signing key is not base64 PKCS#8"))?;
        Self::from_pkcs8_derived(der)
    }

    fn from_pkcs8_derived(pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let mut s = Self::from_pkcs8("", pkcs8)?;
        s.kid = format!("k-{}", &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&s.public))[..16]);
        Ok(s)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.pkcs8)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public),
        })
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk()] })
    }

    /// Signs arbitrary claims with this key (tests use it for deliberately bad tokens too).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::encode(&header, claims, &key).expect("signing with a valid key")
    }

    /// Mints a token for `subject` valid for `ttl`, with the given tenant and scopes.
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        subject: &str,
        tenant: Option<&str>,
        scopes: &[&str],
        ttl: Duration,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now,
            "exp": now + ttl.as_secs() as i64, "scope": scopes.join(" "), "jti": uuid::Uuid::now_v7().to_string(),
        });
        if let Some(t) = tenant {
            claims["tid"] = t.into();
        }
        self.sign(&claims)
    }
}

/// Writes a file only its owner can read (mode 0600), as every key file the project writes is.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        // An existing file keeps its mode on open: tighten it too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents)
    }
    #[cfg(not(unix))]
    {
        opts.open(path)?.write_all(contents)
    }
}
