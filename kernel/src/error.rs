//! The one error type of every subgraph and its mapping to GraphQL errors.
//!
//! Each variant has a stable code (`extensions.code`); [`Error::code`] matches exhaustively so a new variant
//! forces a decision about its code. Internal errors (SQL, broker, Redis, bugs) are logged with their whole
//! cause chain and reach the client only as `INTERNAL` with a generic message.
//!
//! `Error` deliberately does not implement `Display`: async-graphql converts anything `Display` into an error
//! without a code, and keeping `Display` off lets `?` go through our own `From` impl instead.

use async_graphql::ErrorExtensions;

/// The codes a client can see in `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    QuotaExceeded,
    Unavailable,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::Conflict => "CONFLICT",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// No credentials, or credentials that did not verify.
    Unauthenticated(String),
    /// A verified caller without the scope or tenant the operation needs.
    Forbidden(String),
    /// The thing does not exist, or exists only for another tenant (we never tell which).
    NotFound(String),
    /// Input that fails validation; `field` names the offending input where there is one.
    BadInput { field: Option<String>, message: String },
    /// A state conflict: a duplicate, an illegal transition, a write to something immutable.
    Conflict(String),
    /// A quota would be exceeded.
    QuotaExceeded(String),
    /// This deployment is not set up for the operation (a key it lacks, a feature turned off): the
    /// message says what the operator must configure. Retrying does not help until they do.
    Unavailable(String),
    /// Anything the client cannot act on. Logged in full, reported as `INTERNAL`.
    Internal(anyhow::Error),
    /// Another error with structured details a client can act on, each in `extensions.<key>` beside the
    /// code: a cycle's path, where a policy text is wrong, when usage closed. Made with [`Error::with`].
    Detailed(Box<Error>, Vec<(&'static str, serde_json::Value)>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) => Code::Forbidden,
            Error::NotFound(_) => Code::NotFound,
            Error::BadInput { .. } => Code::BadUserInput,
            Error::Conflict(_) => Code::Conflict,
            Error::QuotaExceeded(_) => Code::QuotaExceeded,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
            Error::Detailed(inner, _) => inner.code(),
        }
    }

    /// This error with `extensions.<key>` = `value` for the client (`code`, `field` and an internal error's
    /// details are not for a caller to set: an internal error stays without any).
    pub fn with(self, key: &'static str, value: impl serde::Serialize) -> Self {
        if matches!(self, Error::Internal(_)) || key == "code" || key == "field" {
            return self;
        }
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        match self {
            Error::Detailed(inner, mut details) => {
                details.retain(|(k, _)| *k != key);
                details.push((key, value));
                Error::Detailed(inner, details)
            }
            other => Error::Detailed(Box::new(other), vec![(key, value)]),
        }
    }

    /// `CODE: message`, and the details as JSON when there are any: what background work (a dead-lettered
    /// message's reason, a log line) says of an error a client would have seen.
    pub fn describe(&self) -> String {
        let mut out = format!("{}: {}", self.code().as_str(), self.message());
        if !self.details().is_empty() {
            let details: serde_json::Map<String, serde_json::Value> =
                self.details().iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            out.push_str(&format!(" {}", serde_json::Value::Object(details)));
        }
        out
    }

    /// The structured details [`Error::with`] added.
    pub fn details(&self) -> &[(&'static str, serde_json::Value)] {
        match self {
            Error::Detailed(_, details) => details,
            _ => &[],
        }
    }

    /// The same error again, for another caller of a shared operation (a DataLoader's batch, a group commit):
    /// the code and message are kept, an internal cause as text (`anyhow::Error` cannot be cloned).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Internal(cause) => Error::Internal(anyhow::anyhow!("{cause:#}")),
            Error::Unauthenticated(m) => Error::Unauthenticated(m.clone()),
            Error::Forbidden(m) => Error::Forbidden(m.clone()),
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::BadInput { field, message } => Error::BadInput { field: field.clone(), message: message.clone() },
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::QuotaExceeded(m) => Error::QuotaExceeded(m.clone()),
            Error::Unavailable(m) => Error::Unavailable(m.clone()),
            Error::Detailed(inner, details) => Error::Detailed(Box::new(inner.duplicate()), details.clone()),
        }
    }

    /// The message a client may see.
    pub fn message(&self) -> &str {
        match self {
            Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::QuotaExceeded(m)
            | Error::Unavailable(m) => m,
            Error::BadInput { message, .. } => message,
            Error::Internal(_) => "internal error",
            Error::Detailed(inner, _) => inner.message(),
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput { field: Some(field.into()), message: message.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden(message.into())
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::Unauthenticated(message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(cause.into())
    }

    /// Converts to the GraphQL error a client sees, logging internal causes first.
    pub fn to_graphql(&self) -> async_graphql::Error {
        if let Error::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let plain = match self {
            Error::Detailed(inner, _) => inner,
            other => other,
        };
        async_graphql::Error::new(self.message()).extend_with(|_, ext| {
            ext.set("code", self.code().as_str());
            if let Error::BadInput { field: Some(field), .. } = plain {
                ext.set("field", field.as_str());
            }
            for (key, value) in self.details() {
                ext.set(*key, async_graphql::Value::from_json(value.clone()).unwrap_or(async_graphql::Value::Null));
            }
        })
    }
}

impl From<Error> for async_graphql::Error {
    fn from(e: Error) -> Self {
        e.to_graphql()
    }
}

/// For background work (relay, consumers) that reports with anyhow: internal causes pass through whole.
impl From<Error> for anyhow::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Internal(cause) => cause,
            other => anyhow::anyhow!(other.describe()),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(e.into())
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Error::Internal(e.into())
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::Internal(e)
    }
}

