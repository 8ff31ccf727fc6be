//! Lineage: artifacts registered, versions recorded, bodies up and down (with progress), changes live, and
//! the lineage graph.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use cp_sdk::ops::lineage::{
    Artifact, ArtifactClassification, ArtifactVersion, ArtifactVersionRef, LineageDirection, LineageHop,
    RecordArtifactVersionInput, RecordedAs, RegisterArtifactInput,
};
use cp_sdk::Client;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;

use super::{done, json_arg, not_found};
use crate::output::{self, name, opt, Format, Row};

#[derive(Subcommand, Debug)]
pub enum Lineage {
    /// Artifact versions and their bodies.
    #[command(subcommand)]
    Artifact(ArtifactCmd),
    /// What a node (`artifact:<id>@<version>`, `task:<id>`, …) came from, or what came of it.
    Lineage {
        node: String,
        #[arg(long, value_enum, default_value = "upstream")]
        direction: Direction,
        /// Hops to follow (1–100).
        #[arg(long)]
        depth: Option<i32>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

mirror!(Classification => ArtifactClassification { Public, Internal, Confidential, Restricted });
mirror!(Recorded => RecordedAs { Draft, Generated });

#[derive(Subcommand, Debug)]
pub enum ArtifactCmd {
    /// One version, with its body's state (what you may not see is redacted).
    Show { id: String, version: String },
    /// Register an artifact (again with the same values is harmless).
    Register {
        id: String,
        #[arg(long = "type")]
        artifact_type: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "internal")]
        classification: Classification,
        /// The project it belongs to (its id).
        #[arg(long)]
        project: Option<String>,
    },
    /// Record a version, its content hash given or (--hash-of) computed from a file.
    Record {
        id: String,
        version: String,
        /// The content hash (`sha256:<hex>`).
        #[arg(long, required_unless_present = "hash_of", conflicts_with = "hash_of")]
        hash: Option<String>,
        /// A file whose sha256 is the content hash (upload it afterwards with `artifact upload`).
        #[arg(long)]
        hash_of: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "generated")]
        status: Recorded,
        /// Attributes, as a JSON object.
        #[arg(long)]
        attributes: Option<String>,
        /// A version it was derived from, `ID@VERSION` (again for more).
        #[arg(long = "derived-from", value_parser = version_ref)]
        derived_from: Vec<ArtifactVersionRef>,
        /// The agent task that produced it.
        #[arg(long)]
        task: Option<String>,
    },
    /// Upload a version's body from a file (stored only if its sha256 is the version's content hash).
    Upload { id: String, version: String, file: PathBuf },
    /// Download a version's body to a file (resumed when the file is already partly there).
    Download { id: String, version: String, file: PathBuf },
    /// Stream artifact changes as they happen (Ctrl-C ends it); reconnects on its own.
    Watch {
        /// Of one artifact.
        #[arg(long)]
        artifact: Option<String>,
        /// Of one project's artifacts (its id).
        #[arg(long)]
        project: Option<String>,
    },
}

/// `ID@VERSION`.
fn version_ref(s: &str) -> Result<ArtifactVersionRef, String> {
    match s.rsplit_once('@') {
        Some((id, version)) if !id.is_empty() && !version.is_empty() => {
            Ok(ArtifactVersionRef { artifact_id: cynic::Id::new(id), version: version.to_owned() })
        }
        _ => Err(format!("`{s}` is not ID@VERSION")),
    }
}

