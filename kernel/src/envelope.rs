//! The canonical event envelope.
//!
//! JSON keys, exactly: `eventId` (`evt-` + UUIDv7), `eventType` (NounVerbPastTense, or VerbNoun for commands),
//! `tenantId`, `projectId` and `moduleId` (when they apply), `traceId`, `correlationId`, `causationId`,
//! `occurredAt` (RFC 3339 UTC) and `payload`. The broker headers `cs-tenant-id` and `cs-schema-version` travel
//! beside it. A breaking payload change makes a new type (`UsageRecordedV2`) with a new schema version.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::TenantId;

/// A payload type: its name is the envelope's `eventType`, its version the `cs-schema-version` header.
pub trait Event: Serialize {
    const TYPE: &'static str;
    const VERSION: u32 = 1;
}

/// Where an event comes from in the causal chain.
#[derive(Clone, Debug, Default)]
pub struct EventMeta {
    pub trace_id: String,
    pub correlation_id: String,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub event_id: String,
    pub event_type: String,
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_id: Option<String>,
    pub trace_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    #[serde(serialize_with = "rfc3339_utc")]
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

fn rfc3339_utc<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl Envelope {
    pub fn new<E: Event>(tenant: &TenantId, meta: &EventMeta, payload: &E) -> Self {
        Self {
            event_id: format!("evt-{}", uuid::Uuid::now_v7()),
            event_type: E::TYPE.to_owned(),
            tenant_id: tenant.clone(),
            project_id: None,
            module_id: None,
            trace_id: meta.trace_id.clone(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            // Millisecond precision, as serialized, so an envelope survives a round trip unchanged.
            occurred_at: Utc::now().trunc_subsecs(3),
            payload: serde_json::to_value(payload).expect("event payloads serialize"),
        }
    }

    /// The meta for events this one causes: same trace and correlation, caused by this event.
    pub fn caused_meta(&self) -> EventMeta {
        EventMeta {
            trace_id: self.trace_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: Some(self.event_id.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Thing {
        n: u32,
    }
    impl Event for Thing {
        const TYPE: &'static str = "ThingHappened";
    }

    #[test]
    fn envelope_has_exactly_the_canonical_keys() {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None };
        let env = Envelope::new(&TenantId::parse("acme").unwrap(), &meta, &Thing { n: 1 });
        let json = serde_json::to_value(&env).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["causationId", "correlationId", "eventId", "eventType", "occurredAt", "payload", "tenantId", "traceId"]
        );
        assert!(env.event_id.starts_with("evt-"));
        assert!(json["occurredAt"].as_str().unwrap().ends_with('Z'));
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env.clone());
    }
}
