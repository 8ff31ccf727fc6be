//! `POST /api/v1/lineage` (through the edge's `/api/v1/` pass route; the kernel guards it with the router
//! secret, [`Authenticated`] verifies the bearer token): one OpenLineage event, JSON, at most
//! `OPENLINEAGE_MAX_EVENT_BYTES`, by a caller with `lineage:write`. 201 once recorded (as Marquez); 400
//! `BAD_USER_INPUT` naming the field (`extensions.field`) for an event the spec refuses; 413 over the
//! size; 415 for a body that is not JSON. Nothing is recorded unless all of it is. Events of concurrent
//! requests are written together ([`super::writer`]); each is answered once its batch has committed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use kernel::permissions::lineage::WRITE;
use kernel::server::{error_response, Authenticated};
use kernel::{Authorize, Error};

use crate::State as Lineage;

pub fn routes(state: Arc<Lineage>) -> Router {
    Router::new().route("/api/v1/lineage", post(receive)).with_state(state)
}

async fn receive(
    State(state): State<Arc<Lineage>>,
    Authenticated(req): Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = async {
        let tenant = req.authorize(WRITE)?;
        let essence = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if essence.as_deref() != Some("application/json") {
            return Err(Error::bad_input("body", "an OpenLineage event is application/json").with("status", 415));
        }
        let max = state.config.openlineage_max_event_bytes;
        let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
            Error::bad_input("body", format!("an OpenLineage event is at most {max} bytes")).with("status", 413)
        })?;
        // serde_json stops at 128 levels of nesting, before its recursion could exhaust the stack.
        let raw: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_input(
                "body",
                format!("the body is not JSON: {}", e.to_string().split(" at line").next().unwrap_or("")),
            )
        })?;
        // PostgreSQL keeps no NUL in text or jsonb: refused here, coded, rather than failing the insert.
        kernel::error::no_nul("body", &raw)?;
        let plan = super::plan(&super::read(&raw)?);
        let submitted = super::Submitted::new(tenant.into_tenant(), plan, raw, req.event_meta());
        // Answered once its batch has committed.
        state.openlineage.submit(submitted).await
    }
    .await;
    match outcome {
        Ok(()) => (StatusCode::CREATED, Json(serde_json::json!({}))).into_response(),
        Err(e) => {
            let mut resp = error_response(&e);
            let status = e.details().iter().find(|(k, _)| *k == "status").and_then(|(_, v)| v.as_u64());
            if let Some(s) = status.and_then(|s| StatusCode::from_u16(s as u16).ok()) {
                *resp.status_mut() = s;
            }
            resp
        }
    }
}
