//! Feature flags' SQL (platform-wide definitions).

use kernel::db::Tx;
use kernel::Result;
use sqlx::PgPool;

use crate::model::FeatureFlag;

/// Every flag definition: platform catalogue rows, readable without a tenant.
pub async fn all_flags(pool: &PgPool) -> Result<Vec<FeatureFlag>> {
    Ok(sqlx::query_as!(
        FeatureFlag,
        r#"SELECT flag_key AS key, description, enabled, rollout_percent, editions, allow_tenants, deny_tenants,
                  version, updated_at
           FROM feature_flags ORDER BY flag_key"#,
    )
    .fetch_all(pool)
    .await?)
}

pub async fn upsert_flag(tx: &mut Tx, f: &FeatureFlag) -> Result<FeatureFlag> {
    Ok(sqlx::query_as!(
        FeatureFlag,
        r#"INSERT INTO feature_flags (flag_key, description, enabled, rollout_percent, editions, allow_tenants,
                                      deny_tenants)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (flag_key) DO UPDATE
           SET description = EXCLUDED.description, enabled = EXCLUDED.enabled,
               rollout_percent = EXCLUDED.rollout_percent, editions = EXCLUDED.editions,
               allow_tenants = EXCLUDED.allow_tenants, deny_tenants = EXCLUDED.deny_tenants,
               version = feature_flags.version + 1, updated_at = now()
           RETURNING flag_key AS key, description, enabled, rollout_percent, editions, allow_tenants, deny_tenants,
                     version, updated_at"#,
        f.key,
        f.description,
        f.enabled,
        f.rollout_percent,
        &f.editions,
        &f.allow_tenants,
        &f.deny_tenants,
    )
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn delete_flag(tx: &mut Tx, key: &str) -> Result<bool> {
    Ok(sqlx::query!("DELETE FROM feature_flags WHERE flag_key = $1", key).execute(&mut **tx).await?.rows_affected()
        == 1)
}
