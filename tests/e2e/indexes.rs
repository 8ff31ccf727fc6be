//! `tenant_id` leads every index of every tenant-scoped table, in every subgraph's database (DESIGN,
//! "Tenant isolation"; Citus distributes each table by it). A handful of indexes serve work that is across
//! tenants by nature; each is listed here with its reason, and any other index that does not start with
//! `tenant_id` fails this test.

use kernel::service::Subgraph;

/// (index, why it does not start with `tenant_id`).
const EXCEPTIONS: &[(&str, &str)] = &[
    ("api_tokens_hash", "authentication finds a token by its hash before it knows the tenant"),
    ("subscriptions_by_edition", "an edition is platform-wide: which tenants use it, before it may be retired"),
    ("approvals_expiring", "the expiry worker finds every tenant's overdue requests by time"),
    ("usage_records_occurred_brin", "the rollup reads each closed hour's records of all tenants at once, by time"),
    ("usage_rollups_bucket", "retention deletes every tenant's rollups past seven years, by time"),
    ("outbox_pending", "the relay claims every tenant's pending events in order"),
    ("outbox_published", "the outbox sweep deletes every tenant's published events by age"),
    ("timers_due", "the timer firer claims every tenant's due timers by deadline"),
    ("workflow_events_global", "the projector, replay and live views follow every stream in the global order"),
];

async fn offenders<S: Subgraph>() -> Vec<(String, String, String)> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let db = test_support::TestDb::create(S::NAME, &id, S::migrations()).await;
    let admin = db.admin_pool().await;
    // Every index (partitions' own included) on a table with a tenant_id column, whose first key column
    // is something else (or an expression).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, pg_get_indexdef(x.indexrelid)
         FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
         WHERE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
           AND (x.indkey[0] = 0 OR (SELECT attname FROM pg_attribute WHERE attrelid = t.oid AND attnum = x.indkey[0]) <> 'tenant_id')
         ORDER BY 1",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    rows
}

/// A partition's index is named after its parent's (`usage_records_20261206_occurred_at_idx`): it is the
/// parent's exception when the parent index is one.
fn excepted(index: &str, definition: &str) -> bool {
    EXCEPTIONS.iter().any(|(name, _)| index == *name)
        || (definition.contains("USING brin (occurred_at)") && index.starts_with("usage_records_"))
}

#[tokio::test]
async fn tenant_id_leads_every_index_but_the_listed_exceptions() {
    let mut unlisted = Vec::new();
    let found = [
        ("identity", offenders::<identity::State>().await),
        ("tenancy", offenders::<tenancy::State>().await),
        ("catalogue", offenders::<catalogue::State>().await),
        ("workflow", offenders::<workflow::State>().await),
        ("governance", offenders::<governance::State>().await),
    ];
    let mut seen = Vec::new();
    for (domain, rows) in &found {
        for (index, table, definition) in rows {
            seen.push(index.clone());
            if !excepted(index, definition) {
                unlisted.push(format!("{domain}: {index} on {table}: {definition}"));
            }
        }
    }
    assert!(unlisted.is_empty(), "indexes that do not start with tenant_id, not listed:\n{}", unlisted.join("\n"));
    // An exception that no longer exists is taken off the list.
    for (name, _) in EXCEPTIONS {
        assert!(seen.iter().any(|s| s == name), "{name} is listed but no longer exists: remove it from EXCEPTIONS");
    }
}
