//! Integration connections' share of the query and mutation roots.

use crate::state;
use async_graphql::connection::Connection as Page_;
use async_graphql::{Context, InputObject, Json, Object, SimpleObject, ID};
use kernel::pagination::Page;
use kernel::permissions::governance::{READ, WRITE};
use kernel::Authorize;
use kernel::{Error, Result, TenantId, Work};
use serde_json::Value;

use super::{store, IntegrationConnection, IntegrationKind, IntegrationStatus, SecretCheck};
use crate::events;
use crate::ids::ConnectionId;

#[derive(InputObject)]
pub struct SecretRefInput {
    /// The secret's name within the connection (`token`, `clientSecret`, …).
    pub name: String,
    /// Where the value lives: `env:NAME`, `file:/path`, `@Microsoft.KeyVault(…)`, `keyvault:<vault>/<name>`,
    /// `vault:<mount>/<path>#<key>`. Never the value.
    pub config_ref: String,
}

#[derive(InputObject)]
pub struct CreateIntegrationConnectionInput {
    pub name: String,
    pub kind: IntegrationKind,
    pub provider: String,
    /// Non-secret settings (a JSON object); a key naming a secret must hold a configRef.
    pub settings: Option<Json<Value>>,
    #[graphql(default)]
    pub secrets: Vec<SecretRefInput>,
}

#[derive(InputObject)]
pub struct UpdateIntegrationConnectionInput {
    pub settings: Option<Json<Value>>,
    pub status: Option<IntegrationStatus>,
}

/// What `testIntegrationConnection` found: whether every secret resolved (values are never returned).
#[derive(SimpleObject)]
pub struct IntegrationConnectionTest {
    pub ok: bool,
    pub secrets: Vec<SecretCheck>,
    pub connection: IntegrationConnection,
}

