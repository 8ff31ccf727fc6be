//! HTTP routes beside `/graphql` that act for a caller (lineage's streaming upload, OpenLineage ingestion):
//! the same protection as `/graphql`, given by the kernel rather than by each handler.
//!
//! A subgraph returns them from `Subgraph::protected_routes`; [`protect`] puts the router-secret guard in
//! front of every one (a request that did not come through the router is refused with 403 before its body
//! is read), and a handler takes an [`Authenticated`] argument: the verified bearer token as a
//! [`RequestContext`] (401 with a code when it is missing or does not verify), on which the access checks
//! of [`crate::access::Authorize`] work as in a resolver.
//!
//! ```ignore
//! async fn upload(Authenticated(req): Authenticated, body: Body) -> Result<Json<…>, Response> {
//!     let tenant = req.authorize(lineage::WRITE)?;
//!     …
//! }
//! ```

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use secrecy::SecretString;

use super::guard::{refusal, secret_matches};
use super::handler::bearer;
use super::ROUTER_SECRET_HEADER;
use crate::auth::Authenticator;
use crate::context::RequestContext;
use crate::error::{Code, Error};

/// Guards every route of `routes` with the router secret and lets their handlers authenticate callers
/// through [`Authenticated`].
pub fn protect(routes: Router, router_secret: SecretString, auth: Arc<Authenticator>) -> Router {
    if !routes.has_routes() {
        return routes; // axum refuses a route layer on no routes
    }
    routes
        .route_layer(middleware::from_fn_with_state(Arc::new(router_secret), require_router_secret))
        .layer(Extension(auth))
}

async fn require_router_secret(State(secret): State<Arc<SecretString>>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(ROUTER_SECRET_HEADER).and_then(|v| v.to_str().ok());
    if !secret_matches(&secret, presented) {
        return refusal(StatusCode::FORBIDDEN, Code::Forbidden, "requests must come through the router");
    }
    next.run(request).await
}

/// The caller of a protected route, authenticated like a GraphQL request: its bearer token verified, its
/// trace and correlation ids taken from the headers.
#[derive(Clone, Debug)]
pub struct Authenticated(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let Some(auth) = parts.extensions.get::<Arc<Authenticator>>().cloned() else {
            // A route that was not given through `protect`: a wiring mistake, never a caller's.
            tracing::error!("Authenticated used on a route the kernel does not protect");
            return Err(refusal(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "internal error"));
        };
        let caller = match bearer(&parts.headers) {
            Some(token) => auth.authenticate(token).await,
            None => Err(Error::unauthenticated("missing bearer token")),
        };
        match caller {
            Ok(caller) => {
                let (trace_id, correlation_id) = RequestContext::ids_from_headers(&parts.headers);
                Ok(Authenticated(RequestContext { caller, trace_id, correlation_id }))
            }
            Err(e) => Err(error_response(&e)),
        }
    }
}

/// A kernel error as a coded JSON response with the HTTP status that goes with its code.
pub fn error_response(e: &Error) -> Response {
    let status = match e.code() {
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Forbidden => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::BadUserInput => StatusCode::BAD_REQUEST,
        Code::Conflict => StatusCode::CONFLICT,
        Code::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let gql = e.to_graphql();
    let body = serde_json::json!({ "errors": [{ "message": gql.message, "extensions": gql.extensions }] });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::access::Authorize;
    use crate::auth::{JwksSource, JwtVerifier, LocalSigner};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    async fn whoami(Authenticated(req): Authenticated) -> Result<String, Response> {
        let tenant = req.authorize("catalogue:read").map_err(|e| error_response(&e))?;
        Ok(format!("{} of {tenant}", req.caller.subject))
    }

    async fn call(app: &Router, secret: Option<&str>, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::get("/whoami");
        if let Some(s) = secret {
            req = req.header(ROUTER_SECRET_HEADER, s);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[test]
    fn a_subgraph_without_protected_routes_gets_none() {
        let signer = LocalSigner::generate("k1");
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(signer.jwks().to_string()));
        let auth = Arc::new(Authenticator::new(jwt, None, None, &crate::config::test_config()));
        assert!(!protect(Router::new(), SECRET.to_owned().into(), auth).has_routes());
    }

    #[tokio::test]
    async fn a_protected_route_wants_the_router_secret_then_a_verified_token_then_the_permission() {
        let signer = LocalSigner::generate("k1");
        let jwt = JwtVerifier::new("iss", "aud", JwksSource::Static(signer.jwks().to_string()));
        let auth = Arc::new(Authenticator::new(jwt, None, None, &crate::config::test_config()));
        let app = protect(Router::new().route("/whoami", get(whoami)), SECRET.to_owned().into(), auth);
        let now = chrono::Utc::now().timestamp();
        let token = |scope: &str| {
            signer.sign(&serde_json::json!({
                "iss": "iss", "aud": "aud", "sub": "p-1", "tid": "acme", "scope": scope, "exp": now + 60
            }))
        };

        let (status, body) = call(&app, None, Some(&token("catalogue:read"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("FORBIDDEN") && body.contains("through the router"), "{body}");
        let (status, body) = call(&app, Some("wrong"), Some(&token("catalogue:read"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(&app, Some(SECRET), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
        let (status, body) = call(&app, Some(SECRET), Some("not-a-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, body) = call(&app, Some(SECRET), Some(&token("identity:read"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(&app, Some(SECRET), Some(&token("catalogue:read"))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "p-1 of acme"));
    }
}
