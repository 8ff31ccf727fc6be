//! The token service on identity's HTTP port: the client-credentials grant (RFC 6749 §4.4), the JWKS,
//! introspection (RFC 7662) and revocation (RFC 7009). Errors follow RFC 6749 §5.2 and never echo a
//! credential.

pub mod keys;

use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use kernel::envelope::EventMeta;
use kernel::{api_token, Authorized, TenantId, Work};
use serde::Deserialize;
use serde_json::json;

use crate::clients::{self, store::ClientSecret};
use crate::events;
use crate::ids::ApiTokenId;
use crate::State;

/// The token service's routes; form bodies are bounded like `/graphql`'s (`MAX_BODY_BYTES`, 413 beyond).
pub fn routes(state: Arc<State>) -> Router {
    let limit = axum::extract::DefaultBodyLimit::max(state.kernel.config.max_body_bytes);
    Router::new()
        .route("/oauth/token", post(token))
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
        .route("/.well-known/jwks.json", get(jwks))
        .layer(limit)
        .with_state(state)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (status, Json(json!({ "error": error, "error_description": description }))).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static header"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"control-plane\"".parse().expect("static"));
    }
    resp
}

fn server_error(e: impl std::fmt::Debug) -> Response {
    tracing::error!(error = ?e, "token service error");
    oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
}

#[derive(Deserialize, Default)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// Client credentials from HTTP Basic (preferred) or the form body, never both.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(i, s)| (i.to_owned(), s.to_owned())));
    match (basic, form_id, form_secret) {
        (Some(pair), None, None) => Some(pair),
        (None, Some(id), Some(secret)) => Some((id, secret)),
        _ => None,
    }
}

/// Authenticates a client; `Ok(None)` when the credentials are wrong.
async fn authenticate_client(
    state: &State,
    id: &str,
    secret: &str,
) -> kernel::Result<Option<(TenantId, ClientSecret)>> {
    let Some(tenant) = clients::client_tenant(id) else { return Ok(None) };
    let mut tx = state.kernel.db.tenant_tx(&tenant).await?;
    let client = clients::store::active_client(&mut tx, &tenant, id).await?;
    tx.commit().await?;
    Ok(client.filter(|c| clients::digests_equal(&c.secret_hash, &clients::sha256_hex(secret))).map(|c| (tenant, c)))
}

async fn token(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only client_credentials is supported");
    }
    let Some((id, secret)) = client_credentials(&headers, form.client_id, form.client_secret) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication is required (HTTP Basic)",
        );
    };
    let (tenant, client) = match authenticate_client(&state, &id, &secret).await {
        Ok(Some(found)) => found,
        Ok(None) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret"),
        Err(e) => return server_error(e),
    };
    let held = match async {
        let mut tx = state.kernel.db.tenant_tx(&tenant).await?;
        let held = crate::roles::store::effective_permissions(&mut tx, &tenant, client.principal_id).await?;
        tx.commit().await?;
        Ok::<_, kernel::Error>(held)
    }
    .await
    {
        Ok(held) => held,
        Err(e) => return server_error(e),
    };
    let allowed: Vec<&str> = client.scopes.iter().map(String::as_str).filter(|s| held.iter().any(|h| h == s)).collect();
    let granted: Vec<&str> = match form.scope.as_deref().map(str::split_whitespace) {
        Some(requested) => {
            let requested: Vec<&str> = requested.collect();
            if let Some(bad) = requested.iter().find(|s| !allowed.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("scope `{}` is not granted to this client", kernel::error::clip(bad, 64)),
                );
            }
            requested
        }
        None => allowed,
    };
    let signer = state.keys.current();
    let tid = (!tenant.is_platform()).then(|| tenant.to_string());
    let access_token = signer.mint(
        &state.issuer,
        &state.audience,
        &client.principal_id.to_string(),
        tid.as_deref(),
        &granted,
        state.access_token_ttl,
    );
    let mut resp = Json(json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": state.access_token_ttl.as_secs(),
        "scope": granted.join(" "),
    }))
    .into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static header"));
    resp
}

async fn jwks(AxumState(state): AxumState<Arc<State>>) -> Response {
    let mut resp = Json(state.keys.jwks()).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, "max-age=300".parse().expect("static header"));
    resp
}

