//! The API's decision writer: `evaluatePolicy` hands its decision to a [`kernel::group_commit::GroupCommit`],
//! which appends the decisions of every concurrent evaluation — of any tenants — and their `PolicyDecided`
//! outbox rows in one transaction, and answers each evaluation once that has committed. A commit per
//! decision would cap appends at the commit rate; see BENCHMARKS.md.

use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::group_commit::{GroupCommit, Options};
use kernel::{outbox, Result};

use super::{decided, store, Decision};

/// A decision and the ids its event carries.
pub type Pending = (Decision, EventMeta);

pub type DecisionWriter = GroupCommit<Pending>;

/// Starts the writer (on the current runtime).
pub fn start(db: Db) -> DecisionWriter {
    GroupCommit::start(Options { in_flight: 4, ..Options::default() }, move |batch: Vec<Pending>| {
        let db = db.clone();
        async move { write(&db, batch).await }
    })
}

/// Appends a batch in one transaction: the decisions of every tenant in it in one statement, and their
/// `PolicyDecided` events in another (each tenant's rows under row-level security for it). Every tenant's rows are
/// in the shared pool today; routing one to a pool of its own would group batches by pool here.
pub async fn write(db: &Db, batch: Vec<Pending>) -> Result<()> {
    let Some((first, _)) = batch.first() else { return Ok(()) };
    let mut tx = db.tenant_tx(&first.tenant_id).await?;
    let decisions: Vec<&Decision> = batch.iter().map(|(d, _)| d).collect();
    store::append(&mut tx, &decisions).await?;
    let events: Vec<_> = batch.iter().map(|(d, _)| decided(d)).collect();
    outbox::enqueue_batch(&mut tx, batch.iter().zip(&events).map(|((d, meta), e)| (&d.tenant_id, meta, e))).await?;
    tx.commit().await?;
    Ok(())
}
