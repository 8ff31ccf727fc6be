//! The context-map projection: on `BlueprintVersionValidated`, the blueprint's bounded contexts, their
//! relationships and their aggregates and entities are rebuilt from the validated definition — deleted and
//! inserted whole, keyed by their natural keys (blueprint, context name, aggregate name, relationship), so
//! projecting the same version twice gives the same rows. An event for a version older than the one already
//! projected is skipped (events may arrive out of order after retries). Emits `ContextMapProjected`.

use kernel::consumer::{ConsumerSpec, Failure, Handler, RetryPolicy};
use kernel::envelope::{Envelope, Event};
use kernel::{Result, TenantId, Work};
use serde_json::{json, Value};

use super::{rules, store, VersionStatus};
use crate::events;
use crate::ids::BlueprintId;

/// The durable queue of validated blueprint versions.
pub fn spec(retry: RetryPolicy) -> ConsumerSpec {
    ConsumerSpec {
        queue: format!("{}.context-maps", crate::events::DOMAIN),
        bindings: vec![crate::events::BlueprintVersionValidated::routing_key()],
        retry,
        prefetch: 8,
    }
}

pub struct ContextMapProjection;

#[async_trait::async_trait]
impl Handler for ContextMapProjection {
    fn name(&self) -> &'static str {
        "catalogue.context-maps"
    }

    async fn handle(&self, work: &mut Work, envelope: &Envelope) -> std::result::Result<(), Failure> {
        let e: events::BlueprintVersionValidated = envelope
            .payload_as()
            .map_err(|e| Failure::Permanent(anyhow::anyhow!("malformed BlueprintVersionValidated: {e}")))?;
        project(work, &envelope.tenant_id, e.blueprint_id, e.version).await?;
        Ok(())
    }
}

/// The rows a validated definition projects to.
pub fn rows(definition: &Value) -> store::MapRows {
    let parsed = rules::parse(definition);
    let contexts: Vec<Value> = parsed
        .contexts
        .iter()
        .enumerate()
        .map(|(i, c)| json!({ "name": c.name, "position": i, "modules": c.modules }))
        .collect();
    let aggregates: Vec<Value> = parsed
        .contexts
        .iter()
        .flat_map(|c| {
            c.aggregates
                .iter()
                .enumerate()
                .map(move |(i, a)| json!({ "context": c.name, "name": a.name, "position": i, "entities": a.entities }))
        })
        .collect();
    let relationships: Vec<Value> = parsed
        .relationships
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({ "upstream": r.upstream, "downstream": r.downstream, "kind": r.kind.as_str(), "position": i })
        })
        .collect();
    store::MapRows {
        contexts: Value::Array(contexts),
        aggregates: Value::Array(aggregates),
        relationships: Value::Array(relationships),
    }
}

/// Rebuilds a blueprint's context map from `version` unless a newer version is projected already; returns
/// whether it did. A version that is unknown or still a draft is skipped.
pub async fn project(work: &mut Work, tenant: &TenantId, blueprint: BlueprintId, version: i32) -> Result<bool> {
    store::lock_projection(work, tenant, blueprint).await?;
    if let Some(projected) = store::projected_version(work, tenant, blueprint).await? {
        if projected > version {
            tracing::info!(%tenant, %blueprint, version, projected, "context map is newer than the event; skipped");
            return Ok(false);
        }
    }
    let Some(v) = store::lock_version(work, tenant, blueprint, version).await? else {
        tracing::warn!(%tenant, %blueprint, version, "context map: no such blueprint version; skipped");
        return Ok(false);
    };
    if v.status == VersionStatus::Draft {
        tracing::warn!(%tenant, %blueprint, version, "context map: the version is not validated; skipped");
        return Ok(false);
    }
    let rows = rows(&v.definition);
    store::replace_context_map(work, tenant, v.project_id, blueprint, version, &rows).await?;
    let event = events::ContextMapProjected {
        blueprint_id: blueprint,
        project_id: v.project_id,
        version,
        contexts: rows.contexts.as_array().map_or(0, Vec::len) as i32,
    };
    work.emit(tenant, &event).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_definition_order() {
        let store::MapRows { contexts: c, aggregates: a, relationships: r } = rows(&json!({
            "contexts": [
                { "name": "B", "modules": ["b"], "aggregates": [{ "name": "X", "entities": ["E1", "E2"] }, { "name": "Y" }] },
                { "name": "A" }
            ],
            "relationships": [{ "upstream": "A", "downstream": "B", "kind": "conformist" }]
        }));
        assert_eq!(
            c,
            json!([{ "name": "B", "position": 0, "modules": ["b"] }, { "name": "A", "position": 1, "modules": [] }])
        );
        assert_eq!(a[0], json!({ "context": "B", "name": "X", "position": 0, "entities": ["E1", "E2"] }));
        assert_eq!(a.as_array().unwrap().len(), 2);
        assert_eq!(r, json!([{ "upstream": "A", "downstream": "B", "kind": "Conformist", "position": 0 }]));
    }
}
