//! The canonical event envelope.
//!
//! JSON keys, exactly: `eventId` (`evt-` + UUIDv7), `eventType` (NounVerbPastTense, or VerbNoun for commands),
//! `tenantId`, `projectId` and `moduleId` (when they apply), `traceId`, `correlationId`, `causationId`,
//! `occurredAt` (RFC 3339 UTC) and `payload`. The broker headers `cs-tenant-id` and `cs-schema-version` travel
//! beside it, and `cs-actor` (who acted) when a principal did. A breaking payload change makes a new type (`UsageRecordedV2`) with a new schema version.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::TenantId;

/// A payload type: its domain is the routing key's prefix, its name the envelope's `eventType`, its version
/// the `cs-schema-version` header. Declare payloads with [`crate::events!`], which fills these in.
pub trait Event: Serialize {
    /// The publishing domain (`tenancy`): the routing key is `<DOMAIN>.<TYPE>`.
    const DOMAIN: &'static str;
    const TYPE: &'static str;
    const VERSION: u32 = 1;

    /// The envelope's `projectId`, for events about something inside a project.
    fn project_id(&self) -> Option<String> {
        None
    }

    /// The envelope's `moduleId`, for events about a module.
    fn module_id(&self) -> Option<String> {
        None
    }

    /// Whom this one event is addressed to, when it is an answer rather than news: a domain (or a partner's
    /// prefix) that asked. It then travels under `<DOMAIN>.<TYPE>.<audience>`, so only the asker's queue
    /// (bound with [`Event::routing_key_to`]) receives it, and `#` bindings (the audit) still see it.
    fn audience(&self) -> Option<&str> {
        None
    }

    /// The routing key of this type's broadcast events: what a consumer binds.
    fn routing_key() -> String {
        crate::broker::routing_key(Self::DOMAIN, Self::TYPE)
    }

    /// The routing key of this type's events addressed to `audience` ([`Event::audience`]).
    fn routing_key_to(audience: &str) -> String {
        format!("{}.{audience}", Self::routing_key())
    }

    /// The routing key this event travels under.
    fn routing_key_of(&self) -> String {
        match self.audience() {
            Some(a) => Self::routing_key_to(a),
            None => Self::routing_key(),
        }
    }
}

/// The audience a `<domain>.<Thing>` kind names: its first segment, when it is a routing-key word (lower-case
/// letters, digits and hyphens, 1 to 63) — anything else is addressed to nobody in particular.
pub fn audience_of(kind: &str) -> Option<&str> {
    let (first, _) = kind.split_once('.')?;
    let word = (1..=63).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    word.then_some(first)
}

