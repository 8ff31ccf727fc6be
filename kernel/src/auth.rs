//! Bearer-token authentication.
//!
//! Callers send `Authorization: Bearer <token>`. [`Authenticator`] takes two kinds:
//!
//! - JWTs issued by identity: [`JwtVerifier`] checks the signature against keys from a JWKS (a file, a URL,
//!   or in memory; cached and refreshed when an unknown `kid` shows up, so key rotation needs no restart),
//!   then issuer, audience, expiry and not-before, then the revoked-`jti` list. Only asymmetric algorithms
//!   are accepted: `alg: none`, HMAC and any algorithm other than the one the key declares are refused.
//! - API tokens (`cpt_…`): the checksum is checked with no I/O, then an [`ApiTokenSource`] (identity's
//!   database there, its introspection endpoint elsewhere) behind an in-process and a Redis cache, both
//!   dropped by `ApiTokenRevoked` events.
//!
//! There is no switch that turns authentication off. [`LocalSigner`] is an Ed25519 key with its JWKS:
//! identity signs with it, and the dev tools and tests mint tokens with it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::ids::TenantId;

/// Who is calling, as the verified token says.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's `sub`: a user or service principal.
    pub subject: String,
    /// The token's `tid`. Platform operators' tokens carry none.
    pub tenant: Option<TenantId>,
    pub scopes: BTreeSet<String>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `exp` (Unix seconds): long-lived streams end here.
    pub expires_at: i64,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    jti: Option<String>,
}

/// Where the verifier reads its keys from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
    /// A JWKS held in memory (the issuer verifying its own tokens).
    Static(String),
}

impl JwksSource {
    /// `http(s)://…` is a URL; anything else is a file path.
    pub fn parse(raw: &str) -> Self {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            JwksSource::Url(raw.to_owned())
        } else {
            JwksSource::File(PathBuf::from(raw))
        }
    }
}

struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
    /// After a failed fetch, no request waits on another before this; the last good keys keep serving.
    retry_at: Option<Instant>,
    /// The next wait after a failure (doubles up to a minute, reset by a success).
    backoff: Duration,
}

pub struct JwtVerifier {
    issuer: String,
    audience: String,
    source: JwksSource,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    refresh: Mutex<()>,
    /// Keys are refetched this often even when every `kid` is known, so a revoked key stops verifying.
    max_age: Duration,
    /// An unknown `kid` triggers a refetch at most this often, so forged `kid`s cannot hammer the JWKS host.
    min_refetch: Duration,
}

impl JwtVerifier {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, source: JwksSource) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            source,
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client"),
            cache: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
                retry_at: None,
                backoff: Duration::from_secs(1),
            }),
            refresh: Mutex::new(()),
            max_age: Duration::from_secs(300),
            min_refetch: Duration::from_secs(5),
        }
    }

    /// Loads the keys once, so a misconfigured JWKS fails at start-up rather than on the first request.
    pub async fn preload(&self) -> anyhow::Result<()> {
        let keys = self.fetch().await?;
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }

    /// Verifies a bearer token and returns the caller it names.
    pub async fn verify(&self, token: &str) -> Result<Caller> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::unauthenticated("malformed or unsupported bearer token"))?;
        let kid = header.kid.ok_or_else(|| Error::unauthenticated("token has no key id"))?;
        let (key, alg) = self.key(&kid).await?;
        if header.alg != alg {
            return Err(Error::unauthenticated("token algorithm does not match its key"));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            let why = match e.kind() {
                ExpiredSignature => "token has expired",
                ImmatureSignature => "token is not valid yet",
                InvalidIssuer => "token issuer is not trusted",
                InvalidAudience => "token audience is not this service",
                InvalidSignature => "token signature does not verify",
                MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "token is invalid",
            };
            Error::unauthenticated(why)
        })?;
        let claims = data.claims;
        let tenant = match claims.tid {
            Some(t) => Some(TenantId::parse(&t).map_err(|_| Error::unauthenticated("token names a malformed tenant"))?),
            None => None,
        };
        Ok(Caller {
            subject: claims.sub,
            tenant,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm)> {
        let unknown = || Error::unauthenticated("token signed by an unknown key");
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < self.max_age);
            let backing_off = cache.retry_at.is_some_and(|t| Instant::now() < t);
            match cache.keys.get(kid) {
                Some(found) if fresh || backing_off => return Ok(found.clone()),
                None if backing_off => return Err(unknown()),
                _ => {}
            }
        }
        let _single_flight = self.refresh.lock().await;
        {
            let cache = self.cache.read().await;
            let age = cache.fetched_at.map(|t| t.elapsed());
            let fresh = age.is_some_and(|a| a < self.max_age);
            let backing_off = cache.retry_at.is_some_and(|t| Instant::now() < t);
            match cache.keys.get(kid) {
                Some(found) if fresh || backing_off => return Ok(found.clone()),
                None if backing_off || age.is_some_and(|a| a < self.min_refetch) => return Err(unknown()),
                _ => {}
            }
        }
        match self.fetch().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                cache.retry_at = None;
                cache.backoff = Duration::from_secs(1);
            }
            Err(e) => {
                // Keep serving with the keys we have, and let nobody wait on the JWKS host again until the
                // backoff has passed: an outage there must neither log everybody out nor stall every request.
                let mut cache = self.cache.write().await;
                let wait = cache.backoff;
                cache.retry_at = Some(Instant::now() + wait);
                cache.backoff = (wait * 2).min(Duration::from_secs(60));
                tracing::warn!(error = format!("{e:#}"), retry_in_s = wait.as_secs(), "could not refresh JWKS");
            }
        }
        self.cache.read().await.keys.get(kid).cloned().ok_or_else(unknown)
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
        let body = match &self.source {
            JwksSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| anyhow::anyhow!("reading JWKS file {}: {e}", path.display()))?,
            JwksSource::Url(url) => self.http.get(url).send().await?.error_for_status()?.text().await?,
            JwksSource::Static(jwks) => jwks.clone(),
        };
        parse_jwks(&body)
    }
}

