//! Lineage: artifacts and their versions, their bodies over HTTP (never in GraphQL), and the lineage graph.

use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
use futures::{Stream, TryStreamExt};

use crate::schema;
use crate::{Client, Error, Json};

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "Artifact")]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub id: cynic::Id,
    pub artifact_type: String,
    pub name: String,
    pub classification: ArtifactClassification,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactClassification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactVersionStatus {
    Draft,
    Generated,
    Validated,
    Rejected,
    Published,
    Superseded,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedAs {
    Draft,
    Generated,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactBodyState {
    Missing,
    Uploading,
    Stored,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactBody {
    pub state: ArtifactBodyState,
    pub size: Option<String>,
    pub path: String,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redaction {
    pub classification: ArtifactClassification,
    pub fields: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[cynic(graphql_type = "ArtifactVersion")]
#[serde(rename_all = "camelCase")]
pub struct ArtifactVersion {
    pub artifact_id: cynic::Id,
    pub version: String,
    pub content_hash: String,
    pub status: ArtifactVersionStatus,
    pub attributes: Option<Json>,
    pub body: Option<ArtifactBody>,
    pub redaction: Option<Redaction>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct RegisterArtifactInput {
    pub id: String,
    pub artifact_type: String,
    pub name: String,
    pub classification: ArtifactClassification,
    pub project_id: Option<cynic::Id>,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct ArtifactVersionRef {
    pub artifact_id: cynic::Id,
    pub version: String,
}

#[derive(cynic::InputObject, Debug, Clone)]
pub struct RecordArtifactVersionInput {
    pub artifact_id: cynic::Id,
    pub version: String,
    pub content_hash: String,
    pub status: RecordedAs,
    pub attributes: Option<Json>,
    pub derived_from: Vec<ArtifactVersionRef>,
    pub produced_by_task_id: Option<cynic::Id>,
}

#[derive(cynic::QueryVariables, Debug)]
struct RegisterVariables {
    input: RegisterArtifactInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RegisterVariables")]
struct Register {
    #[arguments(input: $input)]
    register_artifact: Artifact,
}

#[derive(cynic::QueryVariables, Debug)]
struct RecordVariables {
    input: RecordArtifactVersionInput,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Mutation", variables = "RecordVariables")]
struct Record {
    #[arguments(input: $input)]
    record_artifact_version: ArtifactVersion,
}

#[derive(cynic::QueryVariables, Debug)]
struct VersionVariables {
    id: cynic::Id,
    version: String,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "VersionVariables")]
struct VersionQuery {
    #[arguments(id: $id)]
    artifact: Option<ArtifactWithVersion>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Artifact", variables = "VersionVariables")]
struct ArtifactWithVersion {
    #[arguments(version: $version)]
    version: Option<ArtifactVersion>,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageDirection {
    Upstream,
    Downstream,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageNodeKind {
    Task,
    Artifact,
    Blueprint,
    Deployment,
    Job,
    Run,
    Dataset,
}

#[derive(cynic::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineageEdgeKind {
    Produced,
    Blueprint,
    Derived,
    Deployed,
    Run,
    Input,
    Output,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageHop {
    pub id: String,
    pub kind: LineageNodeKind,
    pub depth: i32,
    pub direction: LineageDirection,
    pub path: Vec<String>,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageEdge {
    pub from: cynic::Id,
    pub to: cynic::Id,
    pub kind: LineageEdgeKind,
}

#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineageGraph {
    pub root: String,
    pub truncated: bool,
    pub nodes: Vec<LineageHop>,
    pub edges: Vec<LineageEdge>,
}

#[derive(cynic::QueryVariables, Debug)]
struct LineageVariables {
    node_id: cynic::Id,
    depth: Option<i32>,
    direction: Option<LineageDirection>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Query", variables = "LineageVariables")]
struct LineageQuery {
    #[arguments(nodeId: $node_id, depth: $depth, direction: $direction)]
    lineage: LineageGraph,
}

/// What an upload stored.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    pub artifact_id: String,
    pub version: String,
    pub content_hash: String,
    pub size: u64,
    /// `false` when the body was there already and was not sent again.
    pub stored_now: bool,
}

/// The `contentHash` of `bytes`, as a version declares it.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A change to one of the tenant's artifact versions, as `artifactChanges` streams it.
#[derive(cynic::QueryFragment, Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactChange {
    /// `ArtifactVersionRecorded`, `ArtifactVersionStatusChanged` or `ArtifactBodyStored`.
    pub event_type: String,
    pub event_id: String,
    /// The version as it is then, redacted as in a query.
    pub version: ArtifactVersion,
}

#[derive(cynic::QueryVariables, Debug)]
struct ChangesVariables {
    artifact_id: Option<cynic::Id>,
    project_id: Option<cynic::Id>,
}

#[derive(cynic::QueryFragment, Debug)]
#[cynic(graphql_type = "Subscription", variables = "ChangesVariables")]
struct Changes {
    #[arguments(artifactId: $artifact_id, projectId: $project_id)]
    artifact_changes: ArtifactChange,
}

impl Client {
    /// `…/api/v1/artifacts/<artifact>/versions/<version>/body`, each segment percent-encoded.
    fn body_url(&self, artifact: &str, version: &str) -> Result<reqwest::Url, Error> {
        let mut url = reqwest::Url::parse(self.base()).map_err(|e| Error::Config(format!("the base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", "artifacts", artifact, "versions", version, "body"]);
        Ok(url)
    }

    /// The tenant's artifact versions as they change (of one artifact or project, when given). Reconnects
    /// when the connection drops; changes made while it was down are not replayed, none is yielded twice.
    pub fn artifact_changes(
        &self,
        artifact_id: Option<cynic::Id>,
        project_id: Option<cynic::Id>,
    ) -> impl Stream<Item = Result<ArtifactChange, Error>> + Send + 'static {
        let changes = self.subscribe(
            move || {
                Changes::build(ChangesVariables { artifact_id: artifact_id.clone(), project_id: project_id.clone() })
            },
            |_| false,
        );
        crate::live::once_each(changes, |e| e.artifact_changes, |e| &e.event_id)
    }

    /// Registers an artifact (again: no change; differently: `CONFLICT`).
    pub async fn register_artifact(&self, input: RegisterArtifactInput) -> Result<Artifact, Error> {
        Ok(self.run_idempotent(Register::build(RegisterVariables { input })).await?.register_artifact)
    }

    /// Records a version, its content declared by `contentHash` ([`content_hash`]); then upload its body
    /// with [`Client::upload_body`].
    pub async fn record_artifact_version(&self, input: RecordArtifactVersionInput) -> Result<ArtifactVersion, Error> {
        Ok(self.run(Record::build(RecordVariables { input })).await?.record_artifact_version)
    }

    /// One version (with its body's state, and what is redacted for this caller).
    pub async fn artifact_version(&self, artifact: &str, version: &str) -> Result<Option<ArtifactVersion>, Error> {
        let vars = VersionVariables { id: cynic::Id::new(artifact), version: version.to_owned() };
        Ok(self.run(VersionQuery::build(vars)).await?.artifact.and_then(|a| a.version))
    }

    /// Uploads a version's body, streamed (a file: `reqwest::Body::from(tokio::fs::File)`): stored only if
    /// its sha256 is the version's `contentHash`; an upload that fails can simply be made again.
    ///
    /// ```no_run
    /// # async fn demo(client: cp_sdk::Client) -> Result<(), cp_sdk::Error> {
    /// let file = tokio::fs::File::open("model.bin").await.expect("the file");
    /// let stored = client.upload_body("model", "1.0.0", reqwest::Body::from(file)).await?;
    /// println!("{} bytes", stored.size);
    /// # Ok(()) }
    /// ```
    pub async fn upload_body(&self, artifact: &str, version: &str, body: reqwest::Body) -> Result<Uploaded, Error> {
        let resp = self
            .http()
            .put(self.body_url(artifact, version)?)
            .bearer_auth(self.bearer().await?)
            .body(body)
            .send()
            .await
            .map_err(Error::Transport)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(Error::Transport)?;
        if status != 200 {
            return Err(Error::from_route(status, &text));
        }
        serde_json::from_str(&text).map_err(|_| Error::Http { status, body: text.chars().take(500).collect() })
    }

    /// Downloads a version's body as it streams, from byte `from` (to resume a broken download).
    pub async fn download_body(
        &self,
        artifact: &str,
        version: &str,
        from: u64,
    ) -> Result<impl Stream<Item = Result<bytes::Bytes, Error>>, Error> {
        let mut req = self.http().get(self.body_url(artifact, version)?).bearer_auth(self.bearer().await?);
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().await.map_err(Error::Transport)?;
        let status = resp.status().as_u16();
        // Resuming needs the part asked for: a whole body answered instead would be appended whole.
        if from > 0 && status == 200 {
            return Err(Error::Http { status, body: "the server sent the whole body, not the part asked for".into() });
        }
        if status != 200 && status != 206 {
            let text = resp.text().await.map_err(Error::Transport)?;
            return Err(Error::from_route(status, &text));
        }
        Ok(resp.bytes_stream().map_err(Error::Transport))
    }

    /// The lineage around a node (`dataset:<ns>/<name>`, `artifact:<id>@<version>`, `task:<id>`, …), both
    /// ways unless `direction` says, to `depth` (default 20).
    pub async fn lineage(
        &self,
        node_id: &str,
        depth: Option<i32>,
        direction: Option<LineageDirection>,
    ) -> Result<LineageGraph, Error> {
        let vars = LineageVariables { node_id: cynic::Id::new(node_id), depth, direction };
        Ok(self.run(LineageQuery::build(vars)).await?.lineage)
    }
}

// `MutationBuilder` is what `Register::build` and `Record::build` use.
#[allow(unused_imports)]
use MutationBuilder as _;
