//! Identifiers that cross identity's module boundaries (store, schema, token service, loaders).

use std::fmt;

use async_graphql::ID;
use kernel::{Error, Result};

/// A principal's id: a UUIDv7, unique within its tenant (the key is `(tenant_id, principal_id)`).
///
/// Stored as `uuid` (`sqlx(transparent)`) and shown in the schema as the `UUID` scalar, like a bare
/// `uuid::Uuid`; in Rust it cannot be mixed up with a token's or any other id.
#[derive(async_graphql::NewType, sqlx::Type, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[sqlx(transparent)]
pub struct PrincipalId(uuid::Uuid);

impl PrincipalId {
    /// A fresh, time-ordered id for a new principal.
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses the text form; `BAD_USER_INPUT` naming `field` when it is not an id.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        raw.trim().parse().map(Self).map_err(|_| {
            Error::bad_input(field, format!("{field} `{}` is not a principal id", kernel::error::clip(raw, 64)))
        })
    }

    /// A GraphQL `ID` argument; `BAD_USER_INPUT` naming `field` when it is not a principal id.
    pub fn from_id(field: &str, id: &ID) -> Result<Self> {
        Self::parse(field, id.as_str())
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_names_the_field_when_it_cannot() {
        let id = PrincipalId::new_v7();
        assert_eq!(PrincipalId::parse("id", &id.to_string()).unwrap(), id);
        assert_eq!(PrincipalId::from_id("id", &ID(format!(" {id} "))).unwrap(), id);
        let err = PrincipalId::from_id("principalId", &ID("nope".into())).unwrap_err();
        assert_eq!(err.code(), kernel::Code::BadUserInput);
        let gql = err.to_graphql();
        let field = gql.extensions.as_ref().and_then(|e| e.get("field")).cloned();
        assert_eq!(field, Some(async_graphql::Value::from("principalId")));
    }
}
