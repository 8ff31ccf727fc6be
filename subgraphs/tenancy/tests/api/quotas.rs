//! Quotas: concurrent consumption never passes the limit; Redis counters come back from PostgreSQL.

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{code, spawn_app, TestApp};

const CONSUME: &str = "mutation($n: Int!) { consumeQuota(key: \"api-calls\", amount: $n) { used remaining limit } }";

async fn counter(app: &TestApp, tenant: &str) -> Option<i64> {
    let t = kernel::TenantId::parse(tenant).unwrap();
    let start = tenancy::domain::Period::Month.start(chrono::Utc::now());
    let key = tenancy::quotas::QuotaGate::counter_key(&app.state.kernel.cache, &t, "api-calls", start);
    app.state.kernel.cache.connection().get(key).await.unwrap()
}

async fn used_in_postgres(app: &TestApp, tenant: &str) -> i64 {
    let admin = app.admin_pool().await;
    sqlx::query_scalar("SELECT coalesce(sum(used), 0)::bigint FROM quota_balances WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&admin)
        .await
        .unwrap()
}

/// `UsageRecorded` events in the outbox for `tenant`: how many, and their quantities summed.
async fn usage_published(app: &TestApp, tenant: &str) -> (i64, i64) {
    let admin = app.admin_pool().await;
    sqlx::query_as(
        "SELECT count(*), coalesce(sum((envelope #>> '{payload,quantity}')::bigint), 0)::bigint FROM outbox
         WHERE tenant_id = $1 AND event_type = 'UsageRecorded'
           AND envelope #>> '{payload,meter}' = 'api-calls' AND envelope #>> '{payload,dimensions,source}' = 'quota'",
    )
    .bind(tenant)
    .fetch_one(&admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_never_pass_the_limit() {
    let app = spawn_app().await;
    let tenant = format!("q-{}", app.id);
    app.published_edition("pro", 20).await;
    app.active_tenant(&tenant, "pro").await;
    let token = app.member_token(&tenant);

    let results = futures::future::join_all((0..60).map(|_| app.gql(&token, CONSUME, json!({ "n": 1 })))).await;
    let granted = results.iter().filter(|v| v.get("errors").is_none()).count();
    let refused: Vec<_> = results.iter().filter(|v| v.get("errors").is_some()).collect();
    assert_eq!(granted, 20);
    assert_eq!(refused.len(), 40);
    assert!(refused.iter().all(|v| code(v) == "QUOTA_EXCEEDED"), "{refused:?}");
    assert_eq!(used_in_postgres(&app, &tenant).await, 20);
    assert_eq!(counter(&app, &tenant).await, Some(20));
    // Each granted consumption, and only those, went out as usage for governance to meter.
    assert_eq!(usage_published(&app, &tenant).await, (20, 20));
    app.cleanup().await;
}

#[tokio::test]
async fn counters_lost_by_redis_come_back_from_postgres() {
    let app = spawn_app().await;
    let tenant = format!("f-{}", app.id);
    app.published_edition("pro", 10).await;
    app.active_tenant(&tenant, "pro").await;
    let token = app.member_token(&tenant);

    let v = app.ok(&token, CONSUME, json!({ "n": 6 })).await;
    assert_eq!(v["consumeQuota"], json!({ "used": 6, "remaining": 4, "limit": 10 }));
    // Redis loses everything of this app's (its own namespace: other tests and a dev stack share the server).
    let keys = app.redis.keys().await;
    assert!(!keys.is_empty());
    let _: () = app.state.kernel.cache.connection().del(keys).await.unwrap();
    assert_eq!(counter(&app, &tenant).await, None);

    // The counter is rebuilt from PostgreSQL's 6, not restarted at 0.
    let v = app.ok(&token, CONSUME, json!({ "n": 3 })).await;
    assert_eq!(v["consumeQuota"]["used"], 9);
    assert_eq!(counter(&app, &tenant).await, Some(9));
    let v = app.gql(&token, CONSUME, json!({ "n": 2 })).await;
    assert_eq!(code(&v), "QUOTA_EXCEEDED");
    assert_eq!(used_in_postgres(&app, &tenant).await, 9, "a refused request consumes nothing");
    assert_eq!(usage_published(&app, &tenant).await, (2, 9), "nor is it metered");
    app.cleanup().await;
}

#[tokio::test]
async fn postgresql_enforces_its_own_stored_limit_whatever_a_cache_says() {
    let app = spawn_app().await;
    let tenant = format!("l-{}", app.id);
    app.published_edition("pro", 5).await;
    app.active_tenant(&tenant, "pro").await;
    let token = app.member_token(&tenant);
    // A cached definition claiming a far higher limit (stale, or written by someone with Redis access).
    let t = kernel::TenantId::parse(&tenant).unwrap();
    let cache = &app.state.kernel.cache;
    let key = cache.key(&t, kernel::cache::kind::QUOTA_DEFINITION, "api-calls");
    let forged = json!({ "key": "api-calls", "limit": 1000, "period": "Month" });
    let _: () = cache.connection().set_ex(&key, forged.to_string(), 300).await.unwrap();
    let v = app.gql(&token, CONSUME, json!({ "n": 6 })).await;
    assert_eq!(code(&v), "QUOTA_EXCEEDED", "{v}");
    for _ in 0..5 {
        app.ok(&token, CONSUME, json!({ "n": 1 })).await;
    }
    let v = app.gql(&token, CONSUME, json!({ "n": 1 })).await;
    assert_eq!(code(&v), "QUOTA_EXCEEDED", "{v}");
    assert_eq!(used_in_postgres(&app, &tenant).await, 5);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_quota_requests_get_coded_errors() {
    let app = spawn_app().await;
    let tenant = format!("b-{}", app.id);
    app.published_edition("pro", 10).await;
    app.active_tenant(&tenant, "pro").await;
    let token = app.member_token(&tenant);
    let v = app.gql(&token, "mutation { consumeQuota(key: \"nope\") { used } }", json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND");
    let v = app.gql(&token, CONSUME, json!({ "n": 0 })).await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let v = app.gql(&token, CONSUME, json!({ "n": 11 })).await;
    assert_eq!(code(&v), "QUOTA_EXCEEDED");
    let read_only = app.tenant_token(&tenant, &["tenancy:read"]);
    let v = app.gql(&read_only, CONSUME, json!({ "n": 1 })).await;
    assert_eq!(code(&v), "FORBIDDEN");
    let op = app.operator_token();
    let v = app
        .gql(&op, "mutation($t: ID!) { setQuota(tenantId: $t, quota: { key: \"api-calls\", limit: -1, period: DAY }) { limit } }", json!({ "t": tenant }))
        .await;
    assert_eq!(code(&v), "BAD_USER_INPUT");
    let v = app
        .gql(&op, "mutation { setQuota(tenantId: \"ghost\", quota: { key: \"api-calls\", limit: 1, period: DAY }) { limit } }", json!({}))
        .await;
    assert_eq!(code(&v), "NOT_FOUND");
    // A suspended tenant consumes nothing.
    app.ok(&op, "mutation($t: ID!) { suspendTenant(id: $t, reason: \"unpaid\") { status } }", json!({ "t": tenant }))
        .await;
    let v = app.gql(&token, CONSUME, json!({ "n": 1 })).await;
    assert_eq!(code(&v), "CONFLICT");
    assert_eq!(used_in_postgres(&app, &tenant).await, 0);
    app.cleanup().await;
}
