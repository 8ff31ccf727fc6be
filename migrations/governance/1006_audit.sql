-- Audit: one entry per event of every domain (governance's own included), hash-chained per tenant:
-- hash = sha256(prev_hash || entry), where `entry` is the entry's canonical JSON (RFC 8785; audit/mod.rs
-- documents its fields) and the first entry's prev_hash is 32 zero bytes. audit_heads holds each tenant's
-- chain head; an append locks it (FOR UPDATE), so one tenant's appends are serialized — no forks — while
-- different tenants append in parallel.

CREATE TABLE audit_heads (
    tenant_id  text        NOT NULL,
    -- Entries so far: the next entry's sequence is size + 1.
    size       bigint      NOT NULL CHECK (size >= 0),
    -- The last entry's hash (32 zero bytes before the first).
    head       bytea       NOT NULL CHECK (octet_length(head) = 32),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_heads_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('audit_heads');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'audit_heads');

-- Time-partitioned by when the entry was recorded (monthly partitions, created ahead by
-- governance_audit_partitions); tenant_id leads the key. Append-only: the app role may only insert and
-- read, and a trigger refuses UPDATE, DELETE and TRUNCATE to everyone.
CREATE TABLE audit_entries (
    tenant_id      text        NOT NULL,
    seq            bigint      NOT NULL CHECK (seq >= 1),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    event_id       text        NOT NULL,
    event_type     text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor          text,
    trace_id       text        NOT NULL,
    correlation_id text        NOT NULL,
    causation_id   text,
    project_id     text,
    module_id      text,
    -- The canonical entry bytes the hash covers.
    entry          bytea       NOT NULL,
    hash           bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT audit_entries_pkey PRIMARY KEY (tenant_id, seq, recorded_at)
) PARTITION BY RANGE (recorded_at);
SELECT cp_tenant_rls('audit_entries');
SELECT cp_grant_app('SELECT, INSERT', 'audit_entries');

CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'audit_entries_append_only';
END
$$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();

-- Creates the monthly partitions (UTC months) from the current month to `months_ahead` months later that do
-- not exist yet; returns how many it created. Runs with the owner's rights (the app role cannot create
-- tables); concurrent callers wait for each other.
CREATE FUNCTION governance_audit_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    lo timestamptz;
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead is 0 to 24';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('governance_audit_partitions'));
    FOR i IN 0..months_ahead LOOP
        lo := (month + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (month + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'audit_entries_' || to_char(month + make_interval(months => i), 'YYYYMM');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_entries FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION governance_audit_partitions(integer) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_audit_partitions(integer) TO %I',
                   current_setting('cp.app_role'));
END $$;
SELECT governance_audit_partitions(3);
