//! Issuing and validating credentials: client secrets and API tokens (hashed at rest, compared in constant
//! time) and the access tokens the client-credentials grant issues.

use std::time::Duration;

use kernel::auth::{ApiTokenInfo, ApiTokenSource};
use kernel::cache::Cache;
use kernel::db::Db;
use kernel::{Result, TenantId};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::store;

/// How long an access token from the client-credentials grant lives.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(900);

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

/// API tokens looked up in identity's own database, recording when each was last used in Redis (flushed to
/// PostgreSQL by [`flush_last_used`]) rather than writing on every request.
pub struct LocalTokens {
    pub db: Db,
    pub cache: Cache,
}

pub fn last_used_key(cache: &Cache, tenant: &TenantId) -> String {
    cache.key(tenant, kernel::cache::kind::API_TOKEN_LAST_USED, "all")
}

#[async_trait::async_trait]
impl ApiTokenSource for LocalTokens {
    async fn lookup(&self, _raw: &str, hash: &str) -> Result<Option<ApiTokenInfo>> {
        let mut tx = store::validation_tx(&self.db).await?;
        let row = store::api_token_by_hash(&mut tx, hash).await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let tenant =
            TenantId::try_from(row.tenant_id.clone()).map_err(|e| kernel::Error::internal(anyhow::anyhow!(e)))?;
        // A token carries at most what its principal still holds: unbinding a role narrows its tokens too.
        let mut tx = self.db.tenant_tx(&tenant).await?;
        let held = store::effective_permissions(&mut tx, &tenant, row.principal_id).await?;
        tx.commit().await?;
        let now = chrono::Utc::now();
        let mut conn = self.cache.connection();
        let touched: redis::RedisResult<()> = redis::cmd("HSET")
            .arg(last_used_key(&self.cache, &tenant))
            .arg(row.token_id.to_string())
            .arg(now.timestamp())
            .query_async(&mut conn)
            .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "could not record API token use");
        }
        Ok(Some(ApiTokenInfo {
            active: !row.revoked && row.expires_at > now && !held.is_empty(),
            token_id: row.token_id.to_string(),
            subject: row.principal_id.to_string(),
            tenant: (!tenant.is_platform()).then_some(tenant),
            scopes: row.scopes.into_iter().filter(|s| held.contains(s)).collect(),
            expires_at: row.expires_at.timestamp(),
        }))
    }
}

/// Writes the last-used times collected in Redis to PostgreSQL, tenant by tenant.
pub async fn flush_last_used(db: &Db, cache: &Cache) -> anyhow::Result<usize> {
    let mut conn = cache.connection();
    let keys: Vec<String> = {
        use redis::AsyncCommands;
        let mut scan =
            conn.scan_match::<_, String>(cache.pattern(kernel::cache::kind::API_TOKEN_LAST_USED, "all")).await?;
        let mut keys = Vec::new();
        while let Some(key) = scan.next_item().await {
            keys.push(key);
        }
        keys
    };
    let mut flushed = 0;
    for key in keys {
        let Some(tenant) = cache.tenant_of(&key) else { continue };
        // Take the hash atomically, so uses recorded meanwhile land in a fresh one.
        let taken = format!("{key}:flushing");
        let renamed: redis::RedisResult<()> = redis::cmd("RENAME").arg(&key).arg(&taken).query_async(&mut conn).await;
        if renamed.is_err() {
            continue;
        }
        let entries: Vec<(String, i64)> = redis::cmd("HGETALL").arg(&taken).query_async(&mut conn).await?;
        let (ids, at): (Vec<uuid::Uuid>, Vec<chrono::DateTime<chrono::Utc>>) = entries
            .into_iter()
            .filter_map(|(id, ts)| Some((id.parse::<uuid::Uuid>().ok()?, chrono::DateTime::from_timestamp(ts, 0)?)))
            .unzip();
        let mut tx = db.tenant_tx(&tenant).await?;
        store::touch_api_tokens(&mut tx, &tenant, &ids, &at).await?;
        tx.commit().await?;
        let _: () = redis::cmd("DEL").arg(&taken).query_async(&mut conn).await?;
        flushed += ids.len();
    }
    Ok(flushed)
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
