//! OAuth clients of service principals (the client-credentials grant): ids that carry their tenant, secrets
//! hashed at rest and compared in constant time. The token endpoint that uses them is [`crate::oauth`].

pub mod schema;
pub mod store;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use kernel::{Result, TenantId, Work};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::events::{OAuthClientCreated, OAuthClientRevoked, OAuthClientSecretRotated};
use crate::ids::PrincipalId;

/// An OAuth 2.0 client of a service principal (client-credentials grant). Its secret is never readable.
#[derive(SimpleObject, Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub principal_id: PrincipalId,
    /// The most a token for this client can carry (further limited by the principal's roles).
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A client with its secret, returned once at creation or rotation.
#[derive(SimpleObject, Clone, Debug)]
pub struct OAuthClientWithSecret {
    pub client: OAuthClient,
    /// Shown once; only its hash is kept.
    pub client_secret: String,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Equal-length hex digests compared without an early exit.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_base62(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..n).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// `cpc_<tenant>_<random>`: the tenant is readable from the id, so the token endpoint can open the right
/// tenant's transaction before reading anything.
pub fn new_client_id(tenant: &TenantId) -> String {
    format!("cpc_{tenant}_{}", random_base62(16))
}

pub fn client_tenant(client_id: &str) -> Option<TenantId> {
    let rest = client_id.strip_prefix("cpc_")?;
    let (tenant, random) = rest.rsplit_once('_')?;
    (!random.is_empty()).then_some(())?;
    TenantId::try_from(tenant.to_owned()).ok()
}

/// A high-entropy client secret (about 238 bits), shown once.
pub fn new_client_secret() -> String {
    format!("cps_{}", random_base62(40))
}

/// Creates a client for `principal` with at most `scopes` (checked by the caller). Emits
/// `OAuthClientCreated`.
pub async fn create(
    work: &mut Work,
    tenant: &TenantId,
    principal: PrincipalId,
    scopes: Vec<String>,
) -> Result<OAuthClientWithSecret> {
    let (client_id, secret) = (new_client_id(tenant), new_client_secret());
    let client = store::insert_client(work, tenant, &client_id, principal, &sha256_hex(&secret), &scopes).await?;
    work.emit(tenant, &OAuthClientCreated { client_id, principal_id: principal, scopes }).await?;
    Ok(OAuthClientWithSecret { client, client_secret: secret })
}

/// Replaces a client's secret; the old one stops working at once. Emits `OAuthClientSecretRotated`.
pub async fn rotate_secret(work: &mut Work, tenant: &TenantId, client_id: String) -> Result<OAuthClientWithSecret> {
    let secret = new_client_secret();
    let client = store::rotate_client_secret(work, tenant, &client_id, &sha256_hex(&secret)).await?;
    work.emit(tenant, &OAuthClientSecretRotated { client_id }).await?;
    Ok(OAuthClientWithSecret { client, client_secret: secret })
}

/// Revokes a client (revoking it twice is one revocation). Emits `OAuthClientRevoked`.
pub async fn revoke(work: &mut Work, tenant: &TenantId, client_id: String) -> Result<OAuthClient> {
    let client = store::revoke_client(work, tenant, &client_id).await?;
    work.emit(tenant, &OAuthClientRevoked { client_id }).await?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_their_tenant() {
        let t = TenantId::parse("acme-corp").unwrap();
        let id = new_client_id(&t);
        assert_eq!(client_tenant(&id), Some(t));
        assert_eq!(client_tenant(&new_client_id(&TenantId::platform())), Some(TenantId::platform()));
        assert_eq!(client_tenant("cpc_Bad_x"), None);
        assert_eq!(client_tenant("nope"), None);
    }

    #[test]
    fn digests_compare_exactly() {
        let a = sha256_hex("secret");
        assert!(digests_equal(&a, &sha256_hex("secret")));
        assert!(!digests_equal(&a, &sha256_hex("Secret")));
        assert!(!digests_equal(&a, "short"));
    }
}
