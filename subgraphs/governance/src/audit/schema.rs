//! The audit log's share of the query root: the caller's entries in sequence order, and verifying a range
//! of its chain.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object};
use kernel::pagination::Page;
use kernel::{Error, Result};

use super::{store, verify, AuditBrokenLink, AuditVerification, Entry, GENESIS};
use crate::access::{reader, state};

/// Entries read per statement while verifying.
const CHUNK: i64 = 10_000;

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The caller's audit entries in sequence order (one per event of any domain about the tenant).
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn audit_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Entry>> {
        let tenant = reader(ctx)?;
        let page = Page::forward(after, first, 20)?;
        let after = match page.after.as_deref() {
            None => 0,
            Some(c) => c.parse::<i64>().map_err(|_| Error::bad_input("after", "not a cursor of this connection"))?,
        };
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &tenant, after, page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |e| e.sequence.to_string()))
    }

    /// Walks the caller's hash chain over sequences [fromSequence, toSequence] (default: the whole log),
    /// recomputing each `sha256(previous hash ‖ entry)`, and names the first broken link.
    async fn verify_audit(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] from_sequence: i64,
        to_sequence: Option<i64>,
    ) -> Result<AuditVerification> {
        let tenant = reader(ctx)?;
        if from_sequence < 1 {
            return Err(Error::bad_input("fromSequence", "fromSequence is at least 1"));
        }
        let db = &state(ctx).kernel.db;
        let mut tx = db.tenant_tx(&tenant).await?;
        let size = store::size(&mut tx, &tenant).await?;
        let to = to_sequence.unwrap_or(size).min(size);
        if to_sequence.is_some_and(|t| t < from_sequence) {
            return Err(Error::bad_input("toSequence", "toSequence is at least fromSequence"));
        }
        let prev = if from_sequence == 1 {
            GENESIS
        } else {
            match store::hash_of(&mut tx, &tenant, from_sequence - 1).await? {
                Some(h) => {
                    h.try_into().map_err(|_| Error::internal(anyhow::anyhow!("an audit hash is not 32 bytes")))?
                }
                None => {
                    return Err(Error::bad_input(
                        "fromSequence",
                        format!("there is no entry {} to start after", from_sequence - 1),
                    ))
                }
            }
        };
        // Chunk by chunk, each continuing from the last hash checked.
        let (mut next, mut prev, mut verified) = (from_sequence, prev, 0);
        let mut broken = None;
        while next <= to {
            let last = (next + CHUNK - 1).min(to);
            let links = store::links(&mut tx, &tenant, next, last).await?;
            let found = links.len() as i64;
            let tail = links.last().map(|l| l.hash.clone());
            let chunk = verify(next, prev, links);
            verified += chunk.verified;
            if chunk.first_broken.is_some() {
                broken = chunk.first_broken;
                break;
            }
            if found < last - next + 1 {
                // The entries present hold, but the chunk ends short: the next one is missing.
                broken = Some(AuditBrokenLink {
                    sequence: next + found,
                    expected: (next + found).to_string(),
                    found: "nothing".into(),
                    reason: "an entry is missing from the sequence".into(),
                });
                break;
            }
            prev = tail.and_then(|h| h.try_into().ok()).unwrap_or(prev);
            next = last + 1;
        }
        let result = AuditVerification {
            from_sequence,
            to_sequence: broken.as_ref().map_or(to.max(from_sequence - 1), |b| b.sequence),
            verified,
            ok: broken.is_none(),
            first_broken: broken,
        };
        tx.commit().await?;
        Ok(result)
    }
}