/// Parses a JWKS, keeping only signing keys with a `kid` and an asymmetric algorithm.
pub fn parse_jwks(body: &str) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
    let set: JwkSet = serde_json::from_str(body)?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::OctetKey(_), _) => continue, // symmetric keys never verify bearer tokens
            (_, Some(ka)) => match declared(ka) {
                Some(alg) => alg,
                None => continue,
            },
            (AlgorithmParameters::OctetKeyPair(p), None) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
            (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(p), None) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
            (AlgorithmParameters::EllipticCurve(p), None) if p.curve == EllipticCurve::P384 => Algorithm::ES384,
            _ => continue,
        };
        keys.insert(kid, (DecodingKey::from_jwk(jwk)?, alg));
    }
    Ok(keys)
}

fn declared(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        _ => return None,
    })
}

/// A locally generated Ed25519 signing key and its public JWKS.
pub struct LocalSigner {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl LocalSigner {
    pub fn generate(kid: impl Into<String>) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 key generation");
        Self::from_pkcs8(kid, pkcs8.as_ref().to_vec()).expect("fresh key parses")
    }

    pub fn from_pkcs8(kid: impl Into<String>, pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        use ring::signature::KeyPair;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self { kid: kid.into(), public: pair.public_key().as_ref().to_vec(), pkcs8 })
    }

    /// Loads the key from `dir/signing-key` (base64 PKCS#8, the form a secret store holds), creating it
    /// (and `dir/jwks.json`) on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key_path = dir.join("signing-key");
        let signer = if key_path.exists() {
            Self::from_base64(std::fs::read_to_string(&key_path)?.trim())?
        } else {
            let s = Self::from_pkcs8_derived(Self::generate("new").pkcs8)?;
            write_private(&key_path, s.to_base64().as_bytes())?;
            s
        };
        std::fs::write(dir.join("jwks.json"), signer.jwks().to_string())?;
        Ok(signer)
    }

    /// A key from base64 PKCS#8, with its key id derived from the public key.
    pub fn from_base64(b64: &str) -> anyhow::Result<Self> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| anyhow::anyhow!("signing key is not base64 PKCS#8"))?;
        Self::from_pkcs8_derived(der)
    }

    fn from_pkcs8_derived(pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let mut s = Self::from_pkcs8("", pkcs8)?;
        s.kid = format!("k-{}", &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&s.public))[..16]);
        Ok(s)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.pkcs8)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public),
        })
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk()] })
    }

    /// Signs arbitrary claims with this key (tests use it for deliberately bad tokens too).
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::encode(&header, claims, &key).expect("signing with a valid key")
    }

    /// Mints a token for `subject` valid for `ttl`, with the given tenant and scopes.
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        subject: &str,
        tenant: Option<&str>,
        scopes: &[&str],
        ttl: Duration,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now,
            "exp": now + ttl.as_secs() as i64, "scope": scopes.join(" "), "jti": uuid::Uuid::now_v7().to_string(),
        });
        if let Some(t) = tenant {
            claims["tid"] = t.into();
        }
        self.sign(&claims)
    }
}

