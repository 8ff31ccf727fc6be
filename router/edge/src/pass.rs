//! Routes the edge passes straight to a subgraph, streamed both ways: what is not GraphQL — lineage's
//! artifact bodies (`PUT`/`GET /api/v1/artifacts/…/body`) and OpenLineage ingestion (`POST
//! /api/v1/lineage`), identity's token endpoint and JWKS (`POST /oauth/token`, `/oauth/revoke`, `GET
//! /.well-known/jwks.json`) — goes to the one subgraph that serves it, never through the router, which
//! speaks GraphQL only.
//!
//! A pass route is a path prefix and the subgraph's base URL (`--pass /api/v1/=http://lineage:4000`): a
//! prefix ending in `/` takes every path under it, any other exactly itself (identity's token endpoint,
//! `--pass /oauth/token=http://identity:4001`, and not its introspection beside it); the longest that
//! matches decides. The request goes on with its path, query, method and the headers it needs ([`PASSED_HEADERS`]), the
//! router secret put in (as the router does for `/graphql`: the subgraph's protected routes demand it,
//! and a client's own `x-cp-router-secret` is dropped), its body streamed — never held whole — and cut
//! at `--max-pass-body-bytes` (413 when `content-length` says more, or once more arrives). The answer
//! streams back. Authentication is the subgraph's, with the same bearer token checks as `/graphql`.
//!
//! Time limits are on silence, not length: a large upload may take minutes, but nothing sent (by the
//! client) and nothing answered (by the subgraph) for [`READ_TIMEOUT`] ends it.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use kernel::error::Code;
use kernel::server::ROUTER_SECRET_HEADER;

use crate::{hop_by_hop, Edge, READ_TIMEOUT};

/// A path the edge passes to a subgraph: `PREFIX=URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassRoute {
    /// Ends with `/` for every path under it (`/api/v1/`, so `/api/v1x` is not), else exactly this path
    /// (`/oauth/token`).
    pub prefix: String,
    /// `http://host:port`, no path.
    pub upstream: String,
}

impl FromStr for PassRoute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (prefix, upstream) =
            s.split_once('=').ok_or_else(|| format!("`{s}` is not PREFIX=URL (e.g. /api/v1/=http://lineage:4000)"))?;
        let segments_ok = prefix.trim_matches('/').split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !prefix.starts_with('/') || prefix == "/" || !segments_ok {
            return Err(format!(
                "the prefix `{prefix}` must start with `/` and name a path: a folder ending in `/` (/api/v1/) or one path (/oauth/token)"
            ));
        }
        if prefix.starts_with("/graphql") || prefix.starts_with("/health") {
            return Err(format!("the prefix `{prefix}` is the edge's own"));
        }
        let uri: Uri = upstream.parse().map_err(|e| format!("`{upstream}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() || !matches!(uri.path(), "" | "/") {
            return Err(format!(
                "`{upstream}` must be an http:// URL without a path: the subgraph sits beside the edge, on a private network"
            ));
        }
        Ok(Self { prefix: prefix.to_owned(), upstream: upstream.trim_end_matches('/').to_owned() })
    }
}

fn coded(status: StatusCode, code: Code, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}

/// The route `path` is under, if any (an exact path, else the longest folder prefix).
fn route_for<'a>(routes: &'a [PassRoute], path: &str) -> Option<&'a PassRoute> {
    routes
        .iter()
        .filter(|r| if r.prefix.ends_with('/') { path.starts_with(&r.prefix) } else { path == r.prefix })
        .max_by_key(|r| r.prefix.len())
}