/// The connection, locked for a change: `NOT_FOUND` also for another tenant's.
async fn load(work: &mut Work, tenant: &TenantId, id: ConnectionId) -> Result<IntegrationConnection> {
    store::by_id(work, tenant, id, true).await?.ok_or_else(|| Error::not_found(format!("no connection `{id}`")))
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    async fn integration_connection(&self, ctx: &Context<'_>, id: ID) -> Result<IntegrationConnection> {
        let tenant = ctx.authorize(READ)?;
        let id = ConnectionId::parse("id", &id)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let c = store::by_id(&mut tx, &tenant, id, false).await?;
        tx.commit().await?;
        c.ok_or_else(|| Error::not_found(format!("no connection `{id}`")))
    }

    /// The tenant's integration connections in name order.
    #[graphql(complexity = "kernel::pagination::page_complexity(first, child_complexity)")]
    async fn integration_connections(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page_<String, IntegrationConnection>> {
        let tenant = ctx.authorize(READ)?;
        let page = Page::forward(after, first, 20)?;
        let mut tx = state(ctx).kernel.db.tenant_tx(&tenant).await?;
        let rows = store::page(&mut tx, &tenant, page.after.as_deref(), page.fetch_limit()).await?;
        tx.commit().await?;
        Ok(page.connection(rows, |c| c.name.clone()))
    }
}

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Creates a connection. Emits `IntegrationConnectionCreated` (references only).
    async fn create_integration_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateIntegrationConnectionInput,
    ) -> Result<IntegrationConnection> {
        let tenant = ctx.authorize(WRITE)?;
        let name = super::name(&input.name)?;
        let provider = super::provider(&input.provider)?;
        let settings = super::settings(input.settings.map_or(Value::Object(Default::default()), |j| j.0))?;
        let scope = &state(ctx).config.secret_scope();
        let refs = super::secret_refs(scope, &tenant, input.secrets.into_iter().map(|s| (s.name, s.config_ref)))?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let c = store::insert(
            &mut work,
            &tenant,
            ConnectionId::new_v7(),
            &name,
            input.kind,
            &provider,
            &settings,
            &refs,
            ctx.principal(),
        )
        .await?;
        let event = events::IntegrationConnectionCreated {
            connection_id: c.connection_id,
            name: c.name.clone(),
            kind: c.kind,
            provider: c.provider.clone(),
            settings: c.settings.clone(),
            secret_refs: c.secret_refs.clone(),
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(c)
    }

    /// Changes a connection's settings or status. Emits `IntegrationConnectionUpdated`.
    async fn update_integration_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateIntegrationConnectionInput,
    ) -> Result<IntegrationConnection> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ConnectionId::parse("id", &id)?;
        let settings = input.settings.map(|j| super::settings(j.0)).transpose()?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let mut c = load(&mut work, &tenant, id).await?;
        if let Some(s) = settings {
            c.settings = s;
        }
        if let Some(s) = input.status {
            c.status = s;
        }
        let c = store::update(&mut work, &c).await?;
        let event = events::IntegrationConnectionUpdated {
            connection_id: id,
            name: c.name.clone(),
            settings: c.settings.clone(),
            status: c.status,
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(c)
    }

    /// Points a secret (new or existing) at another reference: a rotation. Emits `IntegrationSecretRotated`.
    async fn rotate_integration_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        secret: SecretRefInput,
    ) -> Result<IntegrationConnection> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ConnectionId::parse("id", &id)?;
        let name = super::secret_name(&secret.name)?;
        let r = super::config_ref(&state(ctx).config.secret_scope(), &tenant, &name, &secret.config_ref)?;
        let mut work = Work::tenant(&state(ctx).kernel.db, &tenant, ctx.event_meta()).await?;
        let mut c = load(&mut work, &tenant, id).await?;
        let refs = c
            .secret_refs
            .as_object_mut()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("secret_refs is not an object")))?;
        let previous = refs.insert(name.clone(), Value::String(r.clone())).and_then(|v| v.as_str().map(str::to_owned));
        if refs.len() > 20 {
            return Err(Error::bad_input("secret", "a connection has at most 20 secrets"));
        }
        let c = store::update(&mut work, &c).await?;
        let event = events::IntegrationSecretRotated {
            connection_id: id,
            name: c.name.clone(),
            secret: name,
            config_ref: r,
            previous_ref: previous,
        };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(c)
    }

    /// Resolves each of the connection's secrets through the secret store and reports whether each
    /// resolved (a code and message naming the reference when not) — never a value. Records the outcome;
    /// emits `IntegrationConnectionTested`.
    async fn test_integration_connection(&self, ctx: &Context<'_>, id: ID) -> Result<IntegrationConnectionTest> {
        let tenant = ctx.authorize(WRITE)?;
        let id = ConnectionId::parse("id", &id)?;
        let s = state(ctx);
        let mut work = Work::tenant(&s.kernel.db, &tenant, ctx.event_meta()).await?;
        let mut c = load(&mut work, &tenant, id).await?;
        let checks = super::check_secrets(&s.secrets, &s.config.secret_scope(), &tenant, &c).await;
        let ok = c.status == IntegrationStatus::Active && checks.iter().all(|x| x.ok);
        let failures: Vec<String> = checks
            .iter()
            .filter(|x| !x.ok)
            .map(|x| format!("{}: {}", x.name, x.code.as_deref().unwrap_or("")))
            .collect();
        tracing::info!(%tenant, connection = %c.name, ok, failures = ?failures, refs = ?checks.iter().map(|x| &x.config_ref).collect::<Vec<_>>(), "connection tested");
        c.last_tested_at = Some(chrono::Utc::now());
        c.last_test_ok = Some(ok);
        let c = store::update(&mut work, &c).await?;
        let event = events::IntegrationConnectionTested { connection_id: id, name: c.name.clone(), ok, failures };
        work.emit(&tenant, &event).await?;
        work.commit().await?;
        Ok(IntegrationConnectionTest { ok, secrets: checks, connection: c })
    }
}
