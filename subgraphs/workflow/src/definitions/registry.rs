//! The platform registry: definitions shipped in the repository (`subgraphs/workflow/registry/*.json`, each
//! `{ key, version, name, description, spec }`), loaded as the platform's by `workflow provision` and at
//! every start, so an upgrade brings its new versions. Loading is idempotent: a version already there with
//! the same steps is left alone (a second load changes nothing), a new one is published, and a file that
//! changes a published version is refused — published versions are immutable, so a change is a new file
//! version. The registry's skills are checked when an instance starts (catalogue's platform skills may
//! be published after the registry loads).

use kernel::access::Authorized;
use kernel::db::Db;
use kernel::envelope::EventMeta;
use kernel::{Error, Result, TenantId, Work};

use super::spec::Spec;
use super::{content_hash, store, NewDefinition};
use crate::events;

/// The registry files, embedded at build time.
pub const FILES: &[(&str, &str)] = &[
    ("content-review.json", include_str!("../../registry/content-review.json")),
    ("parallel-checks.json", include_str!("../../registry/parallel-checks.json")),
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    key: String,
    version: i32,
    name: String,
    description: String,
    spec: Spec,
}

/// What a load did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    pub published: usize,
    pub unchanged: usize,
}

/// Each file's definition, checked.
pub fn entries() -> anyhow::Result<Vec<(&'static str, Entry)>> {
    FILES
        .iter()
        .map(|(file, text)| {
            let entry: Entry =
                serde_json::from_str(text).map_err(|e| anyhow::anyhow!("registry/{file} does not parse: {e}"))?;
            let checked = super::key(&entry.key).and_then(|_| entry.spec.check());
            checked.map_err(|e| anyhow::anyhow!("registry/{file}: {}", e.describe()))?;
            anyhow::ensure!(entry.version >= 1, "registry/{file}: versions start at 1");
            Ok((*file, entry))
        })
        .collect()
}

/// Loads the registry into `db` as the platform's definitions, in one transaction.
pub async fn load(db: &Db) -> Result<Loaded> {
    let owner = TenantId::platform();
    let meta = EventMeta::system("workflow-registry", "platform registry");
    let mut work = Work::tenant(db, &Authorized::platform_system("workflow registry"), meta).await?;
    // Replicas starting together load one after the other (the second finds everything there).
    kernel::db::lock(&mut work, "workflow.registry", kernel::db::Lock::Exclusive).await?;
    let mut loaded = Loaded::default();
    for (file, e) in entries().map_err(Error::internal)? {
        let hash = content_hash(&e.spec);
        if let Some(d) = store::get(&mut work, &owner, &e.key, e.version).await? {
            if d.content_hash != hash || d.name != e.name || d.description != e.description {
                return Err(Error::internal(anyhow::anyhow!(
                    "registry/{file} changes `{}` version {}, which is published and immutable: give the change \
                     a new version",
                    e.key,
                    e.version
                )));
            }
            loaded.unchanged += 1;
            continue;
        }
        let new = NewDefinition { key: e.key, name: e.name, description: e.description, spec: e.spec };
        let d = store::insert(&mut work, &owner, &new, e.version, &hash, Some("platform registry")).await?;
        work.emit(
            &owner,
            &events::WorkflowDefinitionPublished {
                key: d.key.clone(),
                version: d.version,
                name: d.name.clone(),
                content_hash: d.content_hash.clone(),
                platform: true,
            },
        )
        .await?;
        loaded.published += 1;
    }
    work.commit().await?;
    Ok(loaded)
}
