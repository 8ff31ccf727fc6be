//! What a pass of a partition worker did — the audit log's (`audit/partitions.rs`) and usage records'
//! (`usage/partitions.rs`): partitions created ahead, expired ones dropped, and expired ones kept whole
//! (a tenant in them under legal hold, rows not yet exported or rolled up), each with the reason.

/// What a pass did.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    pub created: i32,
    pub dropped: Vec<String>,
    /// Partitions past retention that were kept, and why.
    pub kept: Vec<(String, String)>,
}

impl Pass {
    /// From the number of partitions created and the rows of an expiry function: `(partition, dropped,
    /// why it was kept)`.
    pub fn new(created: i32, expired: Vec<(String, bool, Option<String>)>) -> Self {
        let mut pass = Pass { created, ..Default::default() };
        for (name, dropped, reason) in expired {
            if dropped {
                pass.dropped.push(name);
            } else {
                pass.kept.push((name, reason.unwrap_or_default()));
            }
        }
        pass
    }

    /// Logs what the pass did; `what` names the partitioned table's log (`audit`, `usage`).
    pub fn log(&self, what: &str) {
        if self.created > 0 {
            tracing::info!(created = self.created, "{what} partitions created");
        }
        if !self.dropped.is_empty() {
            tracing::info!(dropped = ?self.dropped, "{what} partitions past retention dropped");
        }
        for (partition, reason) in &self.kept {
            tracing::info!(partition, reason, "{what} partition past retention kept");
        }
    }
}