#[derive(Deserialize)]
pub struct TokenParam {
    token: String,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Who may introspect or revoke: a subgraph (internal secret), or an authenticated client (tenant-bound).
enum Requester {
    Internal,
    Client(TenantId),
}

async fn requester(
    state: &State,
    headers: &HeaderMap,
    id: Option<String>,
    secret: Option<String>,
) -> Result<Requester, Response> {
    // Subgraphs present the internal credential (never the router secret, which only the router holds).
    let internal = headers.get(kernel::auth::INTERNAL_SECRET_HEADER).and_then(|v| v.to_str().ok());
    if let (Some(presented), Some(expected)) = (internal, &state.kernel.config.internal_secret) {
        if kernel::server::secret_matches(expected, Some(presented)) {
            return Ok(Requester::Internal);
        }
    }
    let Some((id, secret)) = client_credentials(headers, id, secret) else {
        return Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication is required"));
    };
    match authenticate_client(state, &id, &secret).await {
        Ok(Some((tenant, _))) => Ok(Requester::Client(tenant)),
        Ok(None) => Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret")),
        Err(e) => Err(server_error(e)),
    }
}

async fn introspect(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    Form(form): Form<TokenParam>,
) -> Response {
    let who = match requester(&state, &headers, form.client_id, form.client_secret).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let inactive = || Json(json!({ "active": false })).into_response();
    let Ok(caller) = state.kernel.auth.authenticate(&form.token).await else { return inactive() };
    let tenant = caller.tenant.clone().unwrap_or_else(TenantId::platform);
    if let Requester::Client(own) = &who {
        if *own != tenant {
            return inactive(); // a client learns nothing about other tenants' tokens
        }
    }
    let kind = if api_token::looks_like(&form.token) { "api_token" } else { "access_token" };
    Json(json!({
        "active": true, "sub": caller.subject, "tid": caller.tenant.map(|t| t.to_string()),
        "scope": caller.scopes.into_iter().collect::<Vec<_>>().join(" "), "exp": caller.expires_at,
        "jti": caller.token_id, "token_type": kind, "iss": state.issuer,
    }))
    .into_response()
}

async fn revoke(AxumState(state): AxumState<Arc<State>>, headers: HeaderMap, Form(form): Form<TokenParam>) -> Response {
    let who = match requester(&state, &headers, form.client_id, form.client_secret).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    // RFC 7009 §2.2: an unknown or already invalid token still gets 200.
    let Ok(caller) = state.kernel.auth.authenticate(&form.token).await else { return StatusCode::OK.into_response() };
    let tenant = caller.tenant.clone().unwrap_or_else(TenantId::platform);
    if let Requester::Client(own) = &who {
        if *own != tenant {
            return StatusCode::OK.into_response();
        }
    }
    let (trace_id, correlation_id) = kernel::RequestContext::ids_from_headers(&headers);
    // The revocation's actor: the token's own subject (RFC 7009 lets its holder or client revoke it).
    let meta = EventMeta { trace_id, correlation_id, causation_id: None, actor: Some(caller.subject.clone()) };
    // Authorized by the exchange: the token itself, or its own tenant's client, asks (RFC 7009).
    let tenant = Authorized::system(tenant, "oauth token revocation");
    let result = if api_token::looks_like(&form.token) {
        match caller.token_id.as_deref().and_then(|id| id.parse::<ApiTokenId>().ok()) {
            Some(id) => crate::tokens::revoke(&state, &tenant, id, &meta).await,
            None => Ok(()),
        }
    } else {
        match caller.token_id {
            Some(jti) => revoke_access_token(&state, &tenant, &jti, caller.expires_at, &meta).await,
            None => Ok(()),
        }
    };
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => server_error(e),
    }
}

/// Refuses an access token everywhere until it expires: this replica at once, the others through the event.
async fn revoke_access_token(
    state: &State,
    tenant: &Authorized,
    jti: &str,
    exp: i64,
    meta: &EventMeta,
) -> kernel::Result<()> {
    // Recorded (and refused here) before the event goes out: a replica that starts later loads it.
    state.kernel.auth.revoke_access_token(jti, exp).await?;
    let mut work = Work::tenant(&state.kernel.db, tenant, meta.clone()).await?;
    work.emit(tenant, &events::AccessTokenRevoked { jti: jti.to_owned(), expires_at: exp }).await?;
    work.commit().await?;
    Ok(())
}
