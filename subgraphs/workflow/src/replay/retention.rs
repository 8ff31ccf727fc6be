//! Replay runs are kept 90 days: once a day the worker deletes older runs (their shadow streams with them),
//! but a tenant's under legal hold (`migrations/workflow/1006_replay.sql`, `workflow_replay_retention`).

use kernel::Result;

/// How often the worker runs, and how long runs are kept.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
pub const KEEP_DAYS: i32 = 90;

/// The policy under which the worker reads every tenant's runs and holds.
const RETENTION: &str = "retention";

/// One pass: how many runs it deleted.
pub async fn pass(db: &kernel::db::Db) -> Result<i64> {
    let mut tx = kernel::db::system_tx(db.shared(), RETENTION).await?;
    let deleted: i64 =
        sqlx::query_scalar("SELECT workflow_replay_retention($1)").bind(KEEP_DAYS).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    if deleted > 0 {
        tracing::info!(deleted, "replay runs past their retention deleted");
    }
    Ok(deleted)
}
