//! Where API tokens are looked up: the source trait and identity's introspection endpoint.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::TenantId;

/// What a store knows about an API token, cached by the token's hash.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ApiTokenInfo {
    pub active: bool,
    pub token_id: String,
    pub subject: String,
    pub tenant: Option<TenantId>,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Where API tokens are looked up: identity's own database there, its introspection endpoint elsewhere.
#[async_trait::async_trait]
pub trait ApiTokenSource: Send + Sync {
    /// `None` when no such token exists.
    async fn lookup(&self, raw: &str, hash: &str) -> Result<Option<ApiTokenInfo>>;
}

/// The header carrying the internal credential on subgraph-to-identity calls (introspection).
pub const INTERNAL_SECRET_HEADER: &str = "x-cp-internal-secret";

/// Looks API tokens up through identity's RFC 7662 introspection endpoint, authenticated with the
/// internal secret (`INTERNAL_SECRET`, never the router secret).
pub struct IntrospectionSource {
    url: String,
    secret: secrecy::SecretString,
    http: reqwest::Client,
}

impl IntrospectionSource {
    pub fn new(identity_url: &str, secret: secrecy::SecretString) -> Self {
        Self {
            url: format!("{}/oauth/introspect", identity_url.trim_end_matches('/')),
            secret,
            http: reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("http client"),
        }
    }
}

#[async_trait::async_trait]
impl ApiTokenSource for IntrospectionSource {
    async fn lookup(&self, raw: &str, _hash: &str) -> Result<Option<ApiTokenInfo>> {
        use secrecy::ExposeSecret;
        let resp = self
            .http
            .post(&self.url)
            .header(INTERNAL_SECRET_HEADER, self.secret.expose_secret())
            .form(&[("token", raw), ("token_type_hint", "api_token")])
            .send()
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("introspection request failed: {e}")))?;
        let body: serde_json::Value = resp
            .error_for_status()
            .map_err(|e| Error::internal(anyhow::anyhow!("introspection refused: {e}")))?
            .json()
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("introspection answer unreadable: {e}")))?;
        if body["active"] != true {
            return Ok(None);
        }
        Ok(Some(ApiTokenInfo {
            active: true,
            token_id: body["jti"].as_str().unwrap_or_default().to_owned(),
            subject: body["sub"].as_str().unwrap_or_default().to_owned(),
            tenant: body["tid"].as_str().and_then(|t| TenantId::parse(t).ok()),
            scopes: body["scope"].as_str().unwrap_or_default().split_whitespace().map(str::to_owned).collect(),
            expires_at: body["exp"].as_i64().unwrap_or(0),
        }))
    }
}
