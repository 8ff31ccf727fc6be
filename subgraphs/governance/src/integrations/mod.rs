//! Integration connections: git hosting, CI, chat and cloud accounts a tenant's automation uses. A
//! connection has non-secret settings (JSON, checked to hold no secret values) and its secrets only as
//! `configRef`s (`kernel::secrets::ConfigRef`: `env:`, `file:`, Azure Key Vault and HashiCorp Vault
//! references, parsed and validated even where no backend reaches them). A secret value is never stored,
//! returned, logged or put in an event: `testIntegrationConnection` resolves each reference through the kernel's
//! secret store, drops the value at once and reports only whether it resolved (with a code when not).
//! Pointing a secret at another reference is a rotation, with its own event. A tenant's `env:` and `file:`
//! references must be its own ([`SecretScope`]), so no connection can reach the server's secrets.

pub mod schema;
pub mod store;

use std::collections::BTreeMap;

use crate::ids::ConnectionId;
use async_graphql::{ComplexObject, Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::secrets::{ConfigRef, Secrets};
use kernel::{Error, Result, TenantId};
use serde_json::Value;

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum IntegrationKind {
        GitHosting = "GitHosting",
        Ci = "Ci",
        Chat = "Chat",
        Cloud = "Cloud",
        Other = "Other",
    }
}

kernel::text_enum! {
    #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub enum IntegrationStatus {
        Active = "Active",
        Disabled = "Disabled",
    }
}

/// A named secret of a connection: where it lives, never what it is.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub config_ref: String,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct IntegrationConnection {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub connection_id: ConnectionId,
    /// Unique per tenant: 2–63 lower-case letters, digits and hyphens.
    pub name: String,
    pub kind: IntegrationKind,
    /// e.g. `github`, `gitlab`, `azure-devops`, `slack`, `azure`.
    pub provider: String,
    #[graphql(skip)]
    pub settings: Value,
    #[graphql(skip)]
    pub secret_refs: Value,
    pub status: IntegrationStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_tested_at: Option<DateTime<Utc>>,
    pub last_test_ok: Option<bool>,
}

#[ComplexObject]
impl IntegrationConnection {
    async fn id(&self) -> ID {
        ID(self.connection_id.to_string())
    }

    /// Non-secret settings.
    async fn settings(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.settings)
    }

    /// The connection's secrets, by reference, in name order.
    async fn secrets(&self) -> Vec<SecretRef> {
        refs_of(&self.secret_refs)
    }
}

pub fn refs_of(v: &Value) -> Vec<SecretRef> {
    let mut out: Vec<SecretRef> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, r)| r.as_str().map(|r| SecretRef { name: k.clone(), config_ref: r.to_owned() }))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn name(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (2..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::bad_input("name", "a connection name is 2–63 lower-case letters, digits and hyphens"))
}

pub fn provider(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::bad_input("provider", "provider is 1–64 lower-case letters, digits, `-` and `.`"))
}

pub const MAX_SETTINGS_BYTES: usize = 16 * 1024;

/// Settings: a JSON object of at most [`MAX_SETTINGS_BYTES`] holding no secret values.
pub fn settings(raw: Value) -> Result<Value> {
    if !raw.is_object() {
        return Err(Error::bad_input("settings", "settings must be a JSON object"));
    }
    if serde_json::to_vec(&raw).map_or(usize::MAX, |v| v.len()) > MAX_SETTINGS_BYTES {
        return Err(Error::bad_input("settings", format!("settings are at most {MAX_SETTINGS_BYTES} bytes")));
    }
    kernel::secrets::check_no_inline_secrets("settings", &raw)?;
    Ok(raw)
}

/// A secret's name: 1–64 letters, digits, `_` and `-`.
pub fn secret_name(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| s.to_owned())
        .ok_or_else(|| Error::bad_input("secrets.name", "a secret name is 1–64 letters, digits, `_` and `-`"))
}

/// Where a tenant's `env:` and `file:` secrets may live on governance's own hosts. A tenant may name only
/// its own: otherwise a connection could point at the server's secrets (`env:DATABASE_URL`) and have an
/// integration send them away, or probe which exist. Key Vault and Vault references are scoped by their
/// backends' own access policies (a backend resolves with the tenant's identity).
#[derive(Clone, Debug)]
pub struct SecretScope {
    /// Environment variables of tenant `acme-corp` start with `<prefix>ACME_CORP__`.
    pub env_prefix: String,
    /// Files of tenant `acme` lie under `<dir>/acme/`.
    pub dir: String,
}

impl Default for SecretScope {
    fn default() -> Self {
        Self { env_prefix: "CP_SECRET_".into(), dir: "/run/secrets/tenants".into() }
    }
}