/// Turns named constraint violations into client errors; every other database error stays internal.
pub trait OnConstraint<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> OnConstraint<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => f(),
            _ => Error::from(e),
        })
    }
}

impl<T> OnConstraint<T> for Result<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match &e {
            Error::Internal(cause) => match cause.downcast_ref::<sqlx::Error>() {
                Some(sqlx::Error::Database(db)) if db.constraint() == Some(name) => f(),
                _ => e,
            },
            _ => e,
        })
    }
}

/// Shortens untrusted input before it is echoed in an error message.
pub fn clip(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Refuses a JSON value holding U+0000 in any key or string: PostgreSQL's `text` and `jsonb` cannot store it,
/// so a value that reaches a statement with one fails the statement (and a batch shared with other callers).
/// `field` names the input; the message says where in it.
pub fn no_nul(field: &str, v: &serde_json::Value) -> Result<()> {
    fn find(v: &serde_json::Value, at: &mut String) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, x)| {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                let found = find(x, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(k, x)| {
                let len = at.len();
                at.push('.');
                at.push_str(&clip(&k.replace('\0', "\\u0000"), 40));
                let found = k.contains('\0') || find(x, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut at = field.to_owned();
    if find(v, &mut at) {
        return Err(Error::bad_input(field, format!("{at} holds a NUL character (\\u0000), which cannot be stored")));
    }
    Ok(())
}

/// Validates a required free-text field: trimmed, not empty, at most `max` characters, no control characters.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::bad_input(field, format!("{field} must not be empty")));
    }
    if s.chars().count() > max {
        return Err(Error::bad_input(field, format!("{field} must be at most {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::bad_input(field, format!("{field} must not contain control characters")));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = Error::internal(anyhow::anyhow!("relation \"tenants\" does not exist"));
        let gql = e.to_graphql();
        assert_eq!(gql.message, "internal error");
        let ext = format!("{:?}", gql.extensions);
        assert!(ext.contains("INTERNAL") && !ext.contains("tenants"));
    }

    #[test]
    fn details_reach_the_client_beside_the_code_and_never_on_an_internal_error() {
        let e = Error::bad_input("records[0].occurredAt", "closed")
            .with("closedUntil", "2026-12-06T10:00:00Z")
            .with("cycle", serde_json::json!([{ "id": "a" }]));
        assert_eq!((e.code(), e.message()), (Code::BadUserInput, "closed"));
        let ext = serde_json::to_value(&e.to_graphql().extensions).unwrap();
        assert_eq!(ext["code"], "BAD_USER_INPUT");
        assert_eq!(ext["field"], "records[0].occurredAt");
        assert_eq!(ext["closedUntil"], "2026-12-06T10:00:00Z");
        assert_eq!(ext["cycle"][0]["id"], "a");
        assert_eq!(e.duplicate().details(), e.details());
        assert!(e.describe().starts_with("BAD_USER_INPUT: closed {") && e.describe().contains("closedUntil"));
        // The code is the error's own; an internal error says nothing more.
        assert_eq!(
            Error::conflict("x").with("code", "OTHER").to_graphql().extensions.unwrap().get("code").cloned(),
            Some(async_graphql::Value::from("CONFLICT"))
        );
        let internal = Error::internal(anyhow::anyhow!("secret")).with("sql", "SELECT secret");
        assert!(internal.details().is_empty());
    }

    #[test]
    fn text_rejects_empty_long_and_control() {
        assert_eq!(text("name", "  ok ", 5).unwrap(), "ok");
        assert_eq!(text("name", "   ", 5).unwrap_err().code(), Code::BadUserInput);
        assert_eq!(text("name", "toolong", 5).unwrap_err().code(), Code::BadUserInput);
        assert_eq!(text("name", "a\u{0}b", 5).unwrap_err().code(), Code::BadUserInput);
    }

    #[test]
    fn clip_shortens_on_char_boundaries() {
        assert_eq!(clip("ééééé", 2), "éé…");
        assert_eq!(clip("abc", 5), "abc");
    }
}

/// The error type of DataLoaders: loaders need a cloneable error, and going through this (rather than
/// `Arc<Error>`, which is `Display`) keeps the code when a resolver returns it.
#[derive(Clone, Debug)]
pub struct LoadError(pub std::sync::Arc<Error>);

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError(std::sync::Arc::new(e))
    }
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        Error::from(e).into()
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        e.0.duplicate()
    }
}

impl From<LoadError> for async_graphql::Error {
    fn from(e: LoadError) -> Self {
        e.0.to_graphql()
    }
}
