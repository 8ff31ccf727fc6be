//! The body routes (through the edge's `/api/v1/` pass route; the kernel guards them with the router
//! secret, [`Authenticated`] verifies the bearer token):
//!
//! * `PUT /api/v1/artifacts/{artifactId}/versions/{version}/body` — `lineage:write`; the body is the
//!   request's, any content type. 200 with what was stored (`storedNow: false` when it was there already);
//!   400 `BAD_USER_INPUT` for a hash mismatch or an upload broken off (nothing stored); 404 for an unknown
//!   artifact or version; 409 while another upload of the same body runs; 413 beyond
//!   `ARTIFACT_MAX_BODY_BYTES` (before a byte is read when `content-length` says so).
//! * `GET` the same path — `lineage:read`, and `lineage:read-restricted` for a confidential or restricted
//!   artifact (403 `FORBIDDEN` with `reason: REDACTED` otherwise); `Range: bytes=N-` or `bytes=N-M`
//!   resumes a broken download (206; 416 with `Content-Range: bytes */<size>` past the end). The content
//!   hash is the `ETag`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use futures::TryStreamExt;
use kernel::permissions::lineage::{READ, WRITE};
use kernel::server::{error_response, Authenticated};
use kernel::{Authorize, Error, Result};
use object_store::{GetOptions, GetRange, ObjectStore};

use super::{blob_error, object_path, BodyRow, BodyState};
use crate::artifacts;
use crate::ids::ArtifactId;
use crate::redaction::Redaction;
use crate::State as Lineage;

pub fn routes(state: Arc<Lineage>) -> Router {
    Router::new()
        .route("/api/v1/artifacts/{artifact_id}/versions/{version}/body", put(upload).get(download))
        .with_state(state)
}

/// The path a version's body is uploaded to and downloaded from (through the public endpoint).
pub fn body_path(id: &ArtifactId, version: &str) -> String {
    format!("/api/v1/artifacts/{id}/versions/{version}/body")
}

fn target(id: &str, version: &str) -> Result<(ArtifactId, semver::Version)> {
    Ok((ArtifactId::parse("artifactId", id)?, artifacts::version("version", version)?))
}

async fn upload(
    State(state): State<Arc<Lineage>>,
    Authenticated(req): Authenticated,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = async {
        let tenant = req.authorize(WRITE)?;
        let (id, version) = target(&id, &version)?;
        let bodies = &state.bodies;
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > bodies.max_bytes) {
            let why = format!("a body is at most {} bytes; nothing was stored", bodies.max_bytes);
            return Err(Error::bad_input("body", why).with("limit", bodies.max_bytes));
        }
        super::upload(&state, bodies, &tenant, req.event_meta(), &id, &version, body).await
    }
    .await;
    match outcome {
        Ok(uploaded) => Json(uploaded).into_response(),
        Err(e) => refusal(&e),
    }
}

/// A coded error answer; a body over the limit is 413.
fn refusal(e: &Error) -> Response {
    let mut resp = error_response(e);
    if e.details().iter().any(|(k, _)| *k == "limit") {
        *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    }
    resp
}

async fn download(
    State(state): State<Arc<Lineage>>,
    Authenticated(req): Authenticated,
    Path((id, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let tenant = req.authorize(READ)?;
        let (id, version) = target(&id, &version)?;
        let bodies = &state.bodies;
        let (v, artifact, body) = super::version_of(&state, &tenant, &id, &version).await?;
        if let Some(r) = Redaction::of(&req, artifact.classification) {
            return Err(r.refusal("the body"));
        }
        let Some(row @ BodyRow { state: BodyState::Stored, size: Some(size), .. }) = body else {
            return Err(Error::not_found(format!("the body of {id}@{} was not uploaded yet", v.version)));
        };
        super::check_content(&v, &row)?;
        let size = u64::try_from(size).unwrap_or_default();
        let range = match headers.get(header::RANGE) {
            None => None,
            Some(r) => {
                let r = r.to_str().map_err(|_| Error::bad_input("range", "the Range header is not text"))?;
                match range(r, size)? {
                    Some(r) => Some(r),
                    // RFC 9110 §15.5.17: past the end is 416, with the size.
                    None => {
                        return Response::builder()
                            .status(StatusCode::RANGE_NOT_SATISFIABLE)
                            .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                            .body(Body::empty())
                            .map_err(|e| Error::internal(anyhow::anyhow!(e)))
                    }
                }
            }
        };
        let path = object_path(&v.storage_ref)?;
        let options = GetOptions { range: range.clone().map(GetRange::Bounded), ..Default::default() };
        let got = bodies.blob.store.get_opts(&path, options).await.map_err(blob_error)?;
        let served = got.range.clone();
        let mut resp = Response::builder()
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, served.end - served.start)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, format!("\"{}\"", v.content_hash));
        if range.is_some() {
            resp = resp
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", served.start, served.end - 1));
        }
        let stream = got.into_stream().map_err(|e| {
            tracing::warn!(error = %e, "a body download broke off");
            std::io::Error::other("blob storage failed")
        });
        resp.body(Body::from_stream(stream)).map_err(|e| Error::internal(anyhow::anyhow!(e)))
    }
    .await;
    outcome.unwrap_or_else(|e| refusal(&e))
}

/// `bytes=N-` or `bytes=N-M` of a body of `size` bytes, as a half-open range; `None` when it starts past
/// the end (unsatisfiable); `BAD_USER_INPUT` when it is not one such range.
fn range(header: &str, size: u64) -> Result<Option<std::ops::Range<u64>>> {
    let bad = || Error::bad_input("range", "serves one range, `bytes=N-` or `bytes=N-M`");
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (from, to) = spec.split_once('-').ok_or_else(bad)?;
    let from: u64 = from.trim().parse().map_err(|_| bad())?;
    let to: Option<u64> = match to.trim() {
        "" => None,
        n => Some(n.parse::<u64>().map_err(|_| bad())?),
    };
    if to.is_some_and(|to| to < from) {
        return Err(bad());
    }
    if from >= size {
        return Ok(None);
    }
    let to = to.unwrap_or(u64::MAX).min(size - 1);
    Ok(Some(from..to + 1))
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_are_one_span_within_the_body() {
        assert_eq!(range("bytes=0-", 10).unwrap(), Some(0..10));
        assert_eq!(range("bytes=4-", 10).unwrap(), Some(4..10));
        assert_eq!(range("bytes=2-5", 10).unwrap(), Some(2..6));
        assert_eq!(range("bytes=2-99", 10).unwrap(), Some(2..10));
        assert_eq!(range("bytes=10-", 10).unwrap(), None, "past the end: unsatisfiable");
        assert_eq!(range("bytes=0-", 0).unwrap(), None, "an empty body has no range");
        for bad in ["bytes=5-2", "bytes=-3", "items=0-1", "bytes=0-1,3-4", "bytes=x-"] {
            assert!(range(bad, 10).is_err(), "{bad}");
        }
    }
}
