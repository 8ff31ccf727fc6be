//! What the benchmarks share: latency samples and their summaries.

use std::time::Duration;

/// Latencies in µs, summarised in ms.
#[derive(Clone, Debug, Default)]
pub struct Stats(pub Vec<u64>);

impl Stats {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }

    /// The `p` quantile (0–1) in ms; NaN with no samples.
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_unstable();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0
    }

    pub fn mean(&self) -> f64 {
        self.0.iter().sum::<u64>() as f64 / self.0.len().max(1) as f64 / 1000.0
    }

    /// `p50 / p99 / mean`, in ms.
    pub fn cell(&self) -> String {
        format!("{:.2} / {:.2} / {:.2}", self.pct(0.5), self.pct(0.99), self.mean())
    }

    pub fn extend(&mut self, o: &Stats) {
        self.0.extend_from_slice(&o.0);
    }
}
