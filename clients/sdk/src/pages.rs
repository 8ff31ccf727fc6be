//! Relay connections as a `Stream`: [`pages`] asks for one page after another (`first`, `after`) and
//! yields their nodes until `hasNextPage` is false, fetching a page only when the consumer wants more.

use std::future::Future;

use futures::{Stream, TryStreamExt};

use crate::Error;

/// A page: its nodes, and the cursor after the last one when there is more (a page that says there is more
/// but gives no cursor is read as the last).
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
