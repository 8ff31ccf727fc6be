//! The authenticator: JWTs and API tokens behind bounded caches, revocation, and live-session termination.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::TenantId;

use super::*;

/// Why live sessions (WebSocket subscriptions) must end now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Termination {
    /// An API token (by its id) or an access token (by its `jti`) was revoked.
    Token(String),
    /// A principal was disabled.
    Principal { tenant: TenantId, subject: String },
    /// A tenant was suspended or retired.
    Tenant(TenantId),
}

impl Termination {
    /// Whether a session of `caller` must end.
    pub fn ends(&self, caller: &Caller) -> bool {
        let tenant = caller.tenant.clone().unwrap_or_else(TenantId::platform);
        match self {
            Termination::Token(id) => caller.token_id.as_deref() == Some(id.as_str()),
            Termination::Principal { tenant: t, subject } => *t == tenant && caller.subject == *subject,
            Termination::Tenant(t) => caller.tenant.as_ref() == Some(t),
        }
    }
}

/// Authenticates bearer tokens: JWTs locally (signature, claims, revoked `jti`s), API tokens through a
/// [`ApiTokenSource`] behind an in-process cache and a Redis cache, both dropped on revocation events.
///
/// The in-process caches are bounded (`TOKEN_CACHE_CAPACITY`) and keep an "unknown token" answer for a
/// few seconds only. Redis is never trusted to say who a caller is: an entry there carries an HMAC-SHA256
/// over the token hash and the answer, keyed from `INTERNAL_SECRET`, and an entry whose MAC does not verify
/// is ignored (without that key, nothing is cached in Redis).
pub struct Authenticator {
    pub jwt: JwtVerifier,
    api_tokens: Option<Arc<dyn ApiTokenSource>>,
    cache: Option<crate::cache::Cache>,
    known: moka::sync::Cache<String, ApiTokenInfo>,
    unknown: moka::sync::Cache<String, ()>,
    /// Revoked access-token ids and when the tokens expire anyway.
    revoked: std::sync::RwLock<HashMap<String, i64>>,
    mac_key: Option<ring::hmac::Key>,
    terminations: tokio::sync::broadcast::Sender<Termination>,
}

/// How long a validation stays in the in-process cache, and an "unknown" answer.
const KNOWN_TTL: Duration = Duration::from_secs(30);
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// How long a validation stays in Redis.
const REDIS_TTL: Duration = Duration::from_secs(60);

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    info: Option<ApiTokenInfo>,
    /// When it was sealed (Unix seconds), under the MAC: a captured entry cannot be replayed later.
    at: i64,
    mac: String,
}

impl Authenticator {
    /// `api_tokens: None` refuses API tokens (JWTs only). `cfg` gives the cache capacity and the internal
    /// secret the Redis entries are authenticated with.
    pub fn new(
        jwt: JwtVerifier,
        api_tokens: Option<Arc<dyn ApiTokenSource>>,
        cache: Option<crate::cache::Cache>,
        cfg: &crate::config::KernelConfig,
    ) -> Self {
        use secrecy::ExposeSecret;
        let mac_key = cfg.internal_secret.as_ref().map(|secret| {
            let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
            let derived = ring::hmac::sign(&root, b"cp api-token cache v1");
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
        });
        let capacity = cfg.token_cache_capacity;
        Self {
            jwt,
            api_tokens,
            cache,
            known: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(KNOWN_TTL).build(),
            unknown: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(UNKNOWN_TTL).build(),
            revoked: Default::default(),
            mac_key,
            terminations: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Sessions that must end (revoked tokens, disabled principals, suspended tenants), for live
    /// connections to watch.
    pub fn terminations(&self) -> tokio::sync::broadcast::Receiver<Termination> {
        self.terminations.subscribe()
    }

    /// Ends the live sessions `t` names on this replica.
    pub fn terminate(&self, t: Termination) {
        // Nobody listening is normal.
        let _ = self.terminations.send(t);
    }

    fn revoked_key(cache: &crate::cache::Cache) -> String {
        cache.key(&TenantId::platform(), crate::cache::kind::REVOKED_JTI, "all")
    }

    /// Revokes an access token: refused here at once, recorded in Redis (so a replica that starts later
    /// loads it, and one that restarts keeps it), its live sessions ended. The issuer calls this before
    /// publishing `AccessTokenRevoked`, which tells the running replicas.
    pub async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<()> {
        self.revoke_jti(jti, expires_at);
        if let Some(c) = &self.cache {
            let mut conn = c.connection();
            let key = Self::revoked_key(c);
            let now = chrono::Utc::now().timestamp();
            // The key lives as long as its longest-lived entry (`GT`: an earlier expiry never shortens it).
            let recorded: redis::RedisResult<()> = redis::pipe()
                .zadd(&key, jti, expires_at)
                .zrembyscore(&key, "-inf", now)
                .cmd("EXPIREAT")
                .arg(&key)
                .arg(expires_at.max(now + 1))
                .arg("GT")
                .query_async(&mut conn)
                .await;
            // Best effort: the event still reaches every running replica; only a replica starting within the
            // token's remaining life would miss it.
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "could not record a revoked access token in Redis");
            }
        }
        Ok(())
    }

