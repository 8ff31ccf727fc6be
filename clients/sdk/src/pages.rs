//! Relay connections as a `Stream`: [`pages`] asks for one page after another (`first`, `after`) and
//! yields their nodes until `hasNextPage` is false, fetching a page only when the consumer wants more.

use std::future::Future;

use cynic::Operation;
use futures::{Stream, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::schema;
use crate::{Client, Error};

/// A page: its nodes, and the cursor after the last one when there is more (a page that says there is more
/// but gives no cursor is read as the last).
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub next: Option<String>,
}

/// A Relay connection's `pageInfo`.
#[derive(cynic::QueryFragment, Debug)]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    fn next(self) -> Option<String> {
        if self.has_next_page {
            self.end_cursor
        } else {
            None
        }
    }
}

/// The nodes of every page `fetch(after)` returns, in order.
pub fn pages<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    futures::stream::try_unfold((fetch, Some(None::<String>)), |(fetch, after)| async move {
        let Some(after) = after else { return Ok(None) };
        let page = fetch(after.clone()).await?;
        // A server that gives the same cursor again would be asked for the same page for ever.
        if page.next.is_some() && page.next == after {
            return Err(Error::Http { status: 200, body: "the page's cursor did not advance".into() });
        }
        let next = page.next.map(Some);
        Ok(Some((futures::stream::iter(page.nodes.into_iter().map(Ok)), (fetch, next))))
    })
    .try_flatten()
}

/// The nodes of a Relay connection query: `build(after)` makes the operation for the page after `after`,
/// `connection` takes its nodes and page info out of the answer.
pub(crate) fn paged<'a, T, Q, V, B, C>(
    client: &'a Client,
    build: B,
    connection: C,
) -> impl Stream<Item = Result<T, Error>> + Send + 'a
where
    T: Send + 'a,
    Q: DeserializeOwned + Send + 'static,
    V: Serialize + Send + Sync + 'a,
    B: Fn(Option<String>) -> Operation<Q, V> + Send + 'a,
    C: Fn(Q) -> (Vec<T>, PageInfo) + Copy + Send + Sync + 'a,
{
    pages(move |after| {
        let op = build(after);
        async move {
            let (nodes, info) = connection(client.run(op).await?);
            Ok(Page { nodes, next: info.next() })
        }
    })
}