/// Writes a file only its owner can read (mode 0600), as every key file the project writes is.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let mut f = opts.open(path)?;
        // An existing file keeps its mode on open: tighten it too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents)
    }
    #[cfg(not(unix))]
    {
        opts.open(path)?.write_all(contents)
    }
}

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

/// Routing keys of what ends credentials and sessions ([`Revocation`]), which every subgraph listens to.
pub fn revocation_bindings() -> Vec<String> {
    Revocation::routing_keys()
}

crate::inbound! {
    /// What ends credentials and sessions: identity's revocations and disabled principals, tenancy's
    /// suspended and retired tenants.
    pub enum Revocation {
        ApiToken(crate::contracts::identity::ApiTokenRevoked),
        AccessToken(crate::contracts::identity::AccessTokenRevoked),
        Principal(crate::contracts::identity::PrincipalDisabled),
        TenantSuspended(crate::contracts::tenancy::TenantSuspended),
        TenantRetired(crate::contracts::tenancy::TenantRetired),
    }
}

/// Applies a revocation event (or a listener reset) to `auth`.
pub fn on_revocation(auth: Arc<Authenticator>) -> impl Fn(crate::consumer::Notice) + Send + Sync + 'static {
    use crate::envelope::Inbound;
    move |notice| match notice {
        crate::consumer::Notice::Reset => {
            // Events may have been missed: drop what was cached, reload what was revoked.
            auth.forget_all_api_tokens();
            let auth = auth.clone();
            tokio::spawn(async move {
                if let Err(e) = auth.load_revoked().await {
                    tracing::warn!(error = ?e.code(), "could not reload revoked access tokens");
                }
            });
        }
        crate::consumer::Notice::Event(env) => match Revocation::decode(&env) {
            Inbound::Known(Revocation::ApiToken(e)) => {
                auth.terminate(Termination::Token(e.token_id.clone()));
                let auth = auth.clone();
                tokio::spawn(async move { auth.forget_api_token(&e.token_hash).await });
            }
            Inbound::Known(Revocation::AccessToken(e)) => auth.revoke_jti(&e.jti, e.expires_at),
            Inbound::Known(Revocation::Principal(e)) => {
                auth.terminate(Termination::Principal { tenant: env.tenant_id.clone(), subject: e.principal_id })
            }
            Inbound::Known(Revocation::TenantSuspended(_) | Revocation::TenantRetired(_)) => {
                auth.terminate(Termination::Tenant(env.tenant_id.clone()))
            }
            Inbound::Malformed(t, e) => tracing::error!(error = %e, "malformed {t}"),
            Inbound::Unknown(_) => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl ApiTokenSource for Counting {
        async fn lookup(&self, _raw: &str, _hash: &str) -> Result<Option<ApiTokenInfo>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    }

    pub(crate) fn test_config() -> crate::config::KernelConfig {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            k: crate::config::KernelConfig,
        }
        Wrap::parse_from([
            "t",
            "--database-url=postgres://x@localhost/x",
            "--router-secret=0123456789abcdef0123456789abcdef",
            "--jwt-issuer=iss",
        ])
        .k
    }

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
    async fn a_jwks_outage_backs_off_and_keeps_serving_the_last_good_keys() {
        let signer = LocalSigner::generate("k1");
        let path = std::env::temp_dir().join(format!("cp-jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, signer.jwks().to_string()).unwrap();
        let mut jwt = JwtVerifier::new("iss", "aud", JwksSource::File(path.clone()));
        jwt.preload().await.unwrap();
        jwt.max_age = Duration::ZERO; // every verification now wants a refresh
        std::fs::remove_file(&path).unwrap(); // and every refresh fails
        let now = chrono::Utc::now().timestamp();
        let token = signer.sign(&serde_json::json!({ "iss": "iss", "aud": "aud", "sub": "s", "exp": now + 60 }));
        assert!(jwt.verify(&token).await.is_ok(), "the last good keys keep verifying");
        let retry_at = jwt.cache.read().await.retry_at.expect("a failed refresh sets a backoff");
        assert!(retry_at > Instant::now());
        // Within the backoff nobody waits on the JWKS source.
        let started = Instant::now();
        for _ in 0..100 {
            assert!(jwt.verify(&token).await.is_ok());
        }
        assert_eq!(jwt.cache.read().await.retry_at, Some(retry_at), "no refresh was attempted during the backoff");
        assert!(started.elapsed() < Duration::from_secs(1));
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
