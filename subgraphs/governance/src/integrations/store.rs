//! Integration connections' SQL.

use kernel::db::Tx;
use kernel::error::OnConstraint;
use kernel::{Error, Result, TenantId};
use serde_json::Value;

use super::{IntegrationConnection, IntegrationKind, IntegrationStatus};
use crate::ids::ConnectionId;

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ConnectionId,
    name: &str,
    kind: IntegrationKind,
    provider: &str,
    settings: &Value,
    secret_refs: &Value,
    by: &str,
) -> Result<IntegrationConnection> {
    sqlx::query_as!(
        IntegrationConnection,
        r#"INSERT INTO integration_connections (tenant_id, connection_id, name, kind, provider, settings, secret_refs, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING tenant_id AS "tenant_id: TenantId", connection_id, name, kind AS "kind: IntegrationKind", provider,
                     settings, secret_refs, status AS "status: IntegrationStatus", created_by, created_at, updated_at,
                     last_tested_at, last_test_ok"#,
        tenant.as_str(),
        id as ConnectionId,
        name,
        kind.as_str(),
        provider,
        settings,
        secret_refs,
        by,
    )
    .fetch_one(&mut **tx)
    .await
    .on_constraint("integration_connections_name_key", || Error::conflict(format!("connection name `{name}` is taken")))
}

pub async fn by_id(
    tx: &mut Tx,
    tenant: &TenantId,
    id: ConnectionId,
    lock: bool,
) -> Result<Option<IntegrationConnection>> {
    let row = if lock {
        sqlx::query_as!(
            IntegrationConnection,
            r#"SELECT tenant_id AS "tenant_id: TenantId", connection_id, name, kind AS "kind: IntegrationKind", provider,
                      settings, secret_refs, status AS "status: IntegrationStatus", created_by, created_at, updated_at,
                      last_tested_at, last_test_ok
               FROM integration_connections WHERE tenant_id = $1 AND connection_id = $2 FOR UPDATE"#,
            tenant.as_str(),
            id as ConnectionId,
        )
        .fetch_optional(&mut **tx)
        .await?
    } else {
        sqlx::query_as!(
            IntegrationConnection,
            r#"SELECT tenant_id AS "tenant_id: TenantId", connection_id, name, kind AS "kind: IntegrationKind", provider,
                      settings, secret_refs, status AS "status: IntegrationStatus", created_by, created_at, updated_at,
                      last_tested_at, last_test_ok
               FROM integration_connections WHERE tenant_id = $1 AND connection_id = $2"#,
            tenant.as_str(),
            id as ConnectionId,
        )
        .fetch_optional(&mut **tx)
        .await?
    };
    Ok(row)
}

/// Connections in name order after `after`.
pub async fn page(
    tx: &mut Tx,
    tenant: &TenantId,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<IntegrationConnection>> {
    Ok(sqlx::query_as!(
        IntegrationConnection,
        r#"SELECT tenant_id AS "tenant_id: TenantId", connection_id, name, kind AS "kind: IntegrationKind", provider,
                  settings, secret_refs, status AS "status: IntegrationStatus", created_by, created_at, updated_at,
                  last_tested_at, last_test_ok
           FROM integration_connections WHERE tenant_id = $1 AND ($2::text IS NULL OR name > $2)
           ORDER BY name LIMIT $3"#,
        tenant.as_str(),
        after,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?)
}

pub async fn update(tx: &mut Tx, c: &IntegrationConnection) -> Result<IntegrationConnection> {
    Ok(sqlx::query_as!(
        IntegrationConnection,
        r#"UPDATE integration_connections
           SET settings = $3, secret_refs = $4, status = $5, last_tested_at = $6, last_test_ok = $7, updated_at = now()
           WHERE tenant_id = $1 AND connection_id = $2
           RETURNING tenant_id AS "tenant_id: TenantId", connection_id, name, kind AS "kind: IntegrationKind", provider,
                     settings, secret_refs, status AS "status: IntegrationStatus", created_by, created_at, updated_at,
                     last_tested_at, last_test_ok"#,
        c.tenant_id.as_str(),
        c.connection_id as ConnectionId,
        c.settings,
        c.secret_refs,
        c.status.as_str(),
        c.last_tested_at,
        c.last_test_ok,
    )
    .fetch_one(&mut **tx)
    .await?)
}
