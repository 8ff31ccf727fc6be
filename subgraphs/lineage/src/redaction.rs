//! Classification and redaction: the seed's "sensitive payloads are classified and may be redacted while
//! metadata fields remain queryable".
//!
//! An artifact's [`Classification`] decides who reads its **sensitive** parts — each version's body and
//! its `attributes` (what the producer said beyond the metadata: a prompt, parameters). Callers without
//! `lineage:read-restricted` see everything else of a confidential or restricted artifact (its metadata)
//! and, in place of the sensitive parts, `null` and a [`RedactionInfo`] with a coded reason. The rule is
//! applied where each path hands a version out, so it holds in every one:
//!
//! | path | where |
//! |---|---|
//! | queries, lists, entities the router resolves (`Artifact`, `AgentTask.outputArtifacts`) | `ArtifactVersion`'s resolvers ([`Redaction::of`] on the request's caller) |
//! | subscriptions (`artifactChanges`) | the same resolvers, for the subscriber |
//! | the body route | 403 `FORBIDDEN`, `reason: REDACTED` |
//! | events on the broker, and so governance's audit entries | never carry sensitive parts of a confidential or restricted artifact ([`for_event`]) |

use async_graphql::{Enum, SimpleObject};
use kernel::permissions::lineage::READ_RESTRICTED;
use kernel::{Authorize, Error};

use crate::artifacts::Classification;

/// Why a field was withheld.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "RedactionReason")]
pub enum RedactionReason {
    /// The artifact is confidential or restricted and the caller lacks `lineage:read-restricted`.
    Classified,
}

/// What was withheld from the caller, and why.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Redaction")]
pub struct RedactionInfo {
    pub reason: RedactionReason,
    pub classification: Classification,
    /// The fields given as `null` for it (`attributes`, `body`).
    pub fields: Vec<String>,
}

/// The sensitive fields of a version.
pub const SENSITIVE: [&str; 2] = ["attributes", "body"];

/// Whether a classification withholds the sensitive parts from callers without `lineage:read-restricted`.
pub fn is_sensitive(classification: Classification) -> bool {
    matches!(classification, Classification::Confidential | Classification::Restricted)
}

/// A redaction in force for one caller and artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redaction {
    pub classification: Classification,
}

impl Redaction {
    /// What `caller` may not see of an artifact so classified: `None` when it may see all.
    pub fn of(caller: &impl Authorize, classification: Classification) -> Option<Self> {
        let allowed = caller.request_context().caller.has_scope(READ_RESTRICTED);
        (is_sensitive(classification) && !allowed).then_some(Self { classification })
    }

    pub fn info(self) -> RedactionInfo {
        RedactionInfo {
            reason: RedactionReason::Classified,
            classification: self.classification,
            fields: SENSITIVE.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// The refusal of `what` (the body) to this caller.
    pub fn refusal(self, what: &str) -> Error {
        Error::forbidden(format!(
            "{what} of a {} artifact is for callers with {READ_RESTRICTED}",
            self.classification.as_str()
        ))
        .with("reason", "REDACTED")
        .with("classification", self.classification.as_str())
    }
}

/// A version's attributes as an event may carry them: none for a confidential or restricted artifact
/// (events reach every consumer and the audit log, whatever their readers' permissions).
pub fn for_event(classification: Classification, attributes: Option<serde_json::Value>) -> Option<serde_json::Value> {
    if is_sensitive(classification) {
        None
    } else {
        attributes
    }
}