impl SecretScope {
    /// The prefix of `tenant`'s environment variables: the slug upper-cased with `-` as `_`, then `__`.
    /// A slug never holds two hyphens in a row nor ends with one, so an encoded slug never holds `__` nor
    /// ends with `_`: no tenant's prefix is a prefix of another's (`acme`'s `…ACME__` is not a prefix of
    /// `acme-corp`'s `…ACME_CORP__`, as `…ACME_` was of `…ACME_CORP_`).
    pub fn env_prefix_of(&self, tenant: &TenantId) -> String {
        format!("{}{}__", self.env_prefix, tenant.as_str().to_ascii_uppercase().replace('-', "_"))
    }

    /// The directory of `tenant`'s secret files.
    pub fn dir_of(&self, tenant: &TenantId) -> String {
        format!("{}/{}/", self.dir.trim_end_matches('/'), tenant.as_str())
    }
}

/// A reference from the API, checked and in its canonical form; `env:` and `file:` references must be the
/// tenant's own ([`SecretScope`]). The error names the secret, never echoes the input (someone may have
/// pasted the value itself).
pub fn config_ref(scope: &SecretScope, tenant: &TenantId, secret: &str, raw: &str) -> Result<String> {
    let r = ConfigRef::parse(raw).map_err(|why| {
        Error::bad_input("configRef", format!("the configRef of secret `{secret}` is invalid: {why}"))
    })?;
    out_of_scope(scope, tenant, &r).map_or_else(
        || Ok(r.to_string()),
        |why| Err(Error::bad_input("configRef", format!("secret `{secret}`: {why}"))),
    )
}

/// Why `r` is not one of `tenant`'s own references, if it is not.
fn out_of_scope(scope: &SecretScope, tenant: &TenantId, r: &ConfigRef) -> Option<String> {
    match r {
        ConfigRef::Env { name } if !name.starts_with(&scope.env_prefix_of(tenant)) => {
            Some(format!("this tenant's env: references name variables starting with {}", scope.env_prefix_of(tenant)))
        }
        ConfigRef::File { path } if !path.starts_with(&scope.dir_of(tenant)) => {
            Some(format!("this tenant's file: references lie under {}", scope.dir_of(tenant)))
        }
        _ => None,
    }
}

/// Named references, checked: `{ name: canonical configRef }`.
pub fn secret_refs(
    scope: &SecretScope,
    tenant: &TenantId,
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<Value> {
    let mut out = BTreeMap::new();
    for (n, r) in pairs {
        let n = secret_name(&n)?;
        let r = config_ref(scope, tenant, &n, &r)?;
        if out.insert(n.clone(), Value::String(r)).is_some() {
            return Err(Error::bad_input("secrets", format!("secret `{n}` is named twice")));
        }
    }
    if out.len() > 20 {
        return Err(Error::bad_input("secrets", "a connection has at most 20 secrets"));
    }
    Ok(Value::Object(out.into_iter().collect()))
}

/// How one secret's resolution went.
#[derive(SimpleObject, Clone, Debug)]
pub struct SecretCheck {
    pub name: String,
    pub config_ref: String,
    pub ok: bool,
    /// `INVALID_REFERENCE`, `NO_SECRET_STORE` or `SECRET_UNAVAILABLE` when not ok.
    pub code: Option<String>,
    /// What went wrong, naming the reference only.
    pub message: Option<String>,
}

/// Resolves each of the connection's references and reports, without keeping any value. The scope is
/// checked again first: a reference stored before a scope changed (or before its encoding was made
/// unambiguous) is refused as `INVALID_REFERENCE`, never resolved.
pub async fn check_secrets(
    secrets: &Secrets,
    scope: &SecretScope,
    tenant: &TenantId,
    c: &IntegrationConnection,
) -> Vec<SecretCheck> {
    let mut out = Vec::new();
    for r in refs_of(&c.secret_refs) {
        let why = match ConfigRef::parse(&r.config_ref) {
            Ok(parsed) => out_of_scope(scope, tenant, &parsed),
            Err(why) => Some(why),
        };
        if let Some(why) = why {
            let message = Some(format!("`{}` is not a reference this tenant may use: {why}", r.config_ref));
            out.push(SecretCheck {
                name: r.name,
                config_ref: r.config_ref,
                ok: false,
                code: Some("INVALID_REFERENCE".to_owned()),
                message,
            });
            continue;
        }
        let result = secrets.resolve(&r.config_ref).await;
        let (ok, code, message) = match result {
            Ok(value) => {
                drop(value);
                (true, None, None)
            }
            Err(e) => (false, Some(e.code().to_owned()), Some(e.to_string())),
        };
        out.push(SecretCheck { name: r.name, config_ref: r.config_ref, ok, code, message });
    }
    out
}
