//! Identity: the tenant's principals, as a stream over their pages.

use cynic::QueryBuilder;
use futures::Stream;

use crate::pages::{pages, Page};
use crate::schema;
use crate::{Client, DateTime, Error, Uuid};

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Principal")]
pub struct Principal {
    pub id: Uuid,
    pub display_name: String,
    pub email: Option<String>,
    pub kind: PrincipalKind,
    pub created_at: DateTime,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Service,
}

#[derive(cynic::QueryVariables, Debug)]
struct PrincipalsVariables {
    first: Option<i32>,
    after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "PrincipalsVariables")]
struct Principals {
    #[arguments(first: $first, after: $after)]
    principals: PrincipalConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct PrincipalConnection {
    nodes: Vec<Principal>,
    page_info: PageInfo,
}

#[derive(cynic::QueryFragment, Debug)]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl Client {
    /// The tenant's principals, `per_page` at a time (1–100), as they are read.
    ///
    /// ```no_run
    /// # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
    /// use futures::TryStreamExt;
    /// let everyone: Vec<_> = client.principals(100).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn principals(&self, per_page: i32) -> impl Stream<Item = Result<Principal, Error>> + '_ {
        pages(move |after| async move {
            let op = Principals::build(PrincipalsVariables { first: Some(per_page), after });
            let c = self.run(op).await?.principals;
            let next = if c.page_info.has_next_page { c.page_info.end_cursor } else { None };
            Ok(Page { nodes: c.nodes, next })
        })
    }
}
