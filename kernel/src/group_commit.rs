//! Group commit: the writes of many concurrent callers in one transaction.
//!
//! One commit per write caps a write path at the commit rate — a few thousand a second on a small machine,
//! whatever the rows — because every commit waits for its WAL flush. A [`GroupCommit`] takes items from
//! any number of concurrent callers and hands its writer function every item that arrived while earlier
//! batches were committing (at most `max_batch`, with at most `in_flight` batches writing at once); each
//! caller is answered only once its batch has committed, or with the batch's error. Nothing is acknowledged
//! that is not written, and a caller that gives up waiting does not unwrite its item.
//!
//! ```ignore
//! let writer = GroupCommit::start(Options::default(), move |rows: Vec<Row>| {
//!     let db = db.clone();
//!     async move {
//!         let mut tx = db.tenant_tx(&tenant).await?;
//!         store::append(&mut tx, &rows).await?;
//!         tx.commit().await?;
//!         Ok(())
//!     }
//! });
//! writer.submit(row).await?; // returns once the row's batch has committed
//! ```

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{Error, Result};

/// How a [`GroupCommit`] batches.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The most items one transaction writes.
    pub max_batch: usize,
    /// Batches written at once (each on its own connection): while they commit, the next batch fills.
    pub in_flight: usize,
    /// Items waiting for a batch before [`GroupCommit::submit`] waits for room (backpressure).
    pub queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { max_batch: 512, in_flight: 2, queue: 8_192 }
    }
}

struct Pending<T> {
    item: T,
    done: oneshot::Sender<Result<()>>,
}

/// A batching writer; cheap to clone (the clones share the batches). It stops when the last clone is dropped,
/// after writing what was submitted.
pub struct GroupCommit<T> {
    sender: mpsc::Sender<Pending<T>>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone() }
    }
}

impl<T: Clone + Send + 'static> GroupCommit<T> {
    /// Starts the batching task on the current Tokio runtime. `write` writes one batch in one transaction
    /// and commits it. When a batch of several fails in a way one item could cause, each of its items is
    /// written again alone, so one caller's bad item (a value the database refuses) fails that caller only,
    /// never the others it happened to share a batch with — another tenant's, say. A failure no item causes
    /// (the database unreachable) answers every caller at once, rather than one timeout after another.
    pub fn start<W, F>(options: Options, write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<()>> + Send + 'static,
    {
        assert!(options.max_batch >= 1 && options.in_flight >= 1 && options.queue >= 1, "{options:?}");
        let (sender, mut receiver) = mpsc::channel::<Pending<T>>(options.queue);
        let write = Arc::new(write);
        let slots = Arc::new(Semaphore::new(options.in_flight));
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                // Wait for a free slot before draining, so that what arrives meanwhile joins this batch.
                let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                let mut batch = vec![first];
                while batch.len() < options.max_batch {
                    match receiver.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let write = write.clone();
                tokio::spawn(async move {
                    let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.done)).unzip();
                    let size = items.len();
                    let alone = if size > 1 { Some(items.clone()) } else { None };
                    let result = write(items).await;
                    match (result, alone) {
                        (Ok(()), _) => {
                            for w in waiters {
                                let _ = w.send(Ok(()));
                            }
                        }
                        (Err(e), Some(items)) if one_item_may_have_caused(&e) => {
                            tracing::warn!(error = ?e, size, "a group commit failed; writing its items one by one");
                            for (item, w) in items.into_iter().zip(waiters) {
                                let result = write(vec![item]).await;
                                if let Err(e) = &result {
                                    if e.code() == crate::Code::Internal {
                                        tracing::error!(error = ?e, "a group commit's item failed alone");
                                    }
                                }
                                let _ = w.send(result);
                            }
                        }
                        (Err(e), _) => {
                            if e.code() == crate::Code::Internal {
                                tracing::error!(error = ?e, "a group commit failed");
                            }
                            for w in waiters {
                                let _ = w.send(Err(e.duplicate()));
                            }
                        }
                    }
                    drop(slot);
                });
            }
        });
        Self { sender }
    }

    /// Submits `item` and waits until the batch holding it has committed.
    pub async fn submit(&self, item: T) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.sender
            .send(Pending { item, done })
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("the group commit writer has stopped")))?;
        answer.await.map_err(|_| Error::internal(anyhow::anyhow!("the group commit writer stopped mid-batch")))?
    }
}