    /// Loads the revoked access-token ids recorded in Redis (at start, and when the revocation listener
    /// reconnects after missing events).
    pub async fn load_revoked(&self) -> Result<usize> {
        let Some(c) = &self.cache else { return Ok(0) };
        let now = chrono::Utc::now().timestamp();
        let entries: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(Self::revoked_key(c))
            .arg(now)
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut c.connection())
            .await?;
        let mut revoked = self.revoked.write().expect("revocation lock");
        revoked.retain(|_, exp| *exp > now);
        let n = entries.len();
        revoked.extend(entries);
        Ok(n)
    }

    fn api_token_key(cache: &crate::cache::Cache, hash: &str) -> String {
        cache.key(&TenantId::platform(), crate::cache::kind::API_TOKEN, hash)
    }

    fn mac(&self, hash: &str, info: &Option<ApiTokenInfo>, at: i64) -> Option<String> {
        let key = self.mac_key.as_ref()?;
        let body = serde_json::to_vec(&(hash, info, at)).ok()?;
        Some(hex::encode(ring::hmac::sign(key, &body).as_ref()))
    }

    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        if crate::api_token::looks_like(token) {
            return self.api_token(token).await;
        }
        let caller = self.jwt.verify(token).await?;
        if let Some(jti) = &caller.token_id {
            if self.revoked.read().expect("revocation lock").contains_key(jti) {
                return Err(Error::unauthenticated("token has been revoked"));
            }
        }
        Ok(caller)
    }

    /// The answer for an API token's hash from Redis, if an entry is there and its MAC verifies.
    async fn redis_answer(&self, hash: &str) -> Option<Option<ApiTokenInfo>> {
        let (cache, key) = (self.cache.as_ref()?, self.mac_key.as_ref()?);
        let sealed: Sealed = cache.get_json(&Self::api_token_key(cache, hash)).await?;
        // Older than any entry this code writes: a replay of a captured one.
        let age = chrono::Utc::now().timestamp() - sealed.at;
        if !(0..=REDIS_TTL.as_secs() as i64).contains(&age) {
            return None;
        }
        let body = serde_json::to_vec(&(hash, &sealed.info, sealed.at)).ok()?;
        let tag = hex::decode(&sealed.mac).ok()?;
        match ring::hmac::verify(key, &body, &tag) {
            Ok(()) => Some(sealed.info),
            Err(_) => {
                tracing::warn!("ignored an API-token cache entry in Redis whose MAC does not verify");
                None
            }
        }
    }

    async fn api_token(&self, raw: &str) -> Result<Caller> {
        // The checksum catches typos and made-up tokens before any store is asked.
        if !crate::api_token::well_formed(raw) {
            return Err(Error::unauthenticated("malformed API token"));
        }
        let source =
            self.api_tokens.as_ref().ok_or_else(|| Error::unauthenticated("API tokens are not accepted here"))?;
        let hash = crate::api_token::hash(raw);
        let info = if let Some(info) = self.known.get(&hash) {
            Some(info)
        } else if self.unknown.contains_key(&hash) {
            None
        } else {
            let info = match self.redis_answer(&hash).await {
                Some(info) => info,
                None => {
                    let info = source.lookup(raw, &hash).await?;
                    let at = chrono::Utc::now().timestamp();
                    if let (Some(c), Some(mac)) = (&self.cache, self.mac(&hash, &info, at)) {
                        let sealed = Sealed { info: info.clone(), at, mac };
                        let ttl = if info.is_some() { REDIS_TTL } else { UNKNOWN_TTL };
                        c.put_json(&Self::api_token_key(c, &hash), &sealed, ttl).await;
                    }
                    info
                }
            };
            match &info {
                Some(i) => self.known.insert(hash, i.clone()),
                None => self.unknown.insert(hash, ()),
            }
            info
        };
        match info {
            Some(i) if i.active && i.expires_at > chrono::Utc::now().timestamp() => Ok(Caller {
                subject: i.subject,
                tenant: i.tenant,
                scopes: i.scopes.into_iter().collect(),
                token_id: Some(i.token_id),
                expires_at: i.expires_at,
            }),
            _ => Err(Error::unauthenticated("API token is unknown, expired or revoked")),
        }
    }

    /// Drops every cached copy of an API token's validation (on `ApiTokenRevoked`).
    pub async fn forget_api_token(&self, hash: &str) {
        self.known.invalidate(hash);
        if let Some(c) = &self.cache {
            c.invalidate(&[Self::api_token_key(c, hash)]).await;
        }
    }

    /// Refuses an access token on this replica from now on and ends its live sessions (on
    /// `AccessTokenRevoked`); forgotten once it expires anyway.
    pub fn revoke_jti(&self, jti: &str, expires_at: i64) {
        let now = chrono::Utc::now().timestamp();
        {
            let mut revoked = self.revoked.write().expect("revocation lock");
            revoked.retain(|_, exp| *exp > now);
            revoked.insert(jti.to_owned(), expires_at);
        }
        self.terminate(Termination::Token(jti.to_owned()));
    }

    /// Drops every in-process API-token entry (the revocation listener reconnected and may have missed events).
    pub fn forget_all_api_tokens(&self) {
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// How many API-token answers the in-process caches hold (for tests of their bound).
    pub fn cached_api_tokens(&self) -> u64 {
        self.known.run_pending_tasks();
        self.unknown.run_pending_tasks();
        self.known.entry_count() + self.unknown.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::auth::{JwksSource, JwtVerifier, LocalSigner};
    use crate::error::Result;

    struct Counting(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl ApiTokenSource for Counting {
        async fn lookup(&self, _raw: &str, _hash: &str) -> Result<Option<ApiTokenInfo>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    }

    use crate::config::test_config;

    fn authenticator(calls: &Arc<AtomicUsize>) -> Authenticator {
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(r#"{"keys":[]}"#.into()));
        Authenticator::new(jwt, Some(Arc::new(Counting(calls.clone()))), None, &test_config())
    }

    #[tokio::test]
    async fn a_token_with_a_broken_checksum_is_refused_without_any_lookup() {
        let calls = Arc::new(AtomicUsize::new(0));
        let auth = authenticator(&calls);
        let good = crate::api_token::generate();
        let mut typo = good.clone().into_bytes();
        typo[8] = if typo[8] == b'x' { b'y' } else { b'x' };
        let err = auth.authenticate(std::str::from_utf8(&typo).unwrap()).await.unwrap_err();
        assert_eq!(err.code(), crate::Code::Unauthenticated);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "a malformed token must not reach any store");
        // A well-formed one does reach the store (and, unknown there, is refused).
        assert!(auth.authenticate(&good).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The refusal is cached: asking again does not hit the store.
        assert!(auth.authenticate(&good).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_forged_redis_entry_grants_nothing() {
        let calls = Arc::new(AtomicUsize::new(0));
        let ns = format!("cp-t-forge-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let cache = crate::cache::Cache::connect(&"redis://127.0.0.1:6379".to_owned().into(), &ns).await.unwrap();
        let mut cfg = test_config();
        cfg.internal_secret = Some("internal-secret-of-at-least-32-bytes!!".to_owned().into());
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(r#"{"keys":[]}"#.into()));
        let auth = Authenticator::new(jwt, Some(Arc::new(Counting(calls.clone()))), Some(cache.clone()), &cfg);
        let token = crate::api_token::generate();
        let hash = crate::api_token::hash(&token);
        let key = Authenticator::api_token_key(&cache, &hash);
        let forged = ApiTokenInfo {
            active: true,
            token_id: "t".into(),
            subject: "attacker".into(),
            tenant: None,
            scopes: vec![crate::permissions::PLATFORM_ADMIN.into()],
            expires_at: chrono::Utc::now().timestamp() + 3600,
        };
        // Someone with write access to Redis plants an answer: without a MAC, with a wrong one, and (the
        // old format) bare.
        for entry in [
            serde_json::json!({ "info": forged, "at": chrono::Utc::now().timestamp(), "mac": "" }),
            serde_json::json!({ "info": forged, "at": chrono::Utc::now().timestamp(), "mac": "00".repeat(32) }),
            serde_json::to_value(Some(&forged)).unwrap(),
        ] {
            cache.put_json(&key, &entry, Duration::from_secs(60)).await;
            auth.forget_all_api_tokens();
            let err = auth.authenticate(&token).await.unwrap_err();
            assert_eq!(err.code(), crate::Code::Unauthenticated);
        }
        // Even a correctly sealed answer is refused once it is older than any entry the cache keeps: a
        // captured one (from before a revocation) cannot be put back.
        let old = chrono::Utc::now().timestamp() - 3600;
        let replayed =
            Sealed { info: Some(forged.clone()), at: old, mac: auth.mac(&hash, &Some(forged.clone()), old).unwrap() };
        cache.put_json(&key, &replayed, Duration::from_secs(60)).await;
        auth.forget_all_api_tokens();
        assert_eq!(auth.authenticate(&token).await.unwrap_err().code(), crate::Code::Unauthenticated);
        assert_eq!(calls.load(Ordering::SeqCst), 4, "each forged or replayed entry was ignored and the source asked");
        // What the authenticator itself stores verifies, and is used instead of asking the source again.
        auth.forget_all_api_tokens();
        let _ = auth.authenticate(&token).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4, "its own sealed answer came from Redis");
        cache.invalidate(&[key]).await;
    }

    #[tokio::test]
    async fn in_process_token_caches_are_bounded() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut cfg = test_config();
        cfg.token_cache_capacity = 10;
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(r#"{"keys":[]}"#.into()));
        let auth = Authenticator::new(jwt, Some(Arc::new(Counting(calls.clone()))), None, &cfg);
        for _ in 0..500 {
            let _ = auth.authenticate(&crate::api_token::generate()).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 500);
        assert!(auth.cached_api_tokens() <= 10, "{} entries cached", auth.cached_api_tokens());
    }

    #[tokio::test]
    async fn a_revoked_access_token_stays_revoked_for_a_replica_that_starts_later() {
        let signer = LocalSigner::generate("k1");
        let ns = format!("cp-t-rev-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let cache = crate::cache::Cache::connect(&"redis://127.0.0.1:6379".to_owned().into(), &ns).await.unwrap();
        let replica = || {
            let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(signer.jwks().to_string()));
            Authenticator::new(jwt, None, Some(cache.clone()), &test_config())
        };
        let now = chrono::Utc::now().timestamp();
        let token = signer
            .sign(&serde_json::json!({ "iss": "iss", "aud": "aud", "sub": "s", "exp": now + 60, "jti": "j-late" }));
        let first = replica();
        let mut sessions = first.terminations();
        first.revoke_access_token("j-late", now + 60).await.unwrap();
        assert_eq!(sessions.try_recv().unwrap(), Termination::Token("j-late".into()), "live sessions are told");
        assert!(first.authenticate(&token).await.is_err());
        // A replica started afterwards (or this one restarted) has heard no event, but loads the set.
        let later = replica();
        assert!(later.authenticate(&token).await.is_ok(), "before loading it knows nothing");
        assert_eq!(later.load_revoked().await.unwrap(), 1);
        assert_eq!(later.authenticate(&token).await.unwrap_err().code(), crate::Code::Unauthenticated);
        cache.invalidate(&[Authenticator::revoked_key(&cache)]).await;
    }

    #[test]
    fn terminations_name_exactly_the_sessions_they_end() {
        let caller = |tenant: Option<&str>, subject: &str, token: &str| Caller {
            subject: subject.into(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
            scopes: Default::default(),
            token_id: Some(token.into()),
            expires_at: 0,
        };
        let acme = TenantId::parse("acme").unwrap();
        let a = caller(Some("acme"), "p-1", "t-1");
        assert!(Termination::Token("t-1".into()).ends(&a));
        assert!(!Termination::Token("t-2".into()).ends(&a));
        assert!(Termination::Principal { tenant: acme.clone(), subject: "p-1".into() }.ends(&a));
        assert!(!Termination::Principal { tenant: TenantId::parse("other").unwrap(), subject: "p-1".into() }.ends(&a));
        assert!(Termination::Tenant(acme.clone()).ends(&a));
        let operator = caller(None, "p-1", "t-9");
        assert!(!Termination::Tenant(acme).ends(&operator), "an operator's session is not a tenant's");
        assert!(Termination::Principal { tenant: TenantId::platform(), subject: "p-1".into() }.ends(&operator));
    }

    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cp-keys-{}", uuid::Uuid::new_v4()));
        let signer = LocalSigner::load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(dir.join("signing-key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(LocalSigner::load_or_create(&dir).unwrap().kid(), signer.kid());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn revoked_access_tokens_are_refused() {
        let signer = LocalSigner::generate("k1");
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(signer.jwks().to_string()));
        let auth = Authenticator::new(jwt, None, None, &test_config());
        let now = chrono::Utc::now().timestamp();
        let token =
            signer.sign(&serde_json::json!({ "iss": "iss", "aud": "aud", "sub": "s", "exp": now + 60, "jti": "j-1" }));
        assert!(auth.authenticate(&token).await.is_ok());
        auth.revoke_jti("j-1", now + 60);
        assert_eq!(auth.authenticate(&token).await.unwrap_err().code(), crate::Code::Unauthenticated);
        // API tokens are refused where no source is configured.
        assert!(auth.authenticate(&crate::api_token::generate()).await.is_err());
    }
}
