//! JWTs: the verifier (signature against a JWKS, then issuer, audience, expiry, revoked `jti`s) and JWKS parsing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::ids::TenantId;

use super::*;

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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::auth::LocalSigner;

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
}
