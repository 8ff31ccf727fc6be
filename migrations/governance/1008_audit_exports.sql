-- Exports of each tenant's audit log to blob storage (audit/export.rs): a cursor per tenant naming the last
-- exported sequence (locked by the exporter, moved in the transaction that records the export), and the
-- record of every object written. Ranges are contiguous: each starts right after the cursor.

CREATE TABLE audit_export_cursors (
    tenant_id   text   NOT NULL,
    exported_to bigint NOT NULL DEFAULT 0 CHECK (exported_to >= 0),
    CONSTRAINT audit_export_cursors_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('audit_export_cursors');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'audit_export_cursors');

CREATE TABLE audit_exports (
    tenant_id     text        NOT NULL,
    from_seq      bigint      NOT NULL CHECK (from_seq >= 1),
    to_seq        bigint      NOT NULL,
    object_key    text        NOT NULL,
    location      text        NOT NULL,
    bytes         bigint      NOT NULL,
    sha256        text        NOT NULL,
    -- The signed checkpoint (of the tree of to_seq entries) the object carries.
    checkpoint    text        NOT NULL,
    exported_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_exports_pkey PRIMARY KEY (tenant_id, from_seq),
    CONSTRAINT audit_exports_range CHECK (to_seq >= from_seq)
);
SELECT cp_tenant_rls('audit_exports');
SELECT cp_grant_app('SELECT, INSERT', 'audit_exports');

-- Tenants with at least `min_new` entries not yet exported: the worker's listing across tenants, as the
-- approval expiry worker's (platform-operator reads of the heads and cursors, nothing else).
CREATE POLICY platform_operator_reads ON audit_heads FOR SELECT
    USING (current_setting('app.platform', true) = 'on');
CREATE POLICY platform_operator_reads ON audit_export_cursors FOR SELECT
    USING (current_setting('app.platform', true) = 'on');
CREATE FUNCTION governance_audit_exports_due(min_new bigint) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was_platform text := current_setting('app.platform', true);
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT h.tenant_id FROM audit_heads h
        LEFT JOIN audit_export_cursors c ON c.tenant_id = h.tenant_id
        WHERE h.tree_size - coalesce(c.exported_to, 0) >= min_new
        ORDER BY h.tenant_id;
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;
REVOKE ALL ON FUNCTION governance_audit_exports_due(bigint) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_audit_exports_due(bigint) TO %I',
                   current_setting('cp.app_role'));
END $$;
