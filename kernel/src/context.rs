//! The per-request context every resolver reads: who calls, for which tenant, under which trace.

use crate::auth::Caller;
use crate::envelope::EventMeta;
use crate::error::{Error, Result};
use crate::ids::TenantId;

/// Put into every GraphQL request's data by the server; read it with [`ContextExt::request`].
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub caller: Caller,
    /// W3C trace id (from `traceparent`, or new).
    pub trace_id: String,
    /// From `x-correlation-id`, or the trace id.
    pub correlation_id: String,
}

impl RequestContext {
    /// The caller's tenant; platform-operator tokens have none and are refused here. Resolvers check
    /// access through [`crate::access::Authorize`] instead.
    pub(crate) fn tenant(&self) -> Result<&TenantId> {
        self.caller.tenant.as_ref().ok_or_else(|| Error::forbidden("this operation needs a tenant-scoped token"))
    }

    pub(crate) fn require_scope(&self, scope: &str) -> Result<()> {
        if self.caller.has_scope(scope) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("missing scope `{scope}`")))
        }
    }

    /// Trace, correlation and causation ids, and the actor (the caller), for events this request causes.
    pub fn event_meta(&self) -> EventMeta {
        EventMeta {
            trace_id: self.trace_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: None,
            actor: Some(self.caller.subject.clone()),
        }
    }

    /// Parses the `traceparent` and `x-correlation-id` headers, making new ids where they are absent or bad.
    pub fn ids_from_headers(headers: &axum::http::HeaderMap) -> (String, String) {
        let trace_id = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let parts: Vec<&str> = v.split('-').collect();
                (parts.len() == 4
                    && parts[1].len() == 32
                    && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
                    && parts[1] != "00000000000000000000000000000000")
                    .then(|| parts[1].to_ascii_lowercase())
            })
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let correlation_id = headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| trace_id.clone());
        (trace_id, correlation_id)
    }

    /// Ends `stream` when the caller's token expires, so a subscription cannot outlive its credentials.
    pub fn until_expiry<St: futures::Stream + Send>(&self, stream: St) -> impl futures::Stream<Item = St::Item> + Send {
        use futures::StreamExt;
        let left = (self.caller.expires_at - chrono::Utc::now().timestamp()).max(0) as u64;
        stream.take_until(tokio::time::sleep(std::time::Duration::from_secs(left)))
    }
}

/// A subgraph's state (put into the schema's data as `Arc<S>`), in a resolver.
pub fn state<'a, S: Send + Sync + 'static>(ctx: &'a async_graphql::Context<'_>) -> &'a S {
    ctx.data_unchecked::<std::sync::Arc<S>>()
}

/// `ctx.request()` in resolvers.
pub trait ContextExt {
    fn request(&self) -> &RequestContext;
}

impl ContextExt for async_graphql::Context<'_> {
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }
}
