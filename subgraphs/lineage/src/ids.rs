//! Lineage's ids.

use std::fmt;

use kernel::{Error, Result};

pub use kernel::contracts::catalogue::{ModuleId, ProjectId};

/// An artifact's id: its producer's name for it (an agent task's output names it), 1–200 letters, digits
/// and `._:-`, starting with a letter or digit — a path segment of its versions' storage references.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct ArtifactId(String);

impl ArtifactId {
    /// `raw` as an artifact id; `BAD_USER_INPUT` naming `field` otherwise.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let ok = (1..=200).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !ok {
            return Err(Error::bad_input(
                field,
                format!(
                    "`{}` is no artifact id: 1–200 letters, digits, `.`, `_`, `:` or `-`, starting with a letter or digit",
                    kernel::error::clip(raw, 80)
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ArtifactId;

    #[test]
    fn artifact_ids_are_path_safe() {
        for ok in ["doc-1", "post.v2", "a", "build:42", "A_b"] {
            assert!(ArtifactId::parse("id", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(201);
        for bad in ["", "-doc", "a/b", "a b", "../x", "é", long.as_str()] {
            assert!(ArtifactId::parse("id", bad).is_err(), "{bad}");
        }
    }
}
