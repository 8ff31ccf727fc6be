//! A live stream read in the background, for tests of subscriptions and watches.
//!
//! A subscription sees only what happens after it is open, and a test cannot tell from outside when that
//! is; so it acts (renames, records, starts), waits a moment for the item that act should bring, and acts
//! again until one arrives — never a sleep before the first act.

use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

/// How long each act waits for its item before acting again.
const PATIENCE: Duration = Duration::from_secs(3);
/// How long until a test gives up.
const WITHIN: Duration = Duration::from_secs(30);

/// A stream's items as they arrive, read by a task of its own (ended when this is dropped).
pub struct Live<T> {
    items: mpsc::UnboundedReceiver<T>,
    reader: tokio::task::JoinHandle<()>,
}

impl<T: Send + std::fmt::Debug + 'static> Live<T> {
    /// Starts reading `stream`.
    pub fn spawn(stream: impl Stream<Item = T> + Send + 'static) -> Self {
        let (tx, items) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        Self { items, reader }
    }

    /// Does `act` (given the attempt's number, from 0) until an item arrives that `wanted` accepts for what
    /// one of the acts so far returned (a late item of an earlier act counts); that item. Each act waits a
    /// few seconds before the next. Panics after 30 s, or when the stream ends first, naming the last item
    /// refused.
    pub async fn act_until<K, F, Fut>(&mut self, what: &str, mut act: F, wanted: impl Fn(&K, &T) -> bool) -> T
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = K>,
    {
        let deadline = tokio::time::Instant::now() + WITHIN;
        let (mut done, mut refused) = (Vec::new(), None);
        for attempt in 0.. {
            done.push(act(attempt).await);
            let seen = tokio::time::timeout(PATIENCE, async {
                loop {
                    match self.items.recv().await {
                        Some(item) if done.iter().any(|d| wanted(d, &item)) => return item,
                        Some(item) => refused = Some(item),
                        None => panic!("the stream ended while waiting for {what}; the last item: {refused:?}"),
                    }
                }
            });
            if let Ok(item) = seen.await {
                return item;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {what} within {WITHIN:?}; the last item: {refused:?}");
        }
        unreachable!("the attempts are endless")
    }
}

impl<T> Drop for Live<T> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
