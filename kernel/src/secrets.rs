//! Secrets by reference. Configuration never holds a secret itself, only a `configRef` naming where it lives:
//! `env:NAME` (an environment variable) or `file:/path` (a file, e.g. a mounted Kubernetes secret). A Key
//! Vault or Vault backend implements [`SecretStore`] for its own scheme (`keyvault:…`, `vault:…`).

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::SecretString;

/// Where secrets come from.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// Reads the secret at `path` (the part of the reference after `scheme:`).
    async fn read(&self, path: &str) -> anyhow::Result<SecretString>;
}

/// `env:NAME`.
pub struct EnvStore;

#[async_trait::async_trait]
impl SecretStore for EnvStore {
    async fn read(&self, path: &str) -> anyhow::Result<SecretString> {
        std::env::var(path)
            .map(SecretString::from)
            .map_err(|_| anyhow::anyhow!("environment variable {path} is not set"))
    }
}

/// `file:/path`; surrounding whitespace is trimmed.
pub struct FileStore;

#[async_trait::async_trait]
impl SecretStore for FileStore {
    async fn read(&self, path: &str) -> anyhow::Result<SecretString> {
        let raw =
            tokio::fs::read_to_string(path).await.map_err(|e| anyhow::anyhow!("reading secret file {path}: {e}"))?;
        Ok(SecretString::from(raw.trim().to_owned()))
    }
}

/// Resolves references by scheme.
#[derive(Clone)]
pub struct Secrets {
    stores: HashMap<String, Arc<dyn SecretStore>>,
}

impl Default for Secrets {
    /// The environment and file backends.
    fn default() -> Self {
        let mut s = Self { stores: HashMap::new() };
        s.register("env", Arc::new(EnvStore));
        s.register("file", Arc::new(FileStore));
        s
    }
}

impl Secrets {
    pub fn register(&mut self, scheme: &str, store: Arc<dyn SecretStore>) {
        self.stores.insert(scheme.to_owned(), store);
    }

    /// Reads the secret a `configRef` names. Errors name the reference, never the secret.
    pub async fn resolve(&self, config_ref: &str) -> anyhow::Result<SecretString> {
        let (scheme, path) = config_ref
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("`{config_ref}` is not a configRef (scheme:path)"))?;
        let store = self.stores.get(scheme).ok_or_else(|| anyhow::anyhow!("no secret store for scheme `{scheme}`"))?;
        store.read(path).await
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[tokio::test]
    async fn resolves_env_and_file_references() {
        let secrets = Secrets::default();
        let dir = std::env::temp_dir().join(format!("cp-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        let v = secrets.resolve(&format!("file:{}", dir.display())).await.unwrap();
        assert_eq!(v.expose_secret(), "s3cret");
        std::fs::remove_file(&dir).unwrap();
        let v = secrets.resolve("env:PATH").await.unwrap();
        assert!(!v.expose_secret().is_empty());
        assert!(secrets.resolve("env:CP_SURELY_NOT_SET_1234").await.is_err());
        assert!(secrets.resolve("vault:x").await.is_err());
        assert!(secrets.resolve("no-scheme").await.is_err());
    }
}
