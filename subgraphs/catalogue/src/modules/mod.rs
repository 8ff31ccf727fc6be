//! The module catalogue: modules per project with a semantic version, kind, owner, tags and free-form JSONB
//! metadata, found with typed filters (`filter.rs`) over GIN indexes that lead with the tenant.

pub mod filter;
pub mod schema;
pub mod store;

use crate::ids::{ModuleId, ProjectId};
use async_graphql::{ComplexObject, Context, SimpleObject, ID};
use chrono::{DateTime, Utc};
use kernel::{Error, Result, TenantId};
use serde_json::Value;

/// Largest metadata accepted, as JSON text (the table's check holds the same cap).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Deepest metadata object path recorded for filters (and the deepest a filter may name).
pub const MAX_PATH_DEPTH: usize = 8;
/// Most object paths one module's metadata records: more than 16 KiB of metadata can hold (each key takes
/// at least `"k":0,`), so every path is recorded.
pub const MAX_PATHS_PER_MODULE: usize = 4096;
pub const MAX_TAGS: usize = 32;

/// A module in the catalogue.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Module {
    #[graphql(skip)]
    pub tenant_id: TenantId,
    #[graphql(skip)]
    pub module_id: ModuleId,
    #[graphql(skip)]
    pub project_id: ProjectId,
    /// Unique within its project.
    pub name: String,
    /// A semantic version (`1.4.0`, `2.0.0-rc.1`).
    pub version: String,
    /// What sort of module: `service`, `library`, `ui`, … (lower-case key).
    pub kind: String,
    pub owner: String,
    pub tags: Vec<String>,
    #[graphql(skip)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Module {
    async fn id(&self) -> ID {
        ID(self.module_id.to_string())
    }

    async fn project_id(&self) -> ID {
        ID(self.project_id.to_string())
    }

    /// Free-form metadata (a JSON object of at most 16 KiB).
    async fn metadata(&self) -> async_graphql::Json<&Value> {
        async_graphql::Json(&self.metadata)
    }

    /// The project the module belongs to.
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<crate::projects::Project>> {
        let loader = crate::loaders::loader(ctx)?;
        Ok(loader.load_one(crate::projects::schema::ProjectById(self.project_id)).await?)
    }

    /// What this module depends on directly, in name order.
    /// Not paginated: the answer is charged to the operation's object budget (`GRAPHQL_MAX_OBJECTS`) once
    /// read, so dependencies of dependencies of … cannot multiply past it.
    async fn dependencies(&self, ctx: &Context<'_>) -> Result<Vec<crate::graph::Dependency>> {
        let deps = crate::graph::schema::direct(ctx, self, crate::graph::Direction::Dependencies).await?;
        kernel::server::charge(ctx, deps.len())?;
        Ok(deps)
    }

    /// What depends on this module directly, in name order.
    /// Charged like `dependencies`.
    async fn dependents(&self, ctx: &Context<'_>) -> Result<Vec<crate::graph::Dependency>> {
        let deps = crate::graph::schema::direct(ctx, self, crate::graph::Direction::Dependents).await?;
        kernel::server::charge(ctx, deps.len())?;
        Ok(deps)
    }
}

/// A module in a writable project: `NOT_FOUND` (also another tenant's) or `CONFLICT` (archived project).
/// Locks in the crate's order — the project (shared), then, with `lock_row`, the module's row.
pub async fn writable(work: &mut kernel::Work, tenant: &TenantId, id: ModuleId, lock_row: bool) -> Result<Module> {
    let missing = || Error::not_found(format!("no module `{id}`"));
    let m = store::get(work, tenant, id).await?.ok_or_else(missing)?;
    crate::projects::writable(work, tenant, m.project_id).await?;
    if !lock_row {
        return Ok(m);
    }
    // Moving a module between projects is not possible, so the project locked above is still its own.
    store::lock(work, tenant, id).await?.ok_or_else(missing)
}

