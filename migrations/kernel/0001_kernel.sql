-- Kernel tables every subgraph database has: the transactional outbox and the consumer inbox.
-- Kernel migrations use versions below 1000; each domain's start at 1000.

-- Grants `privileges` on `tbl` to this database's app role, named by the `cp.app_role` database setting that
-- provisioning writes, so no migration hard-codes a role name.
CREATE FUNCTION cp_grant_app(privileges text, tbl text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    app_role text := current_setting('cp.app_role', true);
BEGIN
    IF app_role IS NULL OR app_role = '' THEN
        RAISE EXCEPTION 'database setting cp.app_role is missing: provision the database first';
    END IF;
    EXECUTE format('GRANT %s ON %I TO %I', privileges, tbl, app_role);
END
$$;

-- Enables and forces row-level security on a tenant-scoped table with the standard tenant policy.
CREATE FUNCTION cp_tenant_rls(tbl text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting(''app.tenant_id'', true)) '
        'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', tbl);
END
$$;

-- Events waiting to be published. A state change and its outbox row commit in one transaction; the relay
-- claims pending rows with FOR UPDATE SKIP LOCKED, publishes them with confirms and marks them published.
CREATE TABLE outbox (
    tenant_id      text        NOT NULL,
    event_id       text        NOT NULL,
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    event_type     text        NOT NULL,
    routing_key    text        NOT NULL,
    schema_version integer     NOT NULL,
    envelope       jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (tenant_id, event_id)
);
-- The relay's queue order. The one key not led by tenant_id: it serves the relay, which reads every tenant.
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
SELECT cp_tenant_rls('outbox');
CREATE POLICY platform_operator ON outbox USING (current_setting('app.platform', true) = 'on');
CREATE POLICY relay ON outbox USING (current_setting('app.system', true) = 'relay');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'outbox');

-- Messages a consumer has applied, keyed sha256(eventId:handler:aggregateId), written in the handler's own
-- transaction so a redelivered message is applied once.
CREATE TABLE inbox (
    tenant_id    text        NOT NULL,
    message_key  text        NOT NULL,
    handler      text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_pkey PRIMARY KEY (tenant_id, message_key)
);
SELECT cp_tenant_rls('inbox');
SELECT cp_grant_app('SELECT, INSERT', 'inbox');
