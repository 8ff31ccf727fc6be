//! Blob storage for what is too big for a row — governance's audit exports, lineage's artifact bodies:
//! `object_store` over a local folder by default, or an Azure Blob container by configuration (Azurite in
//! tests), its account key by reference (`configRef`), never inline.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::secrets::Secrets;

/// Where a domain's blobs go, as its settings name it (each domain has its own settings, e.g.
/// `AUDIT_EXPORT_DIR` / `AUDIT_EXPORT_AZURE_*`): Azure Blob when a container is given, else the folder.
#[derive(Clone, Debug, Default)]
pub struct BlobSettings {
    /// The settings' common prefix, for errors (`AUDIT_EXPORT`).
    pub prefix: String,
    /// The local folder (created when missing).
    pub dir: String,
    pub azure_container: Option<String>,
    pub azure_account: Option<String>,
    /// A `configRef` to the account key.
    pub azure_key: Option<String>,
    /// The blob endpoint, when not `https://<account>.blob.core.windows.net` (Azurite's
    /// `http://127.0.0.1:10000/<account>`).
    pub azure_endpoint: Option<String>,
}

/// An opened blob store.
#[derive(Clone)]
pub struct Blob {
    pub store: Arc<dyn ObjectStore>,
    /// Where it is, for people (`file:///…/` or the container's URL).
    pub location: String,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("location", &self.location).finish()
    }
}

impl Blob {
    /// The store `settings` name; an error naming the setting at fault.
    pub async fn open(settings: &BlobSettings, secrets: &Secrets) -> anyhow::Result<Self> {
        let p = &settings.prefix;
        if let Some(container) = &settings.azure_container {
            use secrecy::ExposeSecret;
            let account = settings
                .azure_account
                .clone()
                .ok_or_else(|| anyhow::anyhow!("{p}_AZURE_CONTAINER needs {p}_AZURE_ACCOUNT"))?;
            let key_ref = settings
                .azure_key
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("{p}_AZURE_CONTAINER needs {p}_AZURE_KEY (a configRef)"))?;
            let key = secrets.resolve(key_ref).await.map_err(|e| anyhow::anyhow!("{p}_AZURE_KEY ({key_ref}): {e}"))?;
            let mut builder = object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(&account)
                .with_container_name(container)
                .with_access_key(key.expose_secret());
            let mut location = format!("azure://{account}/{container}/");
            if let Some(endpoint) = &settings.azure_endpoint {
                builder = builder.with_endpoint(endpoint.clone()).with_allow_http(endpoint.starts_with("http://"));
                location = format!("{}/{container}/", endpoint.trim_end_matches('/'));
            }
            Ok(Self { store: Arc::new(builder.build()?), location })
        } else {
            let dir = std::path::Path::new(&settings.dir);
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{p}_DIR {}: {e}", dir.display()))?;
            let dir = dir.canonicalize()?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?;
            Ok(Self { store: Arc::new(store), location: format!("file://{}/", dir.display()) })
        }
    }
}