/// A module name: 1–128 characters of letters, digits and `. _ - / @`, starting with a letter, digit or `@`.
pub fn name(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '@')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '@'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input(
            "name",
            "a module name is 1–128 letters, digits and . _ - / @, starting with a letter, digit or @",
        ))
    }
}

/// A semantic version.
pub fn version(raw: &str) -> Result<String> {
    semver::Version::parse(raw.trim()).map(|v| v.to_string()).map_err(|e| {
        Error::bad_input("version", format!("`{}` is not a semantic version: {e}", kernel::error::clip(raw, 40)))
    })
}

/// A lower-case key (kinds): 1–32 of a-z, 0-9 and `-`, starting with a letter.
pub fn kind(raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Error::bad_input("kind", "a kind is 1–32 lower-case letters, digits and hyphens, starting with a letter"))
    }
}

/// Tags: each 1–64 of a-z, 0-9 and `. _ : -`; at most [`MAX_TAGS`]; duplicates dropped; sorted.
pub fn tags(raw: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for t in raw {
        let t = t.trim().to_owned();
        let ok = (1..=64).contains(&t.len())
            && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | '-'));
        if !ok {
            return Err(Error::bad_input(
                "tags",
                format!("tag `{}` must be 1–64 lower-case letters, digits and . _ : -", kernel::error::clip(&t, 64)),
            ));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(Error::bad_input("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

/// Metadata: a JSON object of at most [`MAX_METADATA_BYTES`] whose keys have no control characters.
pub fn metadata(raw: Value) -> Result<Value> {
    if !raw.is_object() {
        return Err(Error::bad_input("metadata", "metadata must be a JSON object"));
    }
    let size = serde_json::to_vec(&raw).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(Error::bad_input(
            "metadata",
            format!("metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted"),
        ));
    }
    fn keys_ok(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().all(|(k, c)| !k.chars().any(char::is_control) && keys_ok(c)),
            Value::Array(a) => a.iter().all(keys_ok),
            _ => true,
        }
    }
    if !keys_ok(&raw) {
        return Err(Error::bad_input("metadata", "metadata keys must not contain control characters"));
    }
    Ok(raw)
}

/// Every object path of `metadata` (intermediate and leaf) up to [`MAX_PATH_DEPTH`], as JSON array text
/// (`["build","tool"]`), at most [`MAX_PATHS_PER_MODULE`].
pub fn object_paths(metadata: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<String>) {
        let Value::Object(map) = v else { return };
        // Key order, whatever the map keeps (serde_json's `preserve_order` may be on in a build): the paths
        // recorded under the cap must not depend on how a client ordered its object.
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, child) in entries {
            if out.len() >= MAX_PATHS_PER_MODULE {
                return;
            }
            prefix.push(k.clone());
            out.push(serde_json::to_string(prefix).expect("strings serialize"));
            if prefix.len() < MAX_PATH_DEPTH {
                walk(child, prefix, out);
            }
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(metadata, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_are_validated() {
        assert_eq!(name("@acme/billing-api").unwrap(), "@acme/billing-api");
        assert!(name("").is_err() && name("bad name").is_err() && name(&"a".repeat(129)).is_err());
        assert_eq!(version(" 1.2.3-rc.1 ").unwrap(), "1.2.3-rc.1");
        assert!(version("1.2").is_err());
        assert_eq!(tags(vec!["b".into(), "a".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(tags(vec!["Bad Tag".into()]).is_err());
        assert!(metadata(json!("x")).is_err());
        assert!(metadata(json!({ "x": "y".repeat(MAX_METADATA_BYTES) })).is_err());
    }

    #[test]
    fn object_paths_cover_intermediate_and_leaf_keys() {
        let p = object_paths(&json!({ "build": { "tool": "cargo", "flags": ["x"] }, "team": "core" }));
        assert_eq!(p, vec![r#"["build"]"#, r#"["build","flags"]"#, r#"["build","tool"]"#, r#"["team"]"#]);
    }
}
