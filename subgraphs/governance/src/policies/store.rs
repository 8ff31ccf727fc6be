//! Policies' SQL. Every statement names the tenant; row-level security holds it to the transaction's (and
//! lets every tenant read the platform's published and deprecated policies).

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};

use super::cedar::Published;
use super::{Effect, Policy, PolicyStatus};
use crate::ids::PolicyId;

/// Inserts version max+1 of `name` (1 for a new name) as a draft. Two drafts of one name at once: the
/// unique key refuses the second, reported as `CONFLICT`.
#[allow(clippy::too_many_arguments)]
pub async fn insert_next(
    tx: &mut Tx,
    tenant: &TenantId,
    id: PolicyId,
    name: &str,
    effect: Effect,
    description: &str,
    cedar: &str,
    by: &str,
) -> Result<Policy> {
    sqlx::query_as!(
        Policy,
        r#"INSERT INTO policies (tenant_id, policy_id, name, version, effect, description, cedar, created_by)
           SELECT $1, $2, $3, COALESCE(max(version), 0) + 1, $4, $5, $6, $7
           FROM policies WHERE tenant_id = $1 AND name = $3
           RETURNING tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                     description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        id as PolicyId,
        name,
        effect.as_str(),
        description,
        cedar,
        by,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("policies_name_version_key", || {
        Error::conflict(format!("another version of policy `{name}` was drafted at the same time; try again"))
    })
}

pub async fn lock(tx: &mut Tx, tenant: &TenantId, id: PolicyId) -> Result<Option<Policy>> {
    Ok(sqlx::query_as!(
        Policy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                  description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM policies WHERE tenant_id = $1 AND policy_id = $2 FOR UPDATE"#,
        tenant.as_str(),
        id as PolicyId,
    )
    .fetch_optional(&mut **tx)
    .await?)
}

/// Policies by id: the tenant's own and the platform's.
pub async fn by_ids(tx: &mut Tx, tenant: &TenantId, ids: &[PolicyId]) -> Result<Vec<Policy>> {
    Ok(sqlx::query_as!(
        Policy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                  description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM policies WHERE tenant_id IN ($1, 'platform') AND policy_id = ANY($2)"#,
        tenant.as_str(),
        ids as &[PolicyId],
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn update_draft(
    tx: &mut Tx,
    tenant: &TenantId,
    id: PolicyId,
    effect: Effect,
    description: &str,
    cedar: &str,
) -> Result<Policy> {
    sqlx::query_as!(
        Policy,
        r#"UPDATE policies SET effect = $3, description = $4, cedar = $5, updated_at = now()
           WHERE tenant_id = $1 AND policy_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                     description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        id as PolicyId,
        effect.as_str(),
        description,
        cedar,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("policies_immutable", || Error::conflict("a published policy is immutable"))
}

pub async fn delete_draft(tx: &mut Tx, tenant: &TenantId, id: PolicyId) -> Result<()> {
    sqlx::query!("DELETE FROM policies WHERE tenant_id = $1 AND policy_id = $2", tenant.as_str(), id as PolicyId)
        .execute(&mut **tx)
        .await
        .on_constraint("policies_immutable", || Error::conflict("only a draft can be deleted"))?;
    Ok(())
}

/// Moves a policy to Published or Deprecated, stamping it with the next policy-set change.
pub async fn set_status(tx: &mut Tx, tenant: &TenantId, id: PolicyId, to: PolicyStatus) -> Result<Policy> {
    sqlx::query_as!(
        Policy,
        r#"UPDATE policies SET status = $3, updated_at = now(), set_change = nextval('policy_set_changes'),
                  published_at = CASE WHEN $3 = 'Published' THEN now() ELSE published_at END,
                  deprecated_at = CASE WHEN $3 = 'Deprecated' THEN now() ELSE deprecated_at END
           WHERE tenant_id = $1 AND policy_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                     description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                     published_at, deprecated_at"#,
        tenant.as_str(),
        id as PolicyId,
        to.as_str(),
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("policies_immutable", || Error::conflict("the policy is immutable"))
}

/// The version of the set `tenant` evaluates: the highest stamp among its own and the platform's
/// non-draft policies (0 when there are none).
pub async fn set_version(tx: &mut Tx, tenant: &TenantId) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COALESCE(max(set_change), 0) AS "v!" FROM policies
           WHERE tenant_id IN ($1, 'platform') AND status <> 'Draft'"#,
        tenant.as_str(),
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The published policies `tenant` evaluates (its own and the platform's) and the set's version.
pub async fn published_for(tx: &mut Tx, tenant: &TenantId) -> Result<(Vec<Published>, i64)> {
    let rows = sqlx::query!(
        r#"SELECT policy_id, name, version, effect AS "effect: Effect", cedar, set_change AS "set_change!"
           FROM policies WHERE tenant_id IN ($1, 'platform') AND status = 'Published'"#,
        tenant.as_str(),
    )
    .fetch_all(&mut **tx)
    .await?;
    let version = set_version(tx, tenant).await?;
    let policies = rows
        .into_iter()
        .map(|r| Published {
            policy_id: r.policy_id.into(),
            name: r.name,
            version: r.version,
            effect: r.effect,
            cedar: r.cedar,
            set_change: r.set_change,
        })
        .collect();
    Ok((policies, version))
}

/// A page of policies in (name, version, tenant) order after `after`, optionally one name's
/// or one status's, with the platform's when asked.
#[allow(clippy::too_many_arguments)]
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    include_platform: bool,
    name: Option<&str>,
    status: Option<PolicyStatus>,
    after: Option<(&str, i32, &str)>,
    limit: i64,
) -> Result<Vec<Policy>> {
    let after_name = after.map(|a| a.0);
    let after_version = after.map(|a| a.1);
    let after_tenant = after.map(|a| a.2);
    Ok(sqlx::query_as!(
        Policy,
        r#"SELECT tenant_id AS "tenant_id: TenantId", policy_id, name, version, effect AS "effect: Effect",
                  description, cedar, status AS "status: PolicyStatus", created_by, created_at, updated_at,
                  published_at, deprecated_at
           FROM policies
           WHERE (tenant_id = $1 OR ($2 AND tenant_id = 'platform'))
             AND ($3::text IS NULL OR name = $3) AND ($4::text IS NULL OR status = $4)
             AND ($5::text IS NULL OR (name, version, tenant_id) > ($5, $6, $7))
           ORDER BY name, version, tenant_id
           LIMIT $8"#,
        tenant.as_str(),
        include_platform,
        name,
        status.map(|s| s.as_str()),
        after_name,
        after_version,
        after_tenant,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}
