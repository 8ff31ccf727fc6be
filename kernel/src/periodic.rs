//! Periodic workers: partition upkeep, retention, expiry, rollups and exports all run one pass at start,
//! then one every interval, until shutdown. [`every`] is that loop, so a worker is only its pass.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `pass` now and then every `interval` until `shutdown` is cancelled (a pass under way finishes
/// first). A pass logs what it did; a failed one is logged as `"{what} failed; retrying later"` with its
/// error chain, and the next pass comes at the usual time.
pub async fn every<F, Fut>(what: &str, interval: Duration, shutdown: CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<()>>,
{
    loop {
        if let Err(e) = pass().await {
            let e = anyhow::Error::from(e);
            tracing::warn!(error = format!("{e:#}"), "{what} failed; retrying later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;

    #[tokio::test]
    async fn passes_run_at_start_and_every_interval_through_failures_until_shutdown() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let passes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = tokio::time::Instant::now();
        let worker = tokio::spawn({
            let (passes, shutdown) = (passes.clone(), shutdown.clone());
            every("test pass", Duration::from_millis(200), shutdown, move || {
                let n = passes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let tx = tx.clone();
                async move {
                    tx.send(tokio::time::Instant::now()).unwrap();
                    // Every other pass fails: the loop goes on.
                    if n % 2 == 1 {
                        Err(crate::Error::internal(anyhow::anyhow!("pass {n} failed")))
                    } else {
                        Ok(())
                    }
                }
            })
        });
        let mut at = Vec::new();
        while at.len() < 4 {
            at.push(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a pass comes").unwrap());
        }
        assert!(at[0] - started < Duration::from_millis(200), "the first pass runs at start, not after an interval");
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(200), "then one per interval, failed passes included");
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), worker).await.expect("stops at shutdown").unwrap();
    }
}
