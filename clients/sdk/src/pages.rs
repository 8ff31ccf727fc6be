//! Relay connections as a `Stream`: [`pages`] asks for one page after another (`first`, `after`) and
//! yields their nodes until `hasNextPage` is false, fetching a page only when the consumer wants more.

use std::future::Future;

use futures::{Stream, TryStreamExt};

use crate::Error;

/// A page: its nodes, and the cursor after the last one when there is more.
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub next: Option<String>,
}

/// The nodes of every page `fetch(after)` returns, in order.
pub fn pages<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T, Error>>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    futures::stream::try_unfold((fetch, Some(None::<String>)), |(fetch, after)| async move {
        let Some(after) = after else { return Ok(None) };
        let page = fetch(after).await?;
        let next = page.next.map(Some);
        Ok(Some((futures::stream::iter(page.nodes.into_iter().map(Ok)), (fetch, next))))
    })
    .try_flatten()
}
