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

/// Declares a domain id: a UUID newtype that cannot be mixed up with any other id.
///
/// ```
/// kernel::id! {
///     /// A project's id.
///     pub struct ProjectId("project");
/// }
/// kernel::id! {
///     /// Shown as the `UUID` scalar rather than `ID`.
///     pub struct TokenId("token") as UUID;
/// }
/// let id = ProjectId::new_v7();
/// assert_eq!(ProjectId::parse("projectId", &id.to_string()).unwrap(), id);
/// let err = ProjectId::parse("projectId", "nope").unwrap_err();
/// assert_eq!(err.code(), kernel::Code::BadUserInput);
/// ```
///
/// What it gives:
/// - **parsing at the boundary**: `parse(field, text)` and `from_id(field, &ID)` refuse anything but a UUID
///   with `BAD_USER_INPUT` naming the field; as a GraphQL input the id refuses the same way, with the code;
/// - **GraphQL**: the `ID` scalar on the wire (or `UUID` with `as UUID`), the same as the bare id it replaces,
///   so the schema does not change;
/// - **PostgreSQL**: `uuid`, transparently (`sqlx::Type`, arrays too). `query_as!` fills a field of this type
///   from a `uuid` column by itself (`From<Uuid>`); a bind names it, as in `id as ProjectId`;
/// - **serde**: the UUID's text, so an event's payload reads as it did with a bare `Uuid` or `String`.
///
/// The crate using it needs `serde`, `sqlx` and `uuid` (every domain has them).
#[macro_export]
macro_rules! id {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($what:literal);) => {
        $crate::id!(@declare $(#[$meta])* $vis $name, $what, $crate::__private::async_graphql::ID);
    };
    ($(#[$meta:meta])* $vis:vis struct $name:ident($what:literal) as UUID;) => {
        $crate::id!(@declare $(#[$meta])* $vis $name, $what, $crate::__private::uuid::Uuid);
    };
    (@declare $(#[$meta:meta])* $vis:vis $name:ident, $what:literal, $wire:ty) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize, ::sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        $vis struct $name($crate::__private::uuid::Uuid);

        impl $name {
            /// What the id names, in messages.
            pub const WHAT: &'static str = $what;

            /// A fresh, time-ordered id (UUIDv7).
            pub fn new_v7() -> Self {
                Self($crate::__private::uuid::Uuid::now_v7())
            }

            /// The text form; `BAD_USER_INPUT` naming `field` when it is not an id.
            pub fn parse(field: &str, raw: &str) -> $crate::Result<Self> {
                $crate::ids::uuid(field, raw, $what).map(Self)
            }

            /// A GraphQL `ID` argument; `BAD_USER_INPUT` naming `field` when it is not an id.
            pub fn from_id(field: &str, id: &$crate::__private::async_graphql::ID) -> $crate::Result<Self> {
                Self::parse(field, id.as_str())
            }

            pub fn from_uuid(id: $crate::__private::uuid::Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> $crate::__private::uuid::Uuid {
                self.0
            }
        }

        impl ::std::convert::From<$crate::__private::uuid::Uuid> for $name {
            fn from(id: $crate::__private::uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl ::std::convert::From<$name> for $crate::__private::uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> $crate::Result<Self> {
                Self::parse("id", s)
            }
        }

        impl $crate::envelope::EnvelopeId for $name {
            fn envelope_id(&self) -> ::std::option::Option<::std::string::String> {
                ::std::option::Option::Some(self.0.to_string())
            }
        }

        impl $crate::__private::async_graphql::InputType for $name {
            type RawValueType = Self;

            fn type_name() -> ::std::borrow::Cow<'static, str> {
                <$wire as $crate::__private::async_graphql::InputType>::type_name()
            }

            fn create_type_info(registry: &mut $crate::__private::async_graphql::registry::Registry) -> String {
                <$wire as $crate::__private::async_graphql::InputType>::create_type_info(registry)
            }

            fn parse(
                value: ::std::option::Option<$crate::__private::async_graphql::Value>,
            ) -> $crate::__private::async_graphql::InputValueResult<Self> {
                $crate::ids::parse_input::<Self>(value, $what).map(Self)
            }

            fn to_value(&self) -> $crate::__private::async_graphql::Value {
                $crate::__private::async_graphql::Value::String(self.0.to_string())
            }

            fn as_raw_value(&self) -> ::std::option::Option<&Self> {
                ::std::option::Option::Some(self)
            }
        }

        impl $crate::__private::async_graphql::OutputType for $name {
            fn type_name() -> ::std::borrow::Cow<'static, str> {
                <$wire as $crate::__private::async_graphql::OutputType>::type_name()
            }

            fn create_type_info(registry: &mut $crate::__private::async_graphql::registry::Registry) -> String {
                <$wire as $crate::__private::async_graphql::OutputType>::create_type_info(registry)
            }

            async fn resolve(
                &self,
                _: &$crate::__private::async_graphql::ContextSelectionSet<'_>,
                _: &$crate::__private::async_graphql::Positioned<
                    $crate::__private::async_graphql::parser::types::Field,
                >,
            ) -> $crate::__private::async_graphql::ServerResult<$crate::__private::async_graphql::Value> {
                ::std::result::Result::Ok($crate::__private::async_graphql::Value::String(self.0.to_string()))
            }
        }
    };
}

#[doc(hidden)]
pub fn parse_input<T: async_graphql::InputType>(
    value: Option<async_graphql::Value>,
    what: &str,
) -> Result<uuid::Uuid, async_graphql::InputValueError<T>> {
    let err = match value {
        Some(async_graphql::Value::String(s)) => match uuid::Uuid::parse_str(s.trim()) {
            Ok(id) => return Ok(id),
            Err(_) => {
                async_graphql::InputValueError::custom(format!("`{}` is not a {what} id", crate::error::clip(&s, 40)))
            }
        },
        other => async_graphql::InputValueError::expected_type(other.unwrap_or_default()),
    };
    Err(err.with_extension("code", crate::Code::BadUserInput.as_str()))
}

id! {
    /// A principal's id (identity's): a UUIDv7, unique within its tenant. Shown as the `UUID` scalar.
    pub struct PrincipalId("principal") as UUID;
}

/// Who a token speaks for, as the domains may rely on it: a principal of identity, or nothing they can name.
///
/// Identity's tokens carry the principal's id as their subject; a token from anywhere else may carry any
/// text. Code that records or checks a caller as a principal asks [`crate::Authorize::principal_id`], which
/// refuses any other subject with a code rather than dropping it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalRef {
    Principal(PrincipalId),
    /// A subject that is not a principal id (kept, clipped, for messages).
    Other(String),
}

impl PrincipalRef {
    pub fn of_subject(subject: &str) -> Self {
        match uuid::Uuid::parse_str(subject) {
            Ok(id) => Self::Principal(PrincipalId::from_uuid(id)),
            Err(_) => Self::Other(crate::error::clip(subject, 64)),
        }
    }

    /// The principal; `FORBIDDEN` naming what the caller is otherwise.
    pub fn principal(&self) -> Result<PrincipalId, Error> {
        match self {
            Self::Principal(id) => Ok(*id),
            Self::Other(s) => {
                let msg = format!("the caller `{s}` is not a principal of identity, so it cannot be named here");
                Err(Error::forbidden(msg))
            }
        }
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
