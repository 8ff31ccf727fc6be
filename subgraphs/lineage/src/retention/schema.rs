//! Retention's share of the query and mutation roots.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::permissions::lineage::{READ, WRITE};
use kernel::{Authorize, Error, Result, Work};

use super::store;
use crate::events::ArtifactRetentionSet;
use crate::state;

/// How long versions of an artifact type are kept.
#[derive(SimpleObject)]
#[graphql(name = "ArtifactRetentionPolicy")]
pub struct PolicyObject {
    pub artifact_type: String,
    /// Days after a version was recorded; then it is deleted with its body (the published version
    /// excepted, and nothing while the tenant is under legal hold).
    pub keep_days: i32,
    pub updated_at: DateTime<Utc>,
}

impl From<store::Policy> for PolicyObject {
    fn from(p: store::Policy) -> Self {
        Self { artifact_type: p.artifact_type, keep_days: p.keep_days, updated_at: p.updated_at }
    }
}

#[derive(Default)]
pub struct RetentionQuery;

#[Object]
impl RetentionQuery {
    /// The tenant's retention policies, by artifact type (types without one are kept for ever).
    async fn artifact_retention(&self, ctx: &Context<'_>) -> Result<Vec<PolicyObject>> {
        let tenant = ctx.authorize(READ)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::policies(&mut tx, tenant.tenant()).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct RetentionMutation;

#[Object]
impl RetentionMutation {
    /// Keeps versions of `artifactType` for `keepDays` (1 to 36,500) after they were recorded, or for ever
    /// when `keepDays` is null (the policy removed; then `null`). Emits `ArtifactRetentionSet`.
    async fn set_artifact_retention(
        &self,
        ctx: &Context<'_>,
        artifact_type: String,
        keep_days: Option<i32>,
    ) -> Result<Option<PolicyObject>> {
        let tenant = ctx.authorize(WRITE)?;
        let artifact_type = artifact_type.trim().to_owned();
        if !crate::artifacts::is_artifact_type(&artifact_type) {
            return Err(Error::bad_input(
                "artifactType",
                "an artifact type is 1–63 lower-case letters, digits, `.`, `_`, `-`",
            ));
        }
        if keep_days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return Err(Error::bad_input("keepDays", "keepDays is 1 to 36,500 (or null: kept for ever)"));
        }
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let policy = match keep_days {
            Some(days) => Some(store::set(&mut work, tenant.tenant(), &artifact_type, days).await?),
            None => {
                store::clear(&mut work, tenant.tenant(), &artifact_type).await?;
                None
            }
        };
        work.emit(tenant.tenant(), &ArtifactRetentionSet { artifact_type, keep_days }).await?;
        work.commit().await?;
        Ok(policy.map(Into::into))
    }
}
