//! Relay cursor connections, forward-only (`first`/`after`), with keyset pagination underneath.
//!
//! Cursors are opaque to clients (base64url of the row's sort key); the store fetches `first + 1` rows after the
//! decoded key so `hasNextPage` costs no extra query.

use async_graphql::connection::{Connection, Edge};
use async_graphql::OutputType;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::{Error, Result};

/// Largest `first` a client may ask for.
pub const MAX_PAGE: i32 = 100;

/// A connection field's complexity: its selection once per row it may return (`first`, default 20, at
/// most [`MAX_PAGE`]), so `GRAPHQL_MAX_COMPLEXITY` bounds the rows × fields a query can ask for. Use as
/// `#[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]`.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.unwrap_or(20).clamp(1, MAX_PAGE) as usize;
    rows.saturating_mul(child_complexity).saturating_add(1)
}

#[derive(Clone, Debug)]
pub struct Page {
    /// The sort key to start after, decoded from the `after` cursor.
    pub after: Option<String>,
    pub first: i32,
}

impl Page {
    /// Validates `first` (1..=100, default `default`) and decodes `after`.
    pub fn forward(after: Option<String>, first: Option<i32>, default: i32) -> Result<Self> {
        let first = first.unwrap_or(default);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(Error::bad_input("first", format!("first must be between 1 and {MAX_PAGE}")));
        }
        let after = after.map(|c| decode(&c)).transpose()?;
        Ok(Self { after, first })
    }

    /// Rows the store should fetch: one more than asked, to learn whether there is a next page.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.first) + 1
    }

    /// Builds the connection from up to `first + 1` rows in sort order.
    pub fn connection<T: OutputType>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> Connection<String, T> {
        let has_next = rows.len() > self.first as usize;
        rows.truncate(self.first as usize);
        let mut conn = Connection::new(self.after.is_some(), has_next);
        conn.edges.extend(rows.into_iter().map(|row| Edge::new(encode(&key(&row)), row)));
        conn
    }
}

pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k:{key}"))
}

fn decode(cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("k:").map(str::to_owned))
        .ok_or_else(|| Error::bad_input("after", "after is not a cursor this API issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let page = Page::forward(Some(encode("acme")), Some(10), 20).unwrap();
        assert_eq!(page.after.as_deref(), Some("acme"));
        assert_eq!(page.fetch_limit(), 11);
        assert!(Page::forward(Some("!!".into()), None, 20).is_err());
        assert!(Page::forward(Some(URL_SAFE_NO_PAD.encode("x")), None, 20).is_err());
    }

    #[test]
    fn first_is_bounded() {
        assert!(Page::forward(None, Some(0), 20).is_err());
        assert!(Page::forward(None, Some(101), 20).is_err());
        assert_eq!(Page::forward(None, None, 20).unwrap().first, 20);
    }
}
