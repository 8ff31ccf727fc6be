//! Credentials: an OAuth client's (the client-credentials grant at the public endpoint's
//! `/oauth/token`, the token kept and fetched again a minute before it expires) or a token as it is (an
//! API token, or a JWT obtained elsewhere).

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::Error;

#[derive(Clone)]
pub enum Credentials {
    ClientCredentials { client_id: String, client_secret: String, scope: Option<String> },
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ClientCredentials { client_id, scope, .. } => {
                f.debug_struct("ClientCredentials").field("client_id", client_id).field("scope", scope).finish()
            }
            Credentials::Token(_) => f.write_str("Token(…)"),
        }
    }
}

/// How long before its expiry a token is fetched again (half its lifetime for a token shorter than two of
/// these).
pub const REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// The longest a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed refresh (the held token still good), how long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest lifetime taken from a token answer (a larger one is read as this).
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

struct Held {
    token: String,
    /// When to fetch a new one: a minute before expiry, or half-way for a short-lived token.
    refresh_at: Instant,
    expires_at: Instant,
}

pub(crate) struct Auth {
    credentials: Credentials,
    held: Mutex<Option<Held>>,
    /// How many tokens were fetched (for tests and metrics).
    pub(crate) fetched: std::sync::atomic::AtomicUsize,
}

#[derive(serde::Deserialize)]
struct Grant {
    access_token: String,
    expires_in: u64,
}

impl Auth {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self { credentials, held: Mutex::new(None), fetched: Default::default() }
    }

    pub(crate) async fn bearer(&self, http: &reqwest::Client, base: &str) -> Result<String, Error> {
        let (client_id, client_secret, scope) = match &self.credentials {
            Credentials::Token(t) => return Ok(t.clone()),
            Credentials::ClientCredentials { client_id, client_secret, scope } => (client_id, client_secret, scope),
        };
        // One fetch at a time: concurrent requests wait for it rather than each fetching their own.
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref() {
            if Instant::now() < h.refresh_at {
                return Ok(h.token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let fetched = async {
            let resp = http
                .post(format!("{base}/oauth/token"))
                .basic_auth(client_id, Some(client_secret))
                .form(&form)
                .timeout(TOKEN_TIMEOUT)
                .send()
                .await
                .map_err(Error::Transport)?;
            let status = resp.status();
            let text = resp.text().await.map_err(Error::Transport)?;
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                // The token endpoint is down or busy, not refusing: a transient failure.
                return Err(Error::Http { status: status.as_u16(), body: text.chars().take(500).collect() });
            }
            if !status.is_success() {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let why = v.get("error").and_then(|e| e.as_str()).unwrap_or("refused");
                return Err(Error::Auth(format!("{why} (HTTP {})", status.as_u16())));
            }
            serde_json::from_str::<Grant>(&text).map_err(|_| Error::Auth("an unreadable token answer".into()))
        }
        .await;
        let grant = match fetched {
            Ok(grant) => grant,
            // The token held is still good until it expires: a refresh that fails before then is tried
            // again later rather than failing the call.
            Err(e) => match held.as_mut() {
                Some(h) if Instant::now() < h.expires_at => {
                    h.refresh_at = Instant::now() + RETRY_AFTER;
                    return Ok(h.token.clone());
                }
                _ => return Err(e),
            },
        };
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ttl = Duration::from_secs(grant.expires_in.min(MAX_TTL.as_secs()));
        let now = Instant::now();
        *held = Some(Held {
            token: grant.access_token.clone(),
            refresh_at: now + ttl.saturating_sub(REFRESH_BEFORE.min(ttl / 2)),
            expires_at: now + ttl,
        });
        Ok(grant.access_token)
    }

    /// Forgets the held token (the API refused it: revoked, or signed with a retired key), so the next call
    /// fetches a new one.
    pub(crate) async fn forget(&self, token: &str) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.token == token) {
            *held = None;
        }
    }

    /// Whether `token` is no longer the one to use: another is held, or it is due for refreshing (a
    /// subscription the server ended as its token expired is then simply opened again).
    pub(crate) async fn due(&self, token: &str) -> bool {
        match self.held.lock().await.as_ref() {
            Some(h) => h.token != token || Instant::now() >= h.refresh_at,
            None => self.renewable(),
        }
    }

    /// Whether these credentials can fetch a new token (a fixed token cannot).
    pub(crate) fn renewable(&self) -> bool {
        matches!(self.credentials, Credentials::ClientCredentials { .. })
    }
}

impl crate::Client {
    /// How many access tokens this client fetched from the token endpoint so far.
    pub fn tokens_fetched(&self) -> usize {
        self.auth.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }
}
