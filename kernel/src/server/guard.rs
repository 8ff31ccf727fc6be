//! What `/graphql` checks before any of a body is read: the router secret, the content type, the size.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::Code;
use crate::metrics;

use super::ROUTER_SECRET_HEADER;

pub(super) struct Guard {
    pub(super) secret: SecretString,
    pub(super) max_body: usize,
}

/// Runs before the body is read: the router secret, the content type, the declared size; and bounds the
/// body's actual size while it is read.
pub(super) async fn guard_graphql(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    // Only a WebSocket upgrade (a GET asking for `websocket`) may carry the secret in `connection_init`
    // instead (checked there); any other request with an `Upgrade` header is checked here like the rest.
    let is_websocket = request.method() == axum::http::Method::GET
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_websocket && !secret_matches(&guard.secret, headers.get(ROUTER_SECRET_HEADER).and_then(|v| v.to_str().ok()))
    {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["no_router_secret"]).inc();
        return refusal(StatusCode::FORBIDDEN, Code::Forbidden, "requests must come through the router");
    }
    if request.method() == axum::http::Method::POST {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if essence != "application/json" {
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::BadUserInput,
                "GraphQL requests must be application/json",
            );
        }
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > guard.max_body) {
            // Read (and drop) what the client is still sending, within bounds, so it gets the 413 rather
            // than a reset connection.
            let mut body = request.into_body().into_data_stream();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut seen = 0usize;
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
                seen += chunk.len();
                if seen > DRAIN_CAP {
                    break;
                }
            }
            return too_large(guard.max_body);
        }
        // A body without a length (chunked) is cut off at the limit while it is read.
        let (parts, body) = request.into_parts();
        let limited = http_body_util::Limited::new(body, guard.max_body);
        let request = Request::from_parts(parts, axum::body::Body::new(limited));
        let response = next.run(request).await;
        return response;
    }
    next.run(request).await
}

/// Most bytes of an oversize body read and dropped before answering 413.
const DRAIN_CAP: usize = 16 * 1024 * 1024;

pub(super) fn too_large(max: usize) -> Response {
    refusal(StatusCode::PAYLOAD_TOO_LARGE, Code::BadUserInput, &format!("request body is larger than {max} bytes"))
}

pub(super) fn refusal(status: StatusCode, code: Code, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}
/// Compares secrets in time independent of where they differ (both sides hashed to equal length first).
pub fn secret_matches(expected: &SecretString, presented: Option<&str>) -> bool {
    let Some(presented) = presented else { return false };
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
