//! The stored login: the endpoint and the credentials, in the user's configuration directory
//! (`$XDG_CONFIG_HOME/cpctl/login.json`, or `CPCTL_CONFIG`), readable by its owner only (0600, in a 0700
//! folder). `CP_ENDPOINT` and `CP_TOKEN` override it for one run (CI, scripts).

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub endpoint: String,
    #[serde(flatten)]
    pub credentials: Stored,
}

#[derive(Serialize, Deserialize, Clone)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Stored {
    #[serde(rename_all = "camelCase")]
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
    Token {
        token: String,
    },
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::ClientCredentials { client_id, .. } => write!(f, "client {client_id}"),
            Stored::Token { .. } => f.write_str("a token"),
        }
    }
}

impl Stored {
    pub fn credentials(&self) -> cp_sdk::Credentials {
        match self.clone() {
            Stored::ClientCredentials { client_id, client_secret } => {
                cp_sdk::Credentials::ClientCredentials { client_id, client_secret, scope: None }
            }
            Stored::Token { token } => cp_sdk::Credentials::Token(token),
        }
    }
}

/// Where the login is kept.
pub fn path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("CPCTL_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let dir = dirs::config_dir().context("no configuration directory for this user (set CPCTL_CONFIG)")?;
    Ok(dir.join("cpctl").join("login.json"))
}

/// The stored login, if any.
pub fn load() -> anyhow::Result<Option<Login>> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => {
            let login = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a cpctl login (run `cpctl login` again)", path.display()))?;
            Ok(Some(login))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stores `login`, readable by its owner only; written whole, then moved into place.
pub fn save(login: &Login) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path = path()?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| ".".into());
    create_private_dir(&dir)?;
    // A new file of this process's own (never one that exists, which could be someone else's with their
    // permissions), written whole, then moved over the old login.
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let tmp = dir.join(format!(".login.{}.{nonce}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    let written = file
        .write_all(&serde_json::to_vec_pretty(login)?)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

/// Forgets the stored login; whether there was one.
pub fn remove() -> anyhow::Result<bool> {
    match std::fs::remove_file(path()?) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))
}