/// Passes a request under a pass route to its subgraph; 404 (coded) for any other path.
pub(crate) async fn pass(State(edge): State<Arc<Edge>>, request: Request) -> Response {
    let cfg = edge.cfg();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let Some(route) = route_for(&cfg.pass, path) else {
        return coded(StatusCode::NOT_FOUND, Code::NotFound, "no such path: GraphQL is at /graphql");
    };
    // A path that climbs out of the prefix (`/api/v1/../x`) is refused rather than normalised: the
    // subgraph would see another route than the one the prefix named.
    if path.split('/').any(|seg| seg == ".." || seg == ".") || path.contains('\\') {
        return coded(StatusCode::BAD_REQUEST, Code::BadUserInput, "the path has `.` or `..` segments");
    }
    let max = cfg.max_pass_body_bytes;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large(max);
    }
    let Some(secret) = &cfg.router_secret else {
        // The edge does not start with pass routes and no secret (`Shared::new`); kept as a guard.
        return coded(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "internal error");
    };
    let target = format!("{}{}", route.upstream, parts.uri.path_and_query().map_or(path, |pq| pq.as_str()));
    let mut req = axum::http::Request::builder().method(parts.method.clone()).uri(target);
    for (name, value) in &parts.headers {
        if PASSED_HEADERS.contains(&name.as_str()) {
            req = req.header(name, value);
        }
    }
    if let Some(n) = declared {
        req = req.header(header::CONTENT_LENGTH, n);
    }
    let Ok(secret) = HeaderValue::from_str(secrecy::ExposeSecret::expose_secret(secret)) else {
        return coded(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "internal error");
    };
    req = req.header(ROUTER_SECRET_HEADER, secret);

    let watch = Arc::new(Watch::new());
    let body = Body::from_stream(limited(body, max, watch.clone()));
    let req = match req.body(body) {
        Ok(r) => r,
        Err(e) => return coded(StatusCode::BAD_REQUEST, Code::BadUserInput, &format!("cannot be passed on: {e}")),
    };
    let answer = edge.http.request(req);
    tokio::pin!(answer);
    let upstream = loop {
        match tokio::time::timeout(Duration::from_secs(1), &mut answer).await {
            Ok(Ok(r)) => break r,
            Ok(Err(e)) if watch.exceeded.load(Ordering::Relaxed) => {
                tracing::debug!(error = %e, "a passed body went over the limit");
                return too_large(max);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, upstream = %route.upstream, "a pass route's subgraph did not answer");
                return coded(
                    StatusCode::BAD_GATEWAY,
                    Code::Unavailable,
                    "the service behind this path is unavailable",
                );
            }
            Err(_) if watch.idle() > READ_TIMEOUT => {
                return coded(StatusCode::GATEWAY_TIMEOUT, Code::Unavailable, "nothing was sent or answered in time");
            }
            Err(_) => {}
        }
    };
    if watch.exceeded.load(Ordering::Relaxed) {
        return too_large(max);
    }
    let (parts, incoming) = upstream.into_parts();
    let mut resp = Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) || name == header::CONTENT_LENGTH {
            resp = resp.header(name, value);
        }
    }
    let chunks = futures::stream::unfold(http_body_util::BodyDataStream::new(incoming), |mut stream| async move {
        match tokio::time::timeout(READ_TIMEOUT, stream.next()).await {
            Ok(Some(chunk)) => Some((chunk.map_err(axum::Error::new), stream)),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new("the subgraph sent nothing in time")), stream)),
        }
    });
    resp.body(Body::from_stream(chunks)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// The request headers a passed request keeps (the router's own list, and what bodies and the token
/// endpoint need); cookies, forwarding headers, a client's router secret and everything else stay behind.
const PASSED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-encoding",
    "accept",
    "range",
    "if-match",
    "if-none-match",
    "if-range",
    "traceparent",
    "tracestate",
    "x-correlation-id",
    "user-agent",
];

fn too_large(max: u64) -> Response {
    coded(StatusCode::PAYLOAD_TOO_LARGE, Code::BadUserInput, &format!("the body is larger than {max} bytes"))
}

/// What a passed request's body did: when it last moved, and whether it went over the limit.
struct Watch {
    start: Instant,
    /// Milliseconds after `start` of the last chunk.
    last: AtomicU64,
    exceeded: AtomicBool,
}

impl Watch {
    fn new() -> Self {
        Self { start: Instant::now(), last: AtomicU64::new(0), exceeded: AtomicBool::new(false) }
    }

    fn touch(&self) {
        self.last.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// The client's body, chunk by chunk, cut with an error once more than `max` bytes came, or when nothing
/// came for [`READ_TIMEOUT`].
fn limited(
    body: Body,
    max: u64,
    watch: Arc<Watch>,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send + 'static {
    futures::stream::unfold(
        (body.into_data_stream(), 0u64, watch, false),
        move |(mut s, seen, watch, done)| async move {
            if done {
                return None;
            }
            match tokio::time::timeout(READ_TIMEOUT, s.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let seen = seen + chunk.len() as u64;
                    watch.touch();
                    if seen > max {
                        watch.exceeded.store(true, Ordering::Relaxed);
                        return Some((Err(axum::Error::new("the body is over the limit")), (s, seen, watch, true)));
                    }
                    Some((Ok(chunk), (s, seen, watch, false)))
                }
                Ok(Some(Err(e))) => Some((Err(e), (s, seen, watch, true))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new("the client sent nothing in time")), (s, seen, watch, true))),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_routes_are_read_strictly() {
        let r: PassRoute = "/api/v1/=http://lineage:4000/".parse().unwrap();
        assert_eq!(r, PassRoute { prefix: "/api/v1/".into(), upstream: "http://lineage:4000".into() });
        let exact: PassRoute = "/oauth/token=http://identity:4001".parse().unwrap();
        assert_eq!(exact.prefix, "/oauth/token");
        for bad in [
            "/api/v1/",
            "api/v1/=http://x:1",
            "/=http://x:1",
            "/graphql/=http://x:1",
            "/graphql=http://x:1",
            "/api/v1/=https://x:1",
            "/api/v1/=http://x:1/base",
            "/api//v1/=http://x:1",
            "/api/../v1/=http://x:1",
        ] {
            assert!(bad.parse::<PassRoute>().is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn the_longest_prefix_decides_and_only_whole_segments_match() {
        let routes: Vec<PassRoute> = ["/api/=http://a:1", "/api/v1/=http://b:1", "/oauth/token=http://c:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(route_for(&routes, "/oauth/token").unwrap().upstream, "http://c:1");
        assert!(route_for(&routes, "/oauth/introspect").is_none(), "an exact path passes nothing beside it");
        assert!(route_for(&routes, "/oauth/token/x").is_none());
        assert_eq!(route_for(&routes, "/api/v1/lineage").unwrap().upstream, "http://b:1");
        assert_eq!(route_for(&routes, "/api/v2/x").unwrap().upstream, "http://a:1");
        assert!(route_for(&routes, "/apix").is_none());
        assert!(route_for(&routes, "/graphql").is_none());
    }
}
