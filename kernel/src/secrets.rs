//! Secrets by reference. Configuration never holds a secret itself, only a `configRef` naming where it lives
//! ([`ConfigRef`]): `env:NAME` (an environment variable), `file:/path` (a file, e.g. a mounted Kubernetes
//! secret), an Azure Key Vault secret (`@Microsoft.KeyVault(SecretUri=…)`, `@Microsoft.KeyVault(VaultName=…;
//! SecretName=…)` as App Service writes them, or the short `keyvault:<vault>/<name>[/<version>]`) or a
//! HashiCorp Vault KV secret (`vault:<mount>/<path>#<key>[?version=N]`). Every form is parsed and validated
//! here, also where no backend for it is configured; a Key Vault or Vault backend implements
//! [`SecretStore`] and is registered for its scheme.
//!
//! [`check_no_inline_secrets`] keeps secret values out of JSON settings: a key that names a secret must
//! hold a reference.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use crate::{Error, Result};

/// A parsed secret reference. `Display` gives its canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConfigRef {
    /// `env:NAME`: an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
    Env { name: String },
    /// `file:/absolute/path`: a file's contents, surrounding whitespace trimmed.
    File { path: String },
    /// An Azure Key Vault secret, optionally pinned to a version.
    KeyVault { vault: String, secret: String, version: Option<String> },
    /// A HashiCorp Vault KV secret: the field `key` of the secret at `mount/path`, optionally pinned.
    Vault { mount: String, path: String, key: String, version: Option<u64> },
}

impl ConfigRef {
    /// Parses and validates a reference; the error says what is wrong without echoing much of the input.
    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        let s = raw.trim();
        if let Some(name) = s.strip_prefix("env:") {
            let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.len() <= 255
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return if ok {
                Ok(ConfigRef::Env { name: name.to_owned() })
            } else {
                Err("env: must name an environment variable (letters, digits and _, not starting with a digit)".into())
            };
        }
        if let Some(path) = s.strip_prefix("file:") {
            let ok = path.starts_with('/')
                && path.len() <= 4096
                && !path.split('/').any(|seg| seg == "..")
                && !path.chars().any(char::is_control);
            return if ok {
                Ok(ConfigRef::File { path: path.to_owned() })
            } else {
                Err("file: must be an absolute path without `..`".into())
            };
        }
        if let Some(inner) = s.strip_prefix("@Microsoft.KeyVault(").and_then(|r| r.strip_suffix(')')) {
            return key_vault_reference(inner);
        }
        if let Some(rest) = s.strip_prefix("keyvault:") {
            let parts: Vec<&str> = rest.split('/').collect();
            return match parts.as_slice() {
                [vault, secret] => key_vault(vault, secret, None),
                [vault, secret, version] => key_vault(vault, secret, Some(version)),
                _ => Err("keyvault: must be keyvault:<vault>/<secret>[/<version>]".into()),
            };
        }
        if let Some(rest) = s.strip_prefix("vault:") {
            return vault(rest);
        }
        Err("not a configRef: use env:NAME, file:/path, @Microsoft.KeyVault(…), keyvault:<vault>/<secret> or \
             vault:<mount>/<path>#<key>"
            .into())
    }

    /// The scheme a [`SecretStore`] is registered under: `env`, `file`, `keyvault` or `vault`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ConfigRef::Env { .. } => "env",
            ConfigRef::File { .. } => "file",
            ConfigRef::KeyVault { .. } => "keyvault",
            ConfigRef::Vault { .. } => "vault",
        }
    }
}

impl fmt::Display for ConfigRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigRef::Env { name } => write!(f, "env:{name}"),
            ConfigRef::File { path } => write!(f, "file:{path}"),
            ConfigRef::KeyVault { vault, secret, version: None } => write!(f, "keyvault:{vault}/{secret}"),
            ConfigRef::KeyVault { vault, secret, version: Some(v) } => write!(f, "keyvault:{vault}/{secret}/{v}"),
            ConfigRef::Vault { mount, path, key, version } => {
                write!(f, "vault:{mount}/{path}#{key}")?;
                if let Some(v) = version {
                    write!(f, "?version={v}")?;
                }
                Ok(())
            }
        }
    }
}

