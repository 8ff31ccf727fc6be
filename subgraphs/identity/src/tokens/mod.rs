//! API tokens: long-lived credentials of a principal, carrying at most the permissions it holds. Hashed at
//! rest; looked up by hash for every subgraph (through identity's introspection or this crate's
//! [`LocalTokens`]); last-used times kept in Redis and flushed to PostgreSQL, not written per request.

pub mod schema;
pub mod store;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use kernel::auth::{ApiTokenInfo, ApiTokenSource};
use kernel::cache::Cache;
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::{api_token, Authorized, Error, Result, TenantId, Work};

use crate::events::{ApiTokenCreated, ApiTokenRevoked};
use crate::ids::{ApiTokenId, PrincipalId};
use crate::State;

/// An API token's metadata. The token itself is never readable.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub principal_id: PrincipalId,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Kept to within about a minute, without a database write per request.
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A new API token, returned once.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiTokenWithSecret {
    pub api_token: ApiToken,
    /// `cpt_…`: shown once; only its SHA-256 is kept.
    pub token: String,
}

/// A token to create, checked.
pub struct NewApiToken {
    pub principal: PrincipalId,
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_in_days: i32,
}

impl NewApiToken {
    pub fn parse(
        tenant: &TenantId,
        principal: PrincipalId,
        name: &str,
        scopes: Vec<String>,
        days: i32,
    ) -> Result<Self> {
        let name = kernel::error::text("name", name, 200)?;
        if !(1..=365).contains(&days) {
            return Err(Error::bad_input("expiresInDays", "expiresInDays must be between 1 and 365"));
        }
        let scopes = crate::roles::permissions(tenant, scopes)?;
        Ok(Self { principal, name, scopes, expires_in_days: days })
    }
}

/// Creates a token carrying at most what its principal holds now (`FORBIDDEN` naming the first scope it
/// does not). Emits `ApiTokenCreated`.
pub async fn create(work: &mut Work, tenant: &TenantId, new: NewApiToken) -> Result<ApiTokenWithSecret> {
    let held = crate::roles::store::effective_permissions(work, tenant, new.principal).await?;
    if let Some(extra) = new.scopes.iter().find(|s| !held.contains(s)) {
        return Err(Error::forbidden(format!("the principal does not hold `{extra}`")));
    }
    let token = api_token::generate();
    let expires_at = chrono::Utc::now() + chrono::Duration::days(i64::from(new.expires_in_days));
    let hash = api_token::hash(&token);
    let meta = store::insert_api_token(work, tenant, new.principal, &new.name, &hash, &new.scopes, expires_at).await?;
    let event = ApiTokenCreated {
        token_id: meta.id,
        principal_id: new.principal,
        scopes: new.scopes,
        expires_at: expires_at.timestamp(),
    };
    work.emit(tenant, &event).await?;
    Ok(ApiTokenWithSecret { api_token: meta, token })
}

/// Revokes in the database with its event, then drops this replica's cached copies at once (other
/// replicas and subgraphs drop theirs when the event reaches them).
pub async fn revoke(state: &State, tenant: &Authorized, id: ApiTokenId, meta: &EventMeta) -> Result<()> {
    let mut work = Work::tenant(&state.kernel.db, tenant, meta.clone()).await?;
    let hash = store::revoke_api_token(&mut work, tenant, id).await?;
    work.emit(tenant, &ApiTokenRevoked { token_id: id, token_hash: hash.clone() }).await?;
    work.commit().await?;
    state.kernel.auth.forget_api_token(&hash).await;
    Ok(())
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
        let held = crate::roles::store::effective_permissions(&mut tx, &tenant, row.principal_id).await?;
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
        let (ids, at): (Vec<ApiTokenId>, Vec<chrono::DateTime<chrono::Utc>>) = entries
            .into_iter()
            .filter_map(|(id, ts)| Some((id.parse::<ApiTokenId>().ok()?, chrono::DateTime::from_timestamp(ts, 0)?)))
            .unzip();
        let mut tx = db.tenant_tx(&tenant).await?;
        store::touch_api_tokens(&mut tx, &tenant, &ids, &at).await?;
        tx.commit().await?;
        let _: () = redis::cmd("DEL").arg(&taken).query_async(&mut conn).await?;
        flushed += ids.len();
    }
    Ok(flushed)
}
