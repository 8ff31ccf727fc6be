//! The `/graphql` POST handler: one request per body, authenticated, run with its per-request data; every
//! error it answers with carries a code.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::{ObjectType, Pos, ServerError, SubscriptionType};
use async_graphql_axum::GraphQLResponse;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::context::RequestContext;
use crate::error::{Code, Error};
use crate::metrics;

use super::guard::{refusal, too_large};
use super::AppState;

pub(super) async fn graphql<Q, M, S>(
    State(state): State<Arc<AppState<Q, M, S>>>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let started = Instant::now();
    // One request per POST, parsed straight from the JSON body (the guard admits only JSON). Parsed as
    // async-graphql's batch form — an untagged enum — a body would be read twice: whole into serde's
    // buffer first, then into the request; a large mutation (a `recordUsage` batch) pays for both.
    let parsed = match body {
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(state.kernel.config.max_body_bytes);
        }
        Err(_) => None,
        Ok(bytes) => serde_json::from_slice::<async_graphql::Request>(&bytes).ok(),
    };
    let Some(request) = parsed else {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["malformed"]).inc();
        return refusal(StatusCode::BAD_REQUEST, Code::BadUserInput, "the body is not a GraphQL request");
    };
    // A document nested too deep to parse safely is refused here, before authentication and parsing, with a
    // 400 (over WebSocket, `SelectionLimit` refuses it as the operation starts).
    if let Err(why) = super::limits::within_nesting(&request.query) {
        metrics::GRAPHQL_REQUESTS.with_label_values(&["malformed"]).inc();
        return refusal(StatusCode::BAD_REQUEST, Code::BadUserInput, &why);
    }
    let (trace_id, correlation_id) = RequestContext::ids_from_headers(&headers);
    let span = tracing::info_span!(
        "graphql",
        trace_id = %trace_id,
        correlation_id = %correlation_id,
        tenant = tracing::field::Empty,
        subject = tracing::field::Empty,
    );
    let response = async {
        let caller = match bearer(&headers) {
            Some(token) => state.kernel.auth.authenticate(token).await,
            None => Err(Error::unauthenticated("missing bearer token")),
        };
        match caller {
            Err(e) => {
                metrics::GRAPHQL_REQUESTS.with_label_values(&["unauthenticated"]).inc();
                async_graphql::Response::from_errors(vec![e.to_graphql().into_server_error(Pos::default())])
            }
            Ok(caller) => {
                let current = tracing::Span::current();
                current.record("subject", caller.subject.as_str());
                if let Some(t) = &caller.tenant {
                    current.record("tenant", t.as_str());
                }
                let ctx = RequestContext { caller, trace_id, correlation_id };
                let mut req = request;
                (state.per_request)(&mut req.data, &ctx);
                req.data.insert(ctx);
                let resp = state.schema.execute(req).await;
                let outcome = if resp.errors.is_empty() { "ok" } else { "error" };
                metrics::GRAPHQL_REQUESTS.with_label_values(&[outcome]).inc();
                resp
            }
        }
    }
    .instrument(span)
    .await;
    let mut response = response;
    coded(&mut response.errors);
    metrics::GRAPHQL_SECONDS.observe(started.elapsed().as_secs_f64());
    GraphQLResponse::from(response).into_response()
}

/// Most errors one response carries; the rest are summed up in one more.
pub const MAX_ERRORS: usize = 20;

/// Gives every error a code: request-level errors (parse, validation, limits: no path) are
/// `BAD_USER_INPUT`; an execution error without a code becomes `INTERNAL` with a generic message, its
/// original text logged. Caps the list at [`MAX_ERRORS`].
pub fn coded(errors: &mut Vec<ServerError>) {
    if errors.len() > MAX_ERRORS {
        let dropped = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        let mut more = ServerError::new(format!("{dropped} more errors were left out"), None);
        more.extensions.get_or_insert_with(Default::default).set("code", Code::BadUserInput.as_str());
        errors.push(more);
    }
    for err in errors.iter_mut() {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            if err.path.is_empty() {
                ext.set("code", Code::BadUserInput.as_str());
            } else {
                tracing::error!(error = %err.message, path = ?err.path, "uncoded error during execution");
                err.message = "internal error".to_owned();
                err.source = None;
                ext.set("code", Code::Internal.as_str());
            }
        }
        if let Some(async_graphql::Value::String(code)) = ext.get("code") {
            metrics::GRAPHQL_ERRORS.with_label_values(&[code.as_str()]).inc();
        }
    }
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_error_without_a_code_becomes_internal_and_hides_its_text() {
        let mut uncoded = ServerError::new("relation \"tenants\" does not exist at character 15", None);
        uncoded.path = vec![async_graphql::PathSegment::Field("tenant".into())];
        let validation = ServerError::new("Unknown field \"nope\" on type \"Query\"", None);
        let mut errors = vec![uncoded, validation];
        coded(&mut errors);
        assert_eq!(errors[0].message, "internal error");
        let ext = format!("{:?}", errors[0].extensions);
        assert!(ext.contains("INTERNAL") && !ext.contains("tenants"), "{ext}");
        assert!(errors[1].message.contains("Unknown field"), "request-level errors keep their message");
        assert!(format!("{:?}", errors[1].extensions).contains("BAD_USER_INPUT"));
    }

    #[test]
    fn error_lists_are_bounded() {
        let mut errors: Vec<ServerError> = (0..500).map(|i| ServerError::new(format!("e{i}"), None)).collect();
        coded(&mut errors);
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert!(errors[MAX_ERRORS].message.contains("480 more"));
    }
}