/// `SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>]` or
/// `VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>]`.
fn key_vault_reference(inner: &str) -> std::result::Result<ConfigRef, String> {
    if let Some(uri) = inner.strip_prefix("SecretUri=") {
        let rest = uri
            .strip_prefix("https://")
            .ok_or("a Key Vault SecretUri must be https://<vault>.vault.azure.net/secrets/<name>[/<version>]")?;
        let (host, path) = rest.split_once('/').ok_or("a Key Vault SecretUri needs /secrets/<name>")?;
        let vault = host
            .strip_suffix(".vault.azure.net")
            .ok_or("a Key Vault SecretUri's host must be <vault>.vault.azure.net")?;
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        return match parts.as_slice() {
            ["secrets", name] => key_vault(vault, name, None),
            ["secrets", name, version] => key_vault(vault, name, Some(version)),
            _ => Err("a Key Vault SecretUri's path must be /secrets/<name>[/<version>]".into()),
        };
    }
    let mut fields = HashMap::new();
    for pair in inner.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or("a Key Vault reference is Name=Value pairs separated by ;")?;
        if fields.insert(k.trim(), v.trim()).is_some() {
            return Err(format!("a Key Vault reference names {} twice", crate::error::clip(k, 20)));
        }
    }
    let (Some(vault), Some(name)) = (fields.remove("VaultName"), fields.remove("SecretName")) else {
        return Err("a Key Vault reference needs SecretUri=…, or VaultName=…;SecretName=…".into());
    };
    let version = fields.remove("SecretVersion");
    if let Some(k) = fields.keys().next() {
        return Err(format!("a Key Vault reference has no field {}", crate::error::clip(k, 20)));
    }
    key_vault(vault, name, version)
}

/// Azure's rules: a vault name is 3–24 letters, digits and hyphens, starting with a letter, ending with a
/// letter or digit, without `--`; a secret name 1–127 letters, digits and hyphens; a version 32 hex digits.
fn key_vault(vault: &str, secret: &str, version: Option<&str>) -> std::result::Result<ConfigRef, String> {
    let vault_ok = (3..=24).contains(&vault.len())
        && vault.starts_with(|c: char| c.is_ascii_alphabetic())
        && vault.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !vault.contains("--")
        && vault.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !vault_ok {
        return Err("a Key Vault name is 3–24 letters, digits and single hyphens, starting with a letter".into());
    }
    if !(1..=127).contains(&secret.len()) || !secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("a Key Vault secret name is 1–127 letters, digits and hyphens".into());
    }
    if let Some(v) = version {
        if v.len() != 32 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err("a Key Vault secret version is 32 hexadecimal digits".into());
        }
    }
    Ok(ConfigRef::KeyVault {
        vault: vault.to_ascii_lowercase(),
        secret: secret.to_owned(),
        version: version.map(str::to_ascii_lowercase),
    })
}

/// `<mount>/<path>#<key>[?version=N]`, each path segment of letters, digits, `.`, `_` and `-`.
fn vault(rest: &str) -> std::result::Result<ConfigRef, String> {
    const SHAPE: &str = "vault: must be vault:<mount>/<path>#<key>[?version=N]";
    let (location, key_part) = rest.split_once('#').ok_or(SHAPE)?;
    let (key, version) = match key_part.split_once("?version=") {
        Some((k, v)) => {
            (k, Some(v.parse::<u64>().ok().filter(|v| *v > 0).ok_or("a Vault version is a positive number")?))
        }
        None => (key_part, None),
    };
    let segment_ok = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let (mount, path) = location.split_once('/').ok_or(SHAPE)?;
    if !segment_ok(mount) || !path.split('/').all(segment_ok) || !segment_ok(key) || location.len() > 1024 {
        return Err(SHAPE.into());
    }
    Ok(ConfigRef::Vault { mount: mount.to_owned(), path: path.to_owned(), key: key.to_owned(), version })
}

/// Where secrets come from: one store per scheme.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    /// Reads the secret `r` names (always of the scheme the store is registered for).
    async fn read(&self, r: &ConfigRef) -> anyhow::Result<SecretString>;
}

/// `env:NAME`.
pub struct EnvStore;

#[async_trait::async_trait]
impl SecretStore for EnvStore {
    async fn read(&self, r: &ConfigRef) -> anyhow::Result<SecretString> {
        let ConfigRef::Env { name } = r else { anyhow::bail!("not an env: reference") };
        std::env::var(name)
            .map(SecretString::from)
            .map_err(|_| anyhow::anyhow!("environment variable {name} is not set"))
    }
}

