//! The control plane's typed client for partners.
//!
//! Everything goes through the one public endpoint (the edge): GraphQL at `/graphql`, the token endpoint
//! at `/oauth/token`, artifact bodies at `/api/v1/artifacts/…/body`. Operations are `cynic` types checked
//! against the public API schema (`schema/api.graphql`) when this crate compiles, so one that no longer
//! matches the supergraph fails the build rather than a partner's request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cp_sdk::Error> {
//! use cp_sdk::{Client, Credentials};
//! use futures::TryStreamExt;
//!
//! let client = Client::new(
//!     "http://127.0.0.1:4000",
//!     Credentials::ClientCredentials { client_id: "cpc_acme_…".into(), client_secret: "cps_…".into(), scope: None },
//! )?;
//! let tenant = client.current_tenant().await?;
//! println!("{} ({})", tenant.display_name, tenant.id.inner());
//! let principals: Vec<_> = client.principals(50).try_collect().await?;
//! # Ok(()) }
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`auth`] | credentials: client credentials (fetched and refreshed before expiry) or a token |
//! | [`error`] | [`Error`], with the API's `extensions.code` as [`ErrorCode`] |
//! | [`ops`] | the typed operations, by domain |
//! | [`pages`] | Relay connections as a `Stream` |

pub mod auth;
pub mod error;
pub mod ops;
pub mod pages;

use cynic::{GraphQlResponse, Operation};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use auth::Credentials;
pub use error::{Error, ErrorCode};

#[cynic::schema("controlplane")]
pub mod schema {}

/// The control plane's `UUID` scalar.
pub type Uuid = uuid::Uuid;
cynic::impl_scalar!(uuid::Uuid, schema::UUID);
/// The control plane's `DateTime` scalar (RFC 3339).
pub type DateTime = chrono::DateTime<chrono::Utc>;
cynic::impl_scalar!(chrono::DateTime<chrono::Utc>, schema::DateTime);
/// The control plane's `JSON` scalar.
pub type Json = serde_json::Value;
cynic::impl_scalar!(serde_json::Value, schema::JSON);

/// A client of one control plane, as one caller.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: std::sync::Arc<auth::Auth>,
}

impl Client {
    /// A client of the control plane at `base` (its public endpoint, `https://cp.example.com`).
    pub fn new(base: impl Into<String>, credentials: Credentials) -> Result<Self, Error> {
        let base = base.into().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config(format!("`{base}` is not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(Error::Transport)?;
        let auth = std::sync::Arc::new(auth::Auth::new(credentials));
        Ok(Self { http, base, auth })
    }

    /// The public endpoint's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token requests carry now (fetched or refreshed first when needed).
    pub async fn bearer(&self) -> Result<String, Error> {
        self.auth.bearer(&self.http, &self.base).await
    }

    /// Runs `operation`; its data, or the first error as a typed [`Error`].
    pub async fn run<Q, V>(&self, operation: Operation<Q, V>) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        let token = self.bearer().await?;
        match self.send(&operation, &token).await {
            // A token the API no longer takes (revoked, or signed with a retired key): a new one, once.
            Err(Error::Api { code: ErrorCode::Unauthenticated, .. }) if self.auth.renewable() => {
                self.auth.forget(&token).await;
                let token = self.bearer().await?;
                self.send(&operation, &token).await
            }
            other => other,
        }
    }

    async fn send<Q, V>(&self, operation: &Operation<Q, V>, token: &str) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        let resp = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(operation)
            .send()
            .await
            .map_err(Error::Transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(Error::Transport)?;
        let body: GraphQlResponse<Q, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|_| Error::Http { status: status.as_u16(), body: text.chars().take(500).collect() })?;
        if let Some(e) = body.errors.as_ref().and_then(|e| e.first()) {
            return Err(Error::from_graphql(e));
        }
        body.data.ok_or_else(|| Error::Http { status: status.as_u16(), body: "no data".into() })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }
}
