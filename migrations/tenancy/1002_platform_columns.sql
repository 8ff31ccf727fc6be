-- Row-level security limits *what* a tenant may write, not only whose rows: a tenant's own transaction may
-- read its tenant, subscription and quota limits and rename itself, but its status, legal hold, edition,
-- isolation model and region, its subscriptions and its quota limits are the platform's to change (an
-- operator's transaction, `app.platform = on`). Quota balances stay writable: consuming quota is the tenant's.

DROP POLICY tenant_isolation ON tenants;
CREATE POLICY tenant_read ON tenants FOR SELECT
    USING (tenant_id = current_setting('app.tenant_id', true));
CREATE POLICY tenant_rename ON tenants FOR UPDATE
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));

-- Which columns a tenant's own update may change: the display name (and the timestamp that follows it).
CREATE FUNCTION tenants_platform_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('app.platform', true) IS DISTINCT FROM 'on'
       AND (NEW.tenant_id, NEW.status, NEW.status_reason, NEW.legal_hold, NEW.edition_id, NEW.isolation_model,
            NEW.region, NEW.provisioned_at, NEW.created_at)
           IS DISTINCT FROM
           (OLD.tenant_id, OLD.status, OLD.status_reason, OLD.legal_hold, OLD.edition_id, OLD.isolation_model,
            OLD.region, OLD.provisioned_at, OLD.created_at) THEN
        RAISE EXCEPTION 'only platform operators change tenant %''s status, legal hold, edition, isolation or region',
            OLD.tenant_id
            USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'tenants_platform_columns';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tenants_platform_columns BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_platform_columns();

DROP POLICY tenant_isolation ON subscriptions;
CREATE POLICY tenant_read ON subscriptions FOR SELECT
    USING (tenant_id = current_setting('app.tenant_id', true));

DROP POLICY tenant_isolation ON quota_definitions;
CREATE POLICY tenant_read ON quota_definitions FOR SELECT
    USING (tenant_id = current_setting('app.tenant_id', true));