/// Whether one item of a batch could have caused `e`, so that writing the items alone may pass for the
/// others: an error the writer gave for the data (bad input, a conflict, …), or a database error of the
/// data — SQLSTATE class 22 (data exception), 23 (integrity constraint) or 40 (a serialization failure or
/// deadlock, which a smaller transaction may avoid). Not an unreachable or failing database (a pool timeout,
/// a dropped connection, classes 08, 53, 57, …): every item alone would fail the same way.
fn one_item_may_have_caused(e: &Error) -> bool {
    match e {
        Error::Internal(cause) => cause.chain().any(|c| match c.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|s| matches!(s.get(..2), Some("22" | "23" | "40")))
            }
            _ => false,
        }),
        other => other.code() != crate::Code::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn concurrent_submissions_share_batches_and_each_is_answered_after_its_write() {
        let written = Arc::new(Mutex::new(Vec::<u32>::new()));
        let batches = Arc::new(AtomicUsize::new(0));
        let (w, b) = (written.clone(), batches.clone());
        let gc = GroupCommit::start(Options { max_batch: 64, in_flight: 1, queue: 1024 }, move |items: Vec<u32>| {
            let (w, b) = (w.clone(), b.clone());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await; // a commit's latency
                b.fetch_add(1, Ordering::SeqCst);
                w.lock().unwrap().extend(items);
                Ok(())
            }
        });
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let (gc, written) = (gc.clone(), written.clone());
                tokio::spawn(async move {
                    gc.submit(i).await.unwrap();
                    assert!(written.lock().unwrap().contains(&i), "answered only after its batch was written");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut all = written.lock().unwrap().clone();
        all.sort();
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "every item written once");
        let n = batches.load(Ordering::SeqCst);
        assert!(n < 200 / 2, "items shared batches: {n} batches for 200 items");
    }

    #[tokio::test]
    async fn a_failed_batch_answers_each_of_its_callers_with_the_error() {
        let gc = GroupCommit::start(Options::default(), |items: Vec<u32>| async move {
            if items.contains(&13) {
                Err(Error::conflict("thirteen"))
            } else {
                Ok(())
            }
        });
        assert_eq!(gc.submit(1).await.map_err(|e| e.code()), Ok(()));
        let e = gc.submit(13).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (crate::Code::Conflict, "thirteen"));
        let gc = GroupCommit::start(Options::default(), |_: Vec<u32>| async move {
            Err(Error::internal(anyhow::anyhow!("the database said no")))
        });
        let e = gc.submit(1).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (crate::Code::Internal, "internal error"));
    }

    /// Holds the only slot with a first item, so that the two submitted next share the following batch;
    /// their answers, and every batch `write` was called with.
    async fn two_sharing_a_batch(
        fail: impl Fn(&[u32]) -> Option<Error> + Send + Sync + 'static,
        second: u32,
        third: u32,
    ) -> (Result<()>, Result<()>, Vec<Vec<u32>>) {
        let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let (seen, fail) = (batches.clone(), Arc::new(fail));
        let gc = GroupCommit::start(Options { max_batch: 64, in_flight: 1, queue: 64 }, move |items: Vec<u32>| {
            let (seen, fail) = (seen.clone(), fail.clone());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                seen.lock().unwrap().push(items.clone());
                fail(&items).map_or(Ok(()), Err)
            }
        });
        let first = tokio::spawn({
            let gc = gc.clone();
            async move { gc.submit(1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (a, b) = tokio::join!(gc.submit(second), gc.submit(third));
        let _ = first.await.unwrap();
        let batches = batches.lock().unwrap().clone();
        (a, b, batches)
    }

    /// Finding: with the database unreachable, a batch of 64 was written again item by item — one timeout
    /// became 64, one after another.
    #[tokio::test]
    async fn an_unreachable_database_answers_the_whole_batch_at_once() {
        let (a, b, batches) =
            two_sharing_a_batch(|items| (items != [1]).then(|| sqlx::Error::PoolTimedOut.into()), 2, 3).await;
        assert_eq!((a.unwrap_err().code(), b.unwrap_err().code()), (crate::Code::Internal, crate::Code::Internal));
        assert_eq!(batches, vec![vec![1], vec![2, 3]], "the failed batch was not written again item by item");
        let (a, b, batches) =
            two_sharing_a_batch(|items| (items != [1]).then(|| Error::unavailable("the database is down")), 2, 3).await;
        assert!(a.is_err() && b.is_err());
        assert_eq!(batches.len(), 2, "{batches:?}");
    }

    /// Finding (Medium): one tenant's value the database refuses failed every tenant's decision in its batch.
    #[tokio::test]
    async fn a_bad_item_fails_only_its_own_caller_when_it_shares_a_batch() {
        // Tenant B's good item and tenant A's poisoned one share a batch.
        let (good, bad, batches) =
            two_sharing_a_batch(|items| items.contains(&0).then(|| Error::bad_input("context", "NUL")), 2, 0).await;
        assert!(good.is_ok(), "the good item of the failed batch is committed: {good:?}");
        assert_eq!(bad.unwrap_err().code(), crate::Code::BadUserInput);
        assert!(batches.iter().any(|b| b.len() == 2), "the two shared a batch: {batches:?}");
        assert!(batches.contains(&vec![2]) && batches.contains(&vec![0]), "then each went alone: {batches:?}");
    }
}
