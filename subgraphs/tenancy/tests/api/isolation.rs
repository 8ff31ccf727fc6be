//! No tenant can see or change another tenant's rows: through the API, and in SQL as the app role (RLS).

use serde_json::json;
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::helpers::{admin_url, code, spawn_app};

#[tokio::test]
async fn a_tenant_cannot_read_or_change_another_through_the_api() {
    let app = spawn_app().await;
    app.published_edition("pro", 100).await;
    app.active_tenant("alpha", "pro").await;
    app.active_tenant("bravo", "pro").await;
    let alpha = app.member_token("alpha");

    let v = app.gql(&alpha, "{ tenant(id: \"bravo\") { id displayName } }", json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    assert!(v["data"].is_null() || v["data"]["tenant"].is_null());

    // The federation entity path obeys the same rule.
    let v = app
        .gql(
            &alpha,
            "{ _entities(representations: [{ __typename: \"Tenant\", id: \"bravo\" }]) { ... on Tenant { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");

    // Writes go to the caller's own tenant, whatever it might try to name.
    app.ok(&alpha, "mutation { updateTenant(displayName: \"Alpha Inc\") { id } }", json!({})).await;
    let op = app.operator_token();
    let both = app.ok(&op, "{ tenants { nodes { id displayName } } }", json!({})).await;
    assert_eq!(
        both["tenants"]["nodes"],
        json!([{ "id": "alpha", "displayName": "Alpha Inc" }, { "id": "bravo", "displayName": "T" }])
    );

    // Quota consumption lands on the caller's tenant only.
    app.ok(&alpha, "mutation { consumeQuota(key: \"api-calls\", amount: 7) { used } }", json!({})).await;
    let bravo = app.member_token("bravo");
    let q = app.ok(&bravo, "{ currentTenant { quotas { key used } } }", json!({})).await;
    assert_eq!(q["currentTenant"]["quotas"], json!([{ "key": "api-calls", "used": 0 }]));

    // A tenant token cannot list tenants at all.
    let v = app.gql(&alpha, "{ tenants { nodes { id } } }", json!({})).await;
    assert_eq!(code(&v), "FORBIDDEN");
    app.cleanup().await;
}

#[tokio::test]
async fn row_level_security_confines_the_app_role_in_sql() {
    let app = spawn_app().await;
    app.published_edition("pro", 100).await;
    app.active_tenant("alpha", "pro").await;
    app.active_tenant("bravo", "pro").await;

    let mut conn = PgConnection::connect(&app.db.app_url).await.unwrap();
    // No tenant set: nothing is visible.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 0);

    let mut tx = conn.begin().await.unwrap();
    tx.execute("SELECT set_config('app.tenant_id', 'alpha', true)").await.unwrap();
    for table in ["tenants", "subscriptions", "quota_definitions", "outbox"] {
        let ids: Vec<String> =
            sqlx::query_scalar(&format!("SELECT DISTINCT tenant_id FROM {table}")).fetch_all(&mut *tx).await.unwrap();
        assert_eq!(ids, vec!["alpha".to_string()], "{table}");
    }
    // Updates of another tenant's rows touch nothing.
    let hit = sqlx::query("UPDATE tenants SET display_name = 'pwned' WHERE tenant_id = 'bravo'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(hit, 0);
    // Inserting a row for another tenant is refused outright.
    let err = sqlx::query(
        "INSERT INTO quota_definitions (tenant_id, quota_key, limit_value, period) VALUES ('bravo', 'x', 1, 'Day')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Nor may a tenant change what only the platform decides about it, even on its own rows.
    for (what, stmt) in [
        ("status", "UPDATE tenants SET status = 'Suspended' WHERE tenant_id = 'alpha'"),
        ("legal hold", "UPDATE tenants SET legal_hold = true WHERE tenant_id = 'alpha'"),
        ("edition", "UPDATE tenants SET edition_id = 'enterprise' WHERE tenant_id = 'alpha'"),
        ("isolation", "UPDATE tenants SET isolation_model = 'dedicated' WHERE tenant_id = 'alpha'"),
    ] {
        let mut tx = conn.begin().await.unwrap();
        tx.execute("SELECT set_config('app.tenant_id', 'alpha', true)").await.unwrap();
        let err = sqlx::query(stmt).execute(&mut *tx).await.unwrap_err();
        assert!(err.to_string().contains("only platform operators"), "{what}: {err}");
        tx.rollback().await.unwrap();
    }
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SELECT set_config('app.tenant_id', 'alpha', true)").await.unwrap();
    for stmt in [
        "UPDATE quota_definitions SET limit_value = 1000000 WHERE tenant_id = 'alpha'",
        "UPDATE subscriptions SET status = 'Ended' WHERE tenant_id = 'alpha'",
    ] {
        let hit = sqlx::query(stmt).execute(&mut *tx).await.unwrap().rows_affected();
        assert_eq!(hit, 0, "{stmt}");
    }
    // Consuming quota adds to a balance; nothing a tenant does may lower one.
    sqlx::query(
        "INSERT INTO quota_balances (tenant_id, quota_key, period_start, used) VALUES ('alpha', 'api-calls', now(), 5)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE quota_balances SET used = used + 1 WHERE tenant_id = 'alpha'").execute(&mut *tx).await.unwrap();
    sqlx::query("SAVEPOINT lower").execute(&mut *tx).await.unwrap();
    let err = sqlx::query("UPDATE quota_balances SET used = 0 WHERE tenant_id = 'alpha'")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only platform operators lower a quota balance"), "{err}");
    sqlx::query("ROLLBACK TO SAVEPOINT lower").execute(&mut *tx).await.unwrap();
    // Renaming itself is the tenant's own business.
    let hit = sqlx::query("UPDATE tenants SET display_name = 'Alpha Inc' WHERE tenant_id = 'alpha'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(hit, 1);
    let err = sqlx::query(
        "INSERT INTO quota_definitions (tenant_id, quota_key, limit_value, period) VALUES ('alpha', 'x', 1, 'Day')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // The role owns nothing and cannot bypass RLS.
    let row = sqlx::query(
        "SELECT rolbypassrls, rolsuper, (SELECT count(*) FROM pg_tables WHERE tableowner = current_user) AS owned \
         FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!row.get::<bool, _>("rolbypassrls"));
    assert!(!row.get::<bool, _>("rolsuper"));
    assert_eq!(row.get::<i64, _>("owned"), 0);
    let display: String = sqlx::query_scalar("SELECT display_name FROM tenants WHERE tenant_id = 'bravo'")
        .fetch_one(&app.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(display, "T");
    conn.close().await.unwrap();
    app.cleanup().await;
}

#[tokio::test]
async fn a_pooled_connection_never_carries_a_tenant_into_the_next_transaction() {
    let app = spawn_app().await;
    app.published_edition("pro", 100).await;
    app.active_tenant("alpha", "pro").await;
    app.active_tenant("bravo", "pro").await;
    // One connection, so every transaction below reuses it.
    let pool = kernel::db::connect(&app.db.app_url.clone().into(), 1).await.unwrap();
    for i in 0..20 {
        let tenant = if i % 2 == 0 { "alpha" } else { "bravo" };
        let mut tx = kernel::db::tenant_tx(&pool, &kernel::TenantId::parse(tenant).unwrap()).await.unwrap();
        let seen: Vec<String> = sqlx::query_scalar("SELECT tenant_id FROM tenants").fetch_all(&mut *tx).await.unwrap();
        assert_eq!(seen, vec![tenant.to_string()], "round {i}");
        tx.commit().await.unwrap();
        let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&pool).await.unwrap();
        assert_eq!(leaked, 0, "tenant setting leaked out of the transaction in round {i}");
    }
    pool.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_tenancy_role_cannot_connect_to_another_subgraphs_database() {
    let app = spawn_app().await;
    let other = format!("cp_t_identity_{}", app.id);
    kernel::db::provision(&admin_url(), "identity", &other).await.unwrap();

    let as_tenancy = kernel::db::url_for(&admin_url(), "cp_tenancy_app", &other).unwrap();
    let err = PgConnection::connect(&as_tenancy).await.unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let as_tenancy_owner = kernel::db::url_for(&admin_url(), "cp_tenancy_owner", &other).unwrap();
    assert!(PgConnection::connect(&as_tenancy_owner).await.is_err());
    // Its own role can, so the refusal above is about the role, not the database.
    let as_identity = kernel::db::url_for(&admin_url(), "cp_identity_app", &other).unwrap();
    PgConnection::connect(&as_identity).await.unwrap().close().await.unwrap();

    kernel::db::drop_database(&admin_url(), &other).await.unwrap();
    app.cleanup().await;
}