/// Declares a domain's event (and command) payloads: each becomes a camelCase serde struct implementing
/// [`Event`] with the domain, its own name as the type, and version 1 unless `#[version = N]` (after its
/// doc comment) says otherwise. `#[project = field]` and `#[module = field]` (after the version) copy a
/// field into the envelope's `projectId` / `moduleId` (a `String`, `Uuid`, an id or an `Option` of one).
/// `#[audience = field.kind]` (last) addresses the event to the domain a `<domain>.<Thing>` field names
/// ([`Event::audience`]).
///
/// ```ignore
/// kernel::events! {
///     domain = "tenancy";
///     /// A tenant was renamed.
///     TenantUpdated { tenant_id: String, display_name: String }
///     #[version = 2]
///     UsageRecordedV2 { meter: String, quantity: i64 }
///     #[project = project_id] #[module = module_id]
///     ModuleRegistered { project_id: Uuid, module_id: Uuid }
/// }
/// ```
#[macro_export]
macro_rules! events {
    (domain = $domain:literal; $($rest:tt)*) => { $crate::__events_inner!($domain; $($rest)*); };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __events_inner {
    ($domain:literal;) => {};
    ($domain:literal; $(#[doc = $doc:literal])* $(#[version = $ver:literal])?
        $(#[project = $pf:ident])? $(#[module = $mf:ident])? $(#[audience = $($af:ident).+])?
        $name:ident { $($(#[$fattr:meta])* $field:ident : $ty:ty),* $(,)? } $($rest:tt)*) => {
        $(#[doc = $doc])*
        #[derive(Clone, Debug, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($(#[$fattr])* pub $field: $ty),* }
        impl $crate::envelope::Event for $name {
            const DOMAIN: &'static str = $domain;
            const TYPE: &'static str = stringify!($name);
            const VERSION: u32 = $crate::__event_version!($($ver)?);
            $(fn project_id(&self) -> Option<String> {
                $crate::envelope::EnvelopeId::envelope_id(&self.$pf)
            })?
            $(fn module_id(&self) -> Option<String> {
                $crate::envelope::EnvelopeId::envelope_id(&self.$mf)
            })?
            $(fn audience(&self) -> Option<&str> {
                $crate::envelope::audience_of(&self.$($af).+)
            })?
        }
        $crate::__events_inner!($domain; $($rest)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __event_version {
    () => {
        1
    };
    ($ver:literal) => {
        $ver
    };
}

/// A payload field that can fill the envelope's `projectId` or `moduleId`.
pub trait EnvelopeId {
    fn envelope_id(&self) -> Option<String>;
}

impl EnvelopeId for String {
    fn envelope_id(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl EnvelopeId for uuid::Uuid {
    fn envelope_id(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl<T: EnvelopeId> EnvelopeId for Option<T> {
    fn envelope_id(&self) -> Option<String> {
        self.as_ref().and_then(EnvelopeId::envelope_id)
    }
}

/// Where an event comes from in the causal chain.
#[derive(Clone, Debug, Default)]
pub struct EventMeta {
    pub trace_id: String,
    pub correlation_id: String,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<String>,
    /// Who acted: the subject of the token whose request (or the command it sent) caused the event. Not an
    /// envelope key: it travels in the `cs-actor` header.
    pub actor: Option<String>,
}

impl EventMeta {
    /// For work no request caused (a bootstrap, a start-up load, a timer firing): a fresh trace id,
    /// `correlation` as the correlation id, and `actor` as who acted.
    pub fn system(correlation: impl Into<String>, actor: &str) -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            correlation_id: correlation.into(),
            causation_id: None,
            actor: Some(actor.to_owned()),
        }
    }
}

/// The canonical envelope. Readers tolerate keys they do not know (a later version's), so adding a key never
/// breaks a running consumer of the previous version; writers write exactly the canonical keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    /// Who acted ([`EventMeta::actor`]): beside the envelope (the outbox's `actor` column, the `cs-actor`
    /// header), never in its JSON.
    #[serde(skip)]
    pub actor: Option<String>,
    /// The routing key the message was published under, as the broker vouches for it (a domain's broker
    /// user publishes only under its own prefix): set by the consumer that received it, never from the
    /// JSON. [`Envelope::publisher`] is its domain.
    #[serde(skip)]
    pub published_under: Option<String>,
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
            project_id: payload.project_id(),
            module_id: payload.module_id(),
            trace_id: meta.trace_id.clone(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            actor: meta.actor.clone(),
            published_under: None,
            // Millisecond precision, as serialized, so an envelope survives a round trip unchanged.
            occurred_at: Utc::now().trunc_subsecs(3),
            payload: serde_json::to_value(payload).expect("event payloads serialize"),
        }
    }

    /// The payload as the type its publisher declared.
    pub fn payload_as<E: Event + serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }

    /// The meta for events this one causes: same trace, correlation and actor, caused by this event.
    pub fn caused_meta(&self) -> EventMeta {
        EventMeta {
            trace_id: self.trace_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: Some(self.event_id.clone()),
            actor: self.actor.clone(),
        }
    }

    /// The domain that published this message, when it came through a consumer: the first segment of
    /// [`Envelope::published_under`] that names a domain ([`crate::contracts::DOMAINS`]) — its prefix in
    /// production; tests run consumers in a namespace that comes before it (`t-1.catalogue.…`).
    pub fn publisher(&self) -> Option<&'static str> {
        let key = self.published_under.as_deref()?;
        key.split('.').take(2).find_map(|segment| crate::contracts::DOMAINS.iter().find(|d| **d == segment).copied())
    }

    /// Takes the actor from a message's `cs-actor` header.
    pub fn with_actor_from(mut self, headers: Option<&lapin::types::FieldTable>) -> Self {
        self.actor = crate::broker::actor(headers);
        self
    }
}

/// The events one consumer takes, as a typed enum: `decode` reads an envelope into the variant its event
/// type names, so a handler matches on contracts, never on type-name strings.
///
/// ```ignore
/// kernel::inbound! {
///     /// What catalogue's command consumer takes.
///     pub enum Command {
///         CreateProject(events::CreateProject),
///         ValidateBlueprint(events::ValidateBlueprint),
///     }
/// }
/// match Command::decode(envelope)? { Command::CreateProject(c) => …, Command::ValidateBlueprint(c) => … }
/// ```
///
/// `decode` answers [`Inbound::Unknown`](crate::envelope::Inbound) for a type the enum does not list (a
/// consumer's queue may be bound to more than it handles, and a newer publisher may add types) and
/// [`Inbound::Malformed`] for a listed type whose payload does not decode. [`Inbound::into_result`] makes
/// both a permanent failure, for consumers that take nothing else.
#[macro_export]
macro_rules! inbound {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident($payload:ty) ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis enum $name { $( $(#[$vmeta])* $variant($payload) ),+ }

        impl $name {
            /// Every event type this enum takes.
            pub const TYPES: &'static [&'static str] = &[$(<$payload as $crate::envelope::Event>::TYPE),+];

            /// The routing keys of every event this enum takes: a consumer's bindings.
            pub fn routing_keys() -> ::std::vec::Vec<::std::string::String> {
                ::std::vec![$(<$payload as $crate::envelope::Event>::routing_key()),+]
            }

            /// The routing keys of these events when addressed to `audience` ([`Event::audience`]): the
            /// bindings of a consumer of answers to what it asked.
            #[allow(dead_code)]
            pub fn routing_keys_to(audience: &str) -> ::std::vec::Vec<::std::string::String> {
                ::std::vec![$(<$payload as $crate::envelope::Event>::routing_key_to(audience)),+]
            }

            /// The envelope's payload as the contract its event type names.
            pub fn decode(envelope: &$crate::envelope::Envelope) -> $crate::envelope::Inbound<Self> {
                let t = envelope.event_type.as_str();
                $(
                    if t == <$payload as $crate::envelope::Event>::TYPE {
                        return match envelope.payload_as::<$payload>() {
                            Ok(p) => $crate::envelope::Inbound::Known($name::$variant(p)),
                            Err(e) => $crate::envelope::Inbound::Malformed(t.to_owned(), e),
                        };
                    }
                )+
                $crate::envelope::Inbound::Unknown(t.to_owned())
            }
        }
    };
}

/// What [`inbound!`](crate::inbound)'s `decode` made of an envelope.
#[derive(Debug)]
pub enum Inbound<T> {
    /// One of the listed contracts.
    Known(T),
    /// A type the consumer does not list (its name).
    Unknown(String),
    /// A listed type whose payload does not decode (its name and why).
    Malformed(String, serde_json::Error),
}

impl<T> Inbound<T> {
    /// The contract, or a permanent failure naming the type: for consumers that take nothing else, whose
    /// unknown or malformed messages are dead-lettered.
    pub fn into_result(self, consumer: &str) -> Result<T, crate::consumer::Failure> {
        match self {
            Inbound::Known(t) => Ok(t),
            Inbound::Unknown(t) => Err(crate::consumer::Failure::Permanent(anyhow::anyhow!("{consumer} takes no {t}"))),
            Inbound::Malformed(t, e) => {
                Err(crate::consumer::Failure::Permanent(anyhow::anyhow!("malformed {t} payload: {e}")))
            }
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
        const DOMAIN: &'static str = "test";
        const TYPE: &'static str = "ThingHappened";
    }

    crate::events! {
        domain = "test";
        /// Documented.
        SomethingHappened { n: u32 }
        /// Documented too.
        #[version = 2]
        SomethingHappenedV2 { #[serde(default)] n: u32, what: String }
        /// Inside a project, about a module.
        #[project = project] #[module = module]
        ModuleTouched { project: uuid::Uuid, module: Option<String> }
    }

    crate::inbound! {
        /// What a test consumer takes.
        pub enum Taken {
            Something(SomethingHappened),
            Touched(ModuleTouched),
        }
    }

    #[test]
    fn inbound_decodes_listed_contracts_and_names_the_rest() {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
        let acme = TenantId::parse("acme").unwrap();
        let env = Envelope::new(&acme, &meta, &SomethingHappened { n: 7 });
        assert!(matches!(Taken::decode(&env), Inbound::Known(Taken::Something(SomethingHappened { n: 7 }))));
        let touched = Envelope::new(&acme, &meta, &ModuleTouched { project: uuid::Uuid::nil(), module: None });
        assert!(matches!(Taken::decode(&touched), Inbound::Known(Taken::Touched(m)) if m.module.is_none()));
        assert_eq!(Taken::TYPES, ["SomethingHappened", "ModuleTouched"]);
        assert_eq!(Taken::routing_keys(), vec!["test.SomethingHappened", "test.ModuleTouched"]);
        // A type it does not list is named, not guessed at.
        let other = Envelope::new(&acme, &meta, &SomethingHappenedV2 { n: 1, what: "x".into() });
        assert!(matches!(Taken::decode(&other), Inbound::Unknown(t) if t == "SomethingHappenedV2"));
        assert!(Taken::decode(&other).into_result("test").is_err());
        // A listed type whose payload does not decode is malformed; extra payload fields are tolerated.
        let mut bad = env.clone();
        bad.payload = serde_json::json!({ "n": "seven" });
        assert!(matches!(Taken::decode(&bad), Inbound::Malformed(t, _) if t == "SomethingHappened"));
        let mut extra = env.clone();
        extra.payload = serde_json::json!({ "n": 8, "addedLater": true });
        assert!(matches!(Taken::decode(&extra), Inbound::Known(Taken::Something(SomethingHappened { n: 8 }))));
    }

    #[test]
    fn project_and_module_fields_fill_the_envelope() {
        let meta = EventMeta::default();
        let p = uuid::Uuid::now_v7();
        let env = Envelope::new(
            &TenantId::parse("acme").unwrap(),
            &meta,
            &ModuleTouched { project: p, module: Some("m-1".into()) },
        );
        assert_eq!((env.project_id.as_deref(), env.module_id.as_deref()), (Some(p.to_string().as_str()), Some("m-1")));
        let none = ModuleTouched { project: p, module: None };
        assert_eq!(none.module_id(), None);
        assert_eq!(SomethingHappened { n: 1 }.project_id(), None);
    }

    #[test]
    fn the_events_macro_fills_in_domain_type_and_version() {
        assert_eq!(
            (SomethingHappened::DOMAIN, SomethingHappened::TYPE, SomethingHappened::VERSION),
            ("test", "SomethingHappened", 1)
        );
        assert_eq!(SomethingHappenedV2::VERSION, 2);
        assert_eq!(SomethingHappenedV2::routing_key(), "test.SomethingHappenedV2");
        let v = serde_json::to_value(SomethingHappenedV2 { n: 1, what: "x".into() }).unwrap();
        assert_eq!(v, serde_json::json!({ "n": 1, "what": "x" }));
    }

    #[test]
    fn envelope_has_exactly_the_canonical_keys() {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
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

    #[test]
    fn readers_tolerate_keys_a_later_version_adds() {
        let meta = EventMeta { trace_id: "t".into(), correlation_id: "c".into(), causation_id: None, actor: None };
        let env = Envelope::new(&TenantId::parse("acme").unwrap(), &meta, &Thing { n: 1 });
        let mut json = serde_json::to_value(&env).unwrap();
        json["streamVersion"] = serde_json::json!(7);
        json["artifactId"] = serde_json::json!("a-1");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.publisher(), None, "the publisher is never read from the JSON");
        let under = |key: &str| Envelope { published_under: Some(key.into()), ..env.clone() }.publisher();
        assert_eq!(under("catalogue.RequestApproval"), Some("catalogue"));
        assert_eq!(under("catalogue.workflow.RequestApproval"), Some("catalogue"), "the prefix decides");
        assert_eq!(under("t-1.catalogue.RequestApproval"), Some("catalogue"), "a test's namespace is skipped");
        assert_eq!(under("t-1.t-2.catalogue.RequestApproval"), None);
        assert_eq!(under("nobody.RequestApproval"), None);
    }
}
