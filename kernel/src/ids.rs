//! Identifiers shared by every domain.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A tenant's id: a slug, globally unique and immutable once provisioned.
///
/// 3 to 63 characters of lower-case ASCII letters, digits and single hyphens, starting with a letter and not
/// ending with a hyphen — safe in URLs, DNS labels, Redis keys and routing keys alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The pseudo-tenant that platform-level rows and events (editions, flag definitions) are filed under.
    /// It is reserved, so no real tenant can be given it.
    pub const PLATFORM: &'static str = "platform";
    /// Slugs no tenant may take: they name platform-level things in keys and routes.
    pub const RESERVED: &'static [&'static str] =
        &["platform", "global", "system", "admin", "root", "internal", "api", "www"];

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let s = raw.trim();
        let bad = |why: &str| Error::bad_input("id", format!("tenant id `{}` {why}", crate::error::clip(raw, 80)));
        if s.len() < 3 || s.len() > 63 {
            return Err(bad("must be 3 to 63 characters"));
        }
        let bytes = s.as_bytes();
        if !bytes[0].is_ascii_lowercase() {
            return Err(bad("must start with a lower-case letter"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(bad("may hold only lower-case letters, digits and hyphens"));
        }
        if s.ends_with('-') || s.contains("--") {
            return Err(bad("may not end with a hyphen or hold two in a row"));
        }
        if Self::RESERVED.contains(&s) {
            return Err(bad("is reserved"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The platform pseudo-tenant (see [`TenantId::PLATFORM`]).
    pub fn platform() -> Self {
        Self(Self::PLATFORM.to_owned())
    }

    pub fn is_platform(&self) -> bool {
        self.0 == Self::PLATFORM
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == Self::PLATFORM {
            return Ok(Self::platform());
        }
        Self::parse(&value).map_err(|e| e.message().to_owned())
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An id from the API (`what`: "policy", "module", …): `BAD_USER_INPUT` naming `field` unless it is a UUID.
pub fn uuid(field: &str, raw: &str, what: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(raw.trim())
        .map_err(|_| Error::bad_input(field, format!("`{}` is not a {what} id", crate::error::clip(raw, 40))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_slugs() {
        for ok in ["acme", "acme-corp", "a1b", "t-0123456789"] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_malformed_slugs() {
        for bad in ["", "ab", "Acme", "1acme", "acme-", "ac--me", "ac_me", "acmé", &"a".repeat(64), "platform"] {
            let err = TenantId::parse(bad).unwrap_err();
            assert_eq!(err.code(), crate::Code::BadUserInput, "{bad}");
        }
    }

    #[test]
    fn platform_round_trips_through_serde_but_not_parse() {
        let t: TenantId = serde_json::from_str("\"platform\"").unwrap();
        assert!(t.is_platform());
        assert!(TenantId::parse("platform").is_err());
        assert!(serde_json::from_str::<TenantId>("\"Bad Slug\"").is_err());
    }
}
