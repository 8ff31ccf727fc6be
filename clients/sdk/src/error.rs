//! What can go wrong, typed: the API's own errors carry its `extensions.code`.

/// The API's error codes (`extensions.code`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    QuotaExceeded,
    Unavailable,
    Internal,
    /// A code this client does not know yet.
    Other(String),
}

impl ErrorCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "UNAUTHENTICATED" => Self::Unauthenticated,
            "FORBIDDEN" => Self::Forbidden,
            "NOT_FOUND" => Self::NotFound,
            "BAD_USER_INPUT" => Self::BadUserInput,
            "CONFLICT" => Self::Conflict,
            "QUOTA_EXCEEDED" => Self::QuotaExceeded,
            "UNAVAILABLE" => Self::Unavailable,
            "INTERNAL" => Self::Internal,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the API writes it (`BAD_USER_INPUT`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::Other(code) => code,
        }
    }

    /// Whether the same request may simply be sent again later.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed the request: its code, message and the input field at fault.
    #[error("{code:?}: {message}")]
    Api { code: ErrorCode, message: String, field: Option<String>, extensions: Box<serde_json::Value> },
    /// An HTTP answer that is not the API's (a proxy's, a non-JSON body).
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The token endpoint refused the credentials (RFC 6749 §5.2's `error`).
    #[error("the token endpoint refused the credentials: {0}")]
    Auth(String),
    #[error("the request did not complete: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("bad client configuration: {0}")]
    Config(String),
    /// A subscription's connection failed, and kept failing for longer than the client waits.
    #[error("the subscription's connection failed: {0}")]
    Live(String),
    /// An audit proof or checkpoint that does not verify: the log is not what it claims to be.
    #[error("audit verification failed: {0}")]
    Verification(String),
}

impl Error {
    /// Whether the same request may pass if sent again later: the API said it is unavailable, a proxy
    /// answered 429/502/503/504, or the request did not complete. Only safe requests are retried on it.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Api { code, .. } => code.retryable(),
            Error::Http { status, .. } => matches!(status, 429 | 502..=504),
            Error::Transport(_) | Error::Live(_) => true,
            Error::Auth(_) | Error::Config(_) | Error::Verification(_) => false,
        }
    }

    /// The API's code, if the API answered with one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn from_graphql(e: &cynic::GraphQlError<serde_json::Value>) -> Self {
        let extensions: serde_json::Value = e.extensions.clone().unwrap_or_default();
        let code =
            extensions.get("code").and_then(|c| c.as_str()).map_or(ErrorCode::Other(String::new()), ErrorCode::parse);
        let field = extensions.get("field").and_then(|f| f.as_str()).map(str::to_owned);
        Error::Api { code, message: e.message.clone(), field, extensions: Box::new(extensions) }
    }

    /// An error answer of a non-GraphQL route (`{"errors": [{ "message", "extensions": { "code" } }]}`).
    pub(crate) fn from_route(status: u16, body: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match v.pointer("/errors/0") {
            Some(e) => {
                let extensions = e.get("extensions").cloned().unwrap_or_default();
                Error::Api {
                    code: ErrorCode::parse(extensions.get("code").and_then(|c| c.as_str()).unwrap_or_default()),
                    message: e.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned(),
                    field: extensions.get("field").and_then(|f| f.as_str()).map(str::to_owned),
                    extensions: Box::new(extensions),
                }
            }
            None => Error::Http { status, body: body.chars().take(500).collect() },
        }
    }
}
