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
//! | [`audit`] | an audit entry's inclusion proof checked on the client against a signed checkpoint |
//! | [`auth`] | credentials: client credentials (fetched and refreshed before expiry) or a token |
//! | [`error`] | [`Error`], with the API's `extensions.code` as [`ErrorCode`] |
//! | [`live`] | subscriptions over graphql-transport-ws that reconnect and resubscribe |
//! | [`ops`] | the typed operations, by domain |
//! | [`pages`] | Relay connections as a `Stream` |

pub mod audit;
pub mod auth;
pub mod error;
pub mod live;
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
    retries: u32,
    reconnect: live::Reconnect,
    /// The tenant whose identity an operator manages ([`Client::acting_for`]).
    pub(crate) acting_for: Option<cynic::Id>,
}

/// The longest one GraphQL request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The first retry's wait; each next one doubles, up to [`RETRY_CAP`].
const RETRY_BASE: std::time::Duration = std::time::Duration::from_millis(200);
const RETRY_CAP: std::time::Duration = std::time::Duration::from_secs(5);

/// Exponential backoff with full jitter: a wait drawn from `[0, min(cap, base · 2^attempt)]`, so clients
/// that failed together do not come back together.
pub(crate) fn backoff(attempt: u32, base: std::time::Duration, cap: std::time::Duration) -> std::time::Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    // Jitter from the clock's nanoseconds and a per-process counter: no RNG needed for spreading retries.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = u64::from(nanos) ^ SEQ.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    let fraction = (mix % 1_000) as u32;
    ceiling.mul_f64(f64::from(fraction.max(100)) / 1_000.0)
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
        Ok(Self { http, base, auth, retries: 3, reconnect: live::Reconnect::default(), acting_for: None })
    }

    /// This client, its identity operations (principals, roles, OAuth clients, API tokens) on `tenant`'s
    /// rather than the caller's own: how a platform operator sets up a tenant's first principal and client.
    /// To a tenant's own credentials another tenant does not exist (`NOT_FOUND`).
    pub fn acting_for(&self, tenant: impl Into<String>) -> Self {
        Self { acting_for: Some(cynic::Id::new(tenant)), ..self.clone() }
    }

    /// The public endpoint's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token requests carry now (fetched or refreshed first when needed).
    pub async fn bearer(&self) -> Result<String, Error> {
        self.auth.bearer(&self.http, &self.base).await
    }

    /// Runs `operation`; its data, or the first error as a typed [`Error`]. A query is sent again, with
    /// backoff, when it failed in a way that may pass ([`Error::retryable`]); a mutation never is (see
    /// [`Client::run_idempotent`]).
    pub async fn run<Q, V>(&self, operation: Operation<Q, V>) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        let safe = operation.query.trim_start().starts_with("query");
        self.run_retrying(&operation, safe).await
    }

    /// Runs a mutation that the API applies once however often it is sent (one carrying an idempotency
    /// key, or one whose repeat changes nothing), retrying it as a query is.
    pub async fn run_idempotent<Q, V>(&self, operation: Operation<Q, V>) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        self.run_retrying(&operation, true).await
    }

    /// How many times a safe request is sent again after a failure that may pass (default 3; 0 never).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    async fn run_retrying<Q, V>(&self, operation: &Operation<Q, V>, safe: bool) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        let mut attempt = 0;
        loop {
            match self.run_once(operation).await {
                Err(e) if safe && attempt < self.retries && e.retryable() => {
                    tokio::time::sleep(backoff(attempt, RETRY_BASE, RETRY_CAP)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn run_once<Q, V>(&self, operation: &Operation<Q, V>) -> Result<Q, Error>
    where
        Q: DeserializeOwned + 'static,
        V: Serialize,
    {
        let token = self.bearer().await?;
        match self.send(operation, &token).await {
            // A token the API no longer takes (revoked, or signed with a retired key): a new one, once.
            Err(Error::Api { code: ErrorCode::Unauthenticated, .. }) if self.auth.renewable() => {
                self.auth.forget(&token).await;
                let token = self.bearer().await?;
                self.send(operation, &token).await
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
            .timeout(REQUEST_TIMEOUT)
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
