//! Prometheus metrics, served at `/metrics`.

use std::sync::LazyLock;

use prometheus::{
    register_gauge_vec_with_registry, register_histogram_with_registry, register_int_counter_vec_with_registry,
    register_int_counter_with_registry, Encoder, GaugeVec, Histogram, IntCounter, IntCounterVec, Registry, TextEncoder,
};

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

pub static GRAPHQL_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec_with_registry!(
        "cp_graphql_requests_total",
        "GraphQL requests by outcome (ok, error, unauthenticated)",
        &["outcome"],
        REGISTRY
    )
    .expect("metric registers")
});

pub static GRAPHQL_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec_with_registry!(
        "cp_graphql_errors_total",
        "GraphQL errors returned, by extensions.code",
        &["code"],
        REGISTRY
    )
    .expect("metric registers")
});

pub static GRAPHQL_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram_with_registry!(
        "cp_graphql_request_seconds",
        "Time to answer a GraphQL request, authentication included",
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
        REGISTRY
    )
    .expect("metric registers")
});

pub static OUTBOX_PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter_with_registry!("cp_outbox_published_total", "Events the relay published", REGISTRY)
        .expect("metric registers")
});

pub static OUTBOX_RELAY_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter_with_registry!(
        "cp_outbox_relay_errors_total",
        "Relay rounds that failed (broker or database down)",
        REGISTRY
    )
    .expect("metric registers")
});

pub static OUTBOX_PARKED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter_with_registry!(
        "cp_outbox_parked_total",
        "Outbox rows the relay could not decode and parked (kept, with their reason)",
        REGISTRY
    )
    .expect("metric registers")
});

pub static OUTBOX_UNROUTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter_with_registry!(
        "cp_outbox_unrouted_total",
        "Events no queue was bound for, kept in the unrouted queue",
        REGISTRY
    )
    .expect("metric registers")
});

pub static CONSUMER_MESSAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec_with_registry!(
        "cp_consumer_messages_total",
        "Consumed messages by handler and outcome (applied, duplicate, retried, dead_lettered)",
        &["handler", "outcome"],
        REGISTRY
    )
    .expect("metric registers")
});

pub static PROJECTION_LAG_SECONDS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec_with_registry!(
        "cp_projection_lag_seconds",
        "How far a projection is behind its event store: from the last event it applied being recorded to its \
         applying (0 once caught up), by projector",
        &["projector"],
        REGISTRY
    )
    .expect("metric registers")
});

/// The text exposition of every metric.
pub fn render() -> String {
    // Touch the lazies so a fresh process exposes every series, not only those that have fired.
    LazyLock::force(&GRAPHQL_REQUESTS);
    LazyLock::force(&GRAPHQL_ERRORS);
    LazyLock::force(&GRAPHQL_SECONDS);
    LazyLock::force(&OUTBOX_PUBLISHED);
    LazyLock::force(&OUTBOX_RELAY_ERRORS);
    LazyLock::force(&OUTBOX_PARKED);
    LazyLock::force(&OUTBOX_UNROUTED);
    LazyLock::force(&CONSUMER_MESSAGES);
    LazyLock::force(&PROJECTION_LAG_SECONDS);
    let mut buf = Vec::new();
    TextEncoder::new().encode(&REGISTRY.gather(), &mut buf).expect("text encoding");
    String::from_utf8(buf).expect("prometheus text is UTF-8")
}