/// `file:/path`; surrounding whitespace is trimmed.
pub struct FileStore;

#[async_trait::async_trait]
impl SecretStore for FileStore {
    async fn read(&self, r: &ConfigRef) -> anyhow::Result<SecretString> {
        let ConfigRef::File { path } = r else { anyhow::bail!("not a file: reference") };
        // The I/O error's kind only: its text could quote the file.
        let raw = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| anyhow::anyhow!("reading secret file {path}: {}", e.kind()))?;
        Ok(SecretString::from(raw.trim().to_owned()))
    }
}

/// Why a reference could not be resolved; never carries the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Not a valid reference.
    Invalid(String),
    /// No backend for its scheme on this deployment (Key Vault, Vault).
    NoStore(&'static str),
    /// The backend could not produce it (unset variable, missing file, denied).
    Unavailable(String),
}

impl ResolveError {
    /// A stable code for APIs: `INVALID_REFERENCE`, `NO_SECRET_STORE` or `SECRET_UNAVAILABLE`.
    pub fn code(&self) -> &'static str {
        match self {
            ResolveError::Invalid(_) => "INVALID_REFERENCE",
            ResolveError::NoStore(_) => "NO_SECRET_STORE",
            ResolveError::Unavailable(_) => "SECRET_UNAVAILABLE",
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Invalid(m) | ResolveError::Unavailable(m) => f.write_str(m),
            ResolveError::NoStore(scheme) => write!(f, "no secret store for `{scheme}` references is configured"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolves references by scheme.
#[derive(Clone)]
pub struct Secrets {
    stores: HashMap<&'static str, Arc<dyn SecretStore>>,
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
    pub fn register(&mut self, scheme: &'static str, store: Arc<dyn SecretStore>) {
        self.stores.insert(scheme, store);
    }

    /// Reads the secret a `configRef` names. Errors name the reference, never the secret.
    pub async fn resolve(&self, config_ref: &str) -> std::result::Result<SecretString, ResolveError> {
        let r = ConfigRef::parse(config_ref).map_err(ResolveError::Invalid)?;
        self.resolve_ref(&r).await
    }

    pub async fn resolve_ref(&self, r: &ConfigRef) -> std::result::Result<SecretString, ResolveError> {
        let store = self.stores.get(r.scheme()).ok_or(ResolveError::NoStore(r.scheme()))?;
        store.read(r).await.map_err(|e| ResolveError::Unavailable(format!("{e:#}")))
    }
}

/// Key fragments that name a secret: their values must be references.
const SECRET_WORDS: [&str; 7] = ["password", "passwd", "secret", "token", "apikey", "privatekey", "credential"];

/// Checks that JSON settings hold no secret values: under a key that names a secret (`password`,
/// `apiKey`, `clientSecret`, …) only a valid [`ConfigRef`] (or null) is accepted. `BAD_USER_INPUT` on
/// `field` otherwise, naming the key, never echoing the value.
pub fn check_no_inline_secrets(field: &str, v: &Value) -> Result<()> {
    check_at(field, v, "")
}

fn check_at(field: &str, v: &Value, path: &str) -> Result<()> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                let folded: String = k.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
                if SECRET_WORDS.iter().any(|w| folded.contains(w)) {
                    let is_ref = matches!(child, Value::String(s) if ConfigRef::parse(s).is_ok());
                    if !is_ref && !child.is_null() {
                        return Err(Error::bad_input(
                            field,
                            format!(
                                "`{}` looks like a secret: give a configRef (env:NAME, file:/path, @Microsoft.KeyVault(…), \
                                 vault:<mount>/<path>#<key>), never the value",
                                crate::error::clip(&here, 100)
                            ),
                        ));
                    }
                }
                check_at(field, child, &here)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, c)| check_at(field, c, &format!("{path}[{i}]")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn resolves_env_and_file_references() {
        let secrets = Secrets::default();
        let dir = std::env::temp_dir().join(format!("cp-secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        let v = secrets.resolve(&format!("file:{}", dir.display())).await.unwrap();
        assert_eq!(v.expose_secret(), "s3cret");
        std::fs::remove_file(&dir).unwrap();
        let e = secrets.resolve(&format!("file:{}", dir.display())).await.unwrap_err();
        assert_eq!(e.code(), "SECRET_UNAVAILABLE");
        let v = secrets.resolve("env:PATH").await.unwrap();
        assert!(!v.expose_secret().is_empty());
        assert_eq!(secrets.resolve("env:CP_SURELY_NOT_SET_1234").await.unwrap_err().code(), "SECRET_UNAVAILABLE");
        assert_eq!(secrets.resolve("vault:secret/ci#token").await.unwrap_err().code(), "NO_SECRET_STORE");
        assert_eq!(secrets.resolve("no-scheme").await.unwrap_err().code(), "INVALID_REFERENCE");
    }

    #[test]
    fn every_reference_format_is_parsed_and_checked() {
        let kv = |v: Option<&str>| ConfigRef::KeyVault {
            vault: "my-vault".into(),
            secret: "db-password".into(),
            version: v.map(Into::into),
        };
        let version = "0123456789abcdef0123456789abcdef";
        for (raw, want) in [
            ("env:GITHUB_TOKEN", ConfigRef::Env { name: "GITHUB_TOKEN".into() }),
            ("file:/run/secrets/token", ConfigRef::File { path: "/run/secrets/token".into() }),
            ("@Microsoft.KeyVault(SecretUri=https://my-vault.vault.azure.net/secrets/db-password/)", kv(None)),
            (
                &format!(
                    "@Microsoft.KeyVault(SecretUri=https://my-vault.vault.azure.net/secrets/db-password/{version})"
                ),
                kv(Some(version)),
            ),
            ("@Microsoft.KeyVault(VaultName=my-vault;SecretName=db-password)", kv(None)),
            (
                &format!("@Microsoft.KeyVault(VaultName=my-vault;SecretName=db-password;SecretVersion={version})"),
                kv(Some(version)),
            ),
            ("keyvault:my-vault/db-password", kv(None)),
            (
                "vault:secret/data/ci/github#token",
                ConfigRef::Vault {
                    mount: "secret".into(),
                    path: "data/ci/github".into(),
                    key: "token".into(),
                    version: None,
                },
            ),
            (
                "vault:kv/ci#token?version=3",
                ConfigRef::Vault { mount: "kv".into(), path: "ci".into(), key: "token".into(), version: Some(3) },
            ),
        ] {
            let parsed = ConfigRef::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(parsed, want, "{raw}");
            assert_eq!(ConfigRef::parse(&parsed.to_string()).unwrap(), parsed, "canonical form of {raw} round-trips");
        }
        for bad in [
            "env:",
            "env:1X",
            "env:A-B",
            "file:relative/path",
            "file:/etc/../shadow",
            "@Microsoft.KeyVault(SecretUri=http://my-vault.vault.azure.net/secrets/x)",
            "@Microsoft.KeyVault(SecretUri=https://evil.example.com/secrets/x)",
            "@Microsoft.KeyVault(SecretUri=https://my-vault.vault.azure.net/keys/x)",
            "@Microsoft.KeyVault(VaultName=my-vault)",
            "@Microsoft.KeyVault(VaultName=ab;SecretName=x)",
            "@Microsoft.KeyVault(VaultName=my--vault;SecretName=x)",
            "@Microsoft.KeyVault(VaultName=my-vault;SecretName=x;SecretVersion=123)",
            "@Microsoft.KeyVault(VaultName=my-vault;SecretName=x;Other=1)",
            "keyvault:my-vault",
            "vault:secret",
            "vault:secret/data/x",
            "vault:secret/../x#k",
            "vault:secret/x#k?version=0",
            "hunter2",
            "",
        ] {
            assert!(ConfigRef::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn settings_may_name_secrets_only_by_reference() {
        assert!(check_no_inline_secrets("settings", &json!({ "org": "acme", "apiToken": "env:GH_TOKEN" })).is_ok());
        assert!(check_no_inline_secrets("settings", &json!({ "nested": [{ "password": null }] })).is_ok());
        let e = check_no_inline_secrets("settings", &json!({ "nested": [{ "clientSecret": "hunter2" }] })).unwrap_err();
        assert_eq!(e.code(), crate::error::Code::BadUserInput);
        assert!(e.message().contains("nested[0].clientSecret") && !e.message().contains("hunter2"));
        assert!(check_no_inline_secrets("settings", &json!({ "token": "vault:oops" })).is_err());
    }
}
