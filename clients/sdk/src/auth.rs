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

/// How long before its expiry a token is fetched again.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(60);

pub(crate) struct Auth {
    credentials: Credentials,
    held: Mutex<Option<(String, Instant)>>,
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
        if let Some((token, expires)) = held.as_ref() {
            if Instant::now() + REFRESH_BEFORE < *expires {
                return Ok(token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let resp = http
            .post(format!("{base}/oauth/token"))
            .basic_auth(client_id, Some(client_secret))
            .form(&form)
            .send()
            .await
            .map_err(Error::Transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(Error::Transport)?;
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let why = v.get("error").and_then(|e| e.as_str()).unwrap_or("refused");
            return Err(Error::Auth(format!("{why} (HTTP {})", status.as_u16())));
        }
        let grant: Grant = serde_json::from_str(&text).map_err(|_| Error::Auth("an unreadable token answer".into()))?;
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *held = Some((grant.access_token.clone(), Instant::now() + Duration::from_secs(grant.expires_in)));
        Ok(grant.access_token)
    }
}

impl crate::Client {
    /// How many access tokens this client fetched from the token endpoint so far.
    pub fn tokens_fetched(&self) -> usize {
        self.auth.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }
}
