//! Counting the SQL statements a request issues (for N+1 tests).
//!
//! A process-wide tracing subscriber counts sqlx's `sqlx::query` events that happen inside a request's
//! `graphql` span (DataLoader batches run in it too) on the thread that asked, while it asks. Process-wide,
//! because a thread-local subscriber races with tracing's per-call-site interest cache when tests run in
//! parallel (one test's subscriber coming or going can leave another's call sites switched off).

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;

thread_local! {
    static COUNTER: RefCell<Option<Arc<AtomicUsize>>> = const { RefCell::new(None) };
}

struct Counting;

impl<S> tracing_subscriber::Layer<S> for Counting
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let Some(counter) = COUNTER.with(|c| c.borrow().clone()) else { return };
        if ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "graphql")) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Counting);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            eprintln!("a global tracing subscriber was already set: statement counts will read 0");
        }
    });
}

/// Runs `f` on this thread (use a current-thread runtime, `#[tokio::test]`'s default) and returns how many
/// SQL statements requests issued while it ran, with its output.
pub async fn count_statements<F: Future>(f: F) -> (usize, F::Output) {
    install();
    let counter = Arc::new(AtomicUsize::new(0));
    COUNTER.with(|c| *c.borrow_mut() = Some(counter.clone()));
    let out = f.await;
    COUNTER.with(|c| *c.borrow_mut() = None);
    (counter.load(Ordering::SeqCst), out)
}