impl Lineage {
    pub async fn run(self, client: &Client, format: Format) -> anyhow::Result<()> {
        match self {
            Lineage::Lineage { node, direction, depth } => {
                let direction = match direction {
                    Direction::Upstream => Some(LineageDirection::Upstream),
                    Direction::Downstream => Some(LineageDirection::Downstream),
                    Direction::Both => None,
                };
                let graph = client.lineage(&node, depth, direction).await?;
                match format {
                    Format::Json => output::value(&graph),
                    Format::Table => {
                        if graph.truncated {
                            eprintln!("(truncated: the graph is larger than one answer holds)");
                        }
                        output::list(format, &graph.nodes)
                    }
                }
            }
            Lineage::Artifact(ArtifactCmd::Register { id, artifact_type, name, classification, project }) => {
                let input = RegisterArtifactInput {
                    id,
                    artifact_type,
                    name,
                    classification: classification.into(),
                    project_id: project.map(cynic::Id::new),
                };
                output::one(format, &client.register_artifact(input).await?)
            }
            Lineage::Artifact(ArtifactCmd::Record {
                id,
                version,
                hash,
                hash_of,
                status,
                attributes,
                derived_from,
                task,
            }) => {
                let content_hash = match (hash, hash_of) {
                    (Some(hash), _) => hash,
                    (None, Some(file)) => file_hash(&file).await.with_context(|| format!("{}", file.display()))?,
                    (None, None) => anyhow::bail!("give --hash or --hash-of"),
                };
                let input = RecordArtifactVersionInput {
                    artifact_id: cynic::Id::new(id),
                    version,
                    content_hash,
                    status: status.into(),
                    attributes: attributes.map(|a| json_arg("attributes", &a)).transpose()?,
                    derived_from,
                    produced_by_task_id: task.map(cynic::Id::new),
                };
                output::one(format, &client.record_artifact_version(input).await?)
            }
            Lineage::Artifact(ArtifactCmd::Watch { artifact, project }) => {
                let changes = client.artifact_changes(artifact.map(cynic::Id::new), project.map(cynic::Id::new));
                output::follow(format, changes, |c| {
                    let (v, body) = (&c.version, opt(&c.version.body.as_ref().map(|b| name(&b.state))));
                    format!(
                        "{:<30} {}@{} {} body {body}",
                        c.event_type,
                        v.artifact_id.inner(),
                        v.version,
                        name(&v.status)
                    )
                })
                .await
            }
            Lineage::Artifact(ArtifactCmd::Show { id, version }) => {
                let v = client
                    .artifact_version(&id, &version)
                    .await?
                    .ok_or_else(|| not_found(format!("no {id}@{version}")))?;
                output::one(format, &v)
            }
            Lineage::Artifact(ArtifactCmd::Upload { id, version, file }) => {
                let opened = tokio::fs::File::open(&file).await.with_context(|| format!("{}", file.display()))?;
                let size = opened.metadata().await?.len();
                let bar = bytes_bar(size, format!("uploading {id}@{version}"));
                let counted = bar.clone();
                let chunks = tokio_util::io::ReaderStream::new(opened).inspect_ok(move |c| counted.inc(c.len() as u64));
                let stored = client.upload_body(&id, &version, reqwest::Body::wrap_stream(chunks)).await;
                bar.finish_and_clear();
                let stored = stored?;
                match format {
                    Format::Json => output::value(&stored),
                    Format::Table => {
                        let how = if stored.stored_now { "stored" } else { "already stored" };
                        println!("{id}@{version}: {} bytes {how} ({})", stored.size, stored.content_hash);
                        Ok(())
                    }
                }
            }
            Lineage::Artifact(ArtifactCmd::Download { id, version, file }) => {
                let v = client
                    .artifact_version(&id, &version)
                    .await?
                    .ok_or_else(|| not_found(format!("no {id}@{version}")))?;
                let size = v.body.as_ref().and_then(|b| b.size.as_deref()).and_then(|s| s.parse::<u64>().ok());
                // Written to `<file>.part`, resumed from there only, checked against the version's content
                // hash, and only then moved over `file`: a failed or wrong download never touches it.
                let part = PathBuf::from(format!("{}.part", file.display()));
                let have = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
                let from = if size.is_some_and(|s| have <= s) { have } else { 0 };
                let mut out = tokio::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(from > 0)
                    .truncate(from == 0)
                    .open(&part)
                    .await
                    .with_context(|| format!("{}", part.display()))?;
                let bar = bytes_bar(size.unwrap_or(0), format!("downloading {id}@{version}"));
                bar.set_position(from);
                if size != Some(from) {
                    let mut chunks = Box::pin(client.download_body(&id, &version, from).await?);
                    while let Some(chunk) = chunks.next().await {
                        let chunk = chunk?;
                        out.write_all(&chunk).await?;
                        bar.inc(chunk.len() as u64);
                    }
                }
                out.flush().await?;
                drop(out);
                bar.finish_and_clear();
                let got = file_hash(&part).await?;
                if got != v.content_hash {
                    let _ = tokio::fs::remove_file(&part).await;
                    anyhow::bail!("the download's content is {got}, not the version's {}: removed", v.content_hash);
                }
                tokio::fs::rename(&part, &file).await.with_context(|| format!("{}", file.display()))?;
                let said = format!("{id}@{version} → {} ({} bytes, {got})", file.display(), bar.position());
                let json = serde_json::json!({ "file": file, "size": bar.position(), "contentHash": got });
                done(format, json, said)
            }
        }
    }
}

/// A file's content hash, as the API writes it (`sha256:<hex>`), read a MiB at a time.
async fn file_hash(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let (mut hasher, mut buf) = (sha2::Sha256::new(), vec![0; 1 << 20]);
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// A progress bar in bytes on stderr (hidden when stderr is not a terminal).
fn bytes_bar(total: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(total).with_message(message);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

impl Row for LineageHop {
    fn headers() -> &'static [&'static str] {
        &["NODE", "KIND", "DEPTH", "DIRECTION"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.id.clone(), name(&self.kind), self.depth.to_string(), name(&self.direction)]
    }
}

impl Row for ArtifactVersion {
    fn headers() -> &'static [&'static str] {
        &["ARTIFACT", "VERSION", "STATUS", "CONTENT", "BODY", "REDACTED"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.artifact_id.inner().to_owned(),
            self.version.clone(),
            name(&self.status),
            self.content_hash.clone(),
            opt(&self.body.as_ref().map(|b| name(&b.state))),
            opt(&self.redaction.as_ref().map(|r| r.fields.join(", "))),
        ]
    }
}

impl Row for Artifact {
    fn headers() -> &'static [&'static str] {
        &["ID", "TYPE", "NAME", "CLASSIFICATION"]
    }
    fn row(&self) -> Vec<String> {
        vec![self.id.inner().to_owned(), self.artifact_type.clone(), self.name.clone(), name(&self.classification)]
    }
}
