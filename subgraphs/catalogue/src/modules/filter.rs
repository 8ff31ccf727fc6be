//! Typed module filters. Each becomes a parameter of one SQL statement, and every one of them is served by
//! an index leading with the tenant: kind and name order (btree), tags and metadata containment (GIN
//! `jsonb_path_ops`), name search (GIN trigram). A metadata path equality is turned into a containment
//! (`{"build":{"tool":"cargo"}}`) for the index and re-checked exactly (`metadata #> path = value`).
//!
//! A path no module of the tenant has ever had is refused (`BAD_USER_INPUT`): it is almost always a typo,
//! and an empty answer would hide it.

use async_graphql::{InputObject, Json};
use kernel::{Error, Result};
use serde_json::{Map, Value};

use super::MAX_PATH_DEPTH;

/// Most path equalities one filter may hold.
pub const MAX_PATH_FILTERS: usize = 8;

/// A metadata value at a path must equal `equals` exactly.
#[derive(InputObject, Clone, Debug)]
pub struct MetadataPathEquals {
    /// Object keys from the top, e.g. `["build", "tool"]` (at most 8).
    pub path: Vec<String>,
    pub equals: Json<Value>,
}

/// Filters for modules; all given conditions must hold.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ModuleFilter {
    /// Modules of this kind.
    pub kind: Option<String>,
    /// Modules carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// Modules whose metadata contains this JSON object (PostgreSQL `@>` semantics: nested objects match
    /// by subset, arrays by inclusion).
    pub metadata_contains: Option<Json<Value>>,
    /// Modules whose metadata has exactly this value at each path.
    pub metadata_equals: Option<Vec<MetadataPathEquals>>,
    /// Modules whose name contains this text (case-insensitive).
    pub search: Option<String>,
}

/// A filter checked and turned into the statement's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Compiled {
    pub kind: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Containment of `metadataContains` merged with every path equality (as JSON text).
    pub contains: Option<String>,
    /// `[{"path": [...], "value": ...}]` for the exact re-check (as JSON text).
    pub equals: Option<String>,
    /// An `ILIKE` pattern with `%` and `_` escaped.
    pub search: Option<String>,
    /// The paths the filter names (JSON array text), for the unknown-path check.
    pub paths: Vec<String>,
}

impl ModuleFilter {
    pub fn compile(self) -> Result<Compiled> {
        let mut out = Compiled { kind: self.kind.as_deref().map(super::kind).transpose()?, ..Compiled::default() };
        if let Some(tags) = self.tags {
            let tags = super::tags(tags)?;
            out.tags = (!tags.is_empty()).then_some(tags);
        }
        let mut contains = match self.metadata_contains {
            None => None,
            Some(Json(Value::Object(m))) => {
                let v = Value::Object(m);
                let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(usize::MAX);
                if size > super::MAX_METADATA_BYTES {
                    return Err(Error::bad_input(
                        "filter.metadataContains",
                        "metadataContains is larger than metadata may be",
                    ));
                }
                Some(v)
            }
            Some(_) => {
                return Err(Error::bad_input("filter.metadataContains", "metadataContains must be a JSON object"))
            }
        };
        let equals = self.metadata_equals.unwrap_or_default();
        if equals.len() > MAX_PATH_FILTERS {
            return Err(Error::bad_input(
                "filter.metadataEquals",
                format!("at most {MAX_PATH_FILTERS} path conditions"),
            ));
        }
        let mut checks = Vec::with_capacity(equals.len());
        for cond in equals {
            if cond.path.is_empty() || cond.path.len() > MAX_PATH_DEPTH {
                return Err(Error::bad_input(
                    "filter.metadataEquals.path",
                    format!("a path has 1 to {MAX_PATH_DEPTH} keys"),
                ));
            }
            if cond.path.iter().any(|k| k.is_empty() || k.len() > 256 || k.chars().any(char::is_control)) {
                return Err(Error::bad_input(
                    "filter.metadataEquals.path",
                    "path keys must be 1–256 characters without control characters",
                ));
            }
            out.paths.push(serde_json::to_string(&cond.path).expect("strings serialize"));
            // {"a":{"b":value}}, merged into the containment so the GIN index narrows the rows.
            let nested = cond.path.iter().rev().fold(cond.equals.0.clone(), |acc, k| {
                let mut m = Map::new();
                m.insert(k.clone(), acc);
                Value::Object(m)
            });
            contains = Some(match contains {
                None => nested,
                Some(c) => merge(c, nested)?,
            });
            checks.push(serde_json::json!({ "path": cond.path, "value": cond.equals.0 }));
        }
        out.contains = contains.map(|c| c.to_string());
        out.equals = (!checks.is_empty()).then(|| Value::Array(checks).to_string());
        if let Some(s) = self.search {
            let s = s.trim();
            if s.is_empty() || s.chars().count() > 128 {
                return Err(Error::bad_input("filter.search", "search is 1–128 characters"));
            }
            let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            out.search = Some(format!("%{escaped}%"));
        }
        Ok(out)
    }
}

/// Deep-merges two containment objects; conflicting scalars at one path can never both hold.
fn merge(a: Value, b: Value) -> Result<Value> {
    match (a, b) {
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(existing) => merge(existing, v)?,
                    None => v,
                };
                x.insert(k, merged);
            }
            Ok(Value::Object(x))
        }
        (x, y) if x == y => Ok(x),
        _ => Err(Error::bad_input("filter.metadataEquals", "two conditions ask for different values at one path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eq(path: &[&str], v: Value) -> MetadataPathEquals {
        MetadataPathEquals { path: path.iter().map(|s| s.to_string()).collect(), equals: Json(v) }
    }

    #[test]
    fn path_equalities_become_containment_plus_an_exact_check() {
        let f = ModuleFilter {
            metadata_contains: Some(Json(json!({ "team": "core" }))),
            metadata_equals: Some(vec![eq(&["build", "tool"], json!("cargo")), eq(&["build", "lto"], json!(true))]),
            search: Some("50%_off".into()),
            ..Default::default()
        }
        .compile()
        .unwrap();
        let contains: Value = serde_json::from_str(f.contains.as_deref().unwrap()).unwrap();
        assert_eq!(contains, json!({ "team": "core", "build": { "tool": "cargo", "lto": true } }));
        assert_eq!(f.paths, vec![r#"["build","tool"]"#, r#"["build","lto"]"#]);
        assert_eq!(f.search.as_deref(), Some("%50\\%\\_off%"));
    }

    #[test]
    fn bad_filters_are_refused() {
        let bad = [
            ModuleFilter { metadata_contains: Some(Json(json!([1]))), ..Default::default() },
            ModuleFilter { metadata_equals: Some(vec![eq(&[], json!(1))]), ..Default::default() },
            ModuleFilter { metadata_equals: Some(vec![eq(&["a"; 9], json!(1))]), ..Default::default() },
            ModuleFilter {
                metadata_equals: Some(vec![eq(&["a"], json!(1)), eq(&["a"], json!(2))]),
                ..Default::default()
            },
            ModuleFilter { kind: Some("Not A Kind".into()), ..Default::default() },
            ModuleFilter { search: Some("  ".into()), ..Default::default() },
        ];
        for f in bad {
            let what = format!("{f:?}");
            assert_eq!(f.compile().unwrap_err().code(), kernel::Code::BadUserInput, "{what}");
        }
    }
}
