//! Catalogue: the tenant's projects (each with its dev, test, staging and prod environments).

use cynic::{MutationBuilder, QueryBuilder};
use futures::Stream;

use super::identity::PageInfo;
use crate::pages::{pages, Page};
use crate::schema;
use crate::{Client, Error, Json};

#[derive(cynic::QueryFragment, Debug, Clone)]
#[cynic(graphql_type = "Project")]
pub struct Project {
    pub id: cynic::Id,
    pub slug: String,
    pub name: String,
    pub status: ProjectStatus,
    pub environments: Vec<Environment>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectStatus {
    Active,
    Archived,
}

#[derive(cynic::QueryFragment, Debug, Clone)]
pub struct Environment {
    pub name: EnvironmentName,
    pub version: i32,
    pub config: Json,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[cynic(rename_all = "lowercase")]
pub enum EnvironmentName {
    Dev,
    Test,
    Staging,
    Prod,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct CreateProjectInput {
    pub slug: String,
    pub name: String,
    pub description: String,
}

#[derive(cynic::QueryVariables, Debug)]
struct CreateVariables {
    input: CreateProjectInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "CreateVariables")]
struct Create {
    #[arguments(input: $input)]
    create_project: Project,
}

#[derive(cynic::QueryVariables, Debug)]
struct ProjectsVariables {
    first: Option<i32>,
    after: Option<String>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "ProjectsVariables")]
struct Projects {
    #[arguments(first: $first, after: $after)]
    projects: ProjectConnection,
}

#[derive(cynic::QueryFragment, Debug)]
struct ProjectConnection {
    nodes: Vec<Project>,
    page_info: PageInfo,
}

impl Client {
    /// Creates a project (it comes with its four environments). Emits `ProjectCreated`.
    ///
    /// ```no_run
    /// # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
    /// use cp_sdk::ops::catalogue::CreateProjectInput;
    /// let input = CreateProjectInput { slug: "payments".into(), name: "Payments".into(), description: String::new() };
    /// let project = client.create_project(input).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_project(&self, input: CreateProjectInput) -> Result<Project, Error> {
        Ok(self.run(Create::build(CreateVariables { input })).await?.create_project)
    }

    /// The tenant's active projects, `per_page` at a time (1–100), as they are read.
    pub fn projects(&self, per_page: i32) -> impl Stream<Item = Result<Project, Error>> + '_ {
        pages(move |after| async move {
            let c = self.run(Projects::build(ProjectsVariables { first: Some(per_page), after })).await?.projects;
            let next = if c.page_info.has_next_page { c.page_info.end_cursor } else { None };
            Ok(Page { nodes: c.nodes, next })
        })
    }
}

#[allow(unused_imports)]
use MutationBuilder as _;
