-- Governance: Cedar policy definitions and the decisions evaluated over them.
-- Every table leads its keys with tenant_id and forces row-level security (cp_tenant_rls). Platform
-- policies are filed under the reserved tenant `platform`: operators write them through a transaction for
-- that tenant, and every tenant reads their published and deprecated versions (never their drafts).

-- A global sequence stamps every publication and deprecation, so a tenant's policy set version (the highest
-- stamp among its own and the platform's non-draft policies) grows whenever its set changes.
CREATE SEQUENCE policy_set_changes;
DO $$ BEGIN
    EXECUTE format('GRANT USAGE ON SEQUENCE policy_set_changes TO %I', current_setting('cp.app_role'));
END $$;

CREATE TABLE policies (
    tenant_id     text        NOT NULL,
    policy_id     uuid        NOT NULL,
    name          text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    effect        text        NOT NULL CHECK (effect IN ('Allow', 'Deny', 'RequiresApproval')),
    description   text        NOT NULL DEFAULT '',
    -- One Cedar policy statement; validated against the control plane's Cedar schema when published.
    cedar         text        NOT NULL CHECK (octet_length(cedar) <= 65536),
    status        text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Published', 'Deprecated')),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    deprecated_at timestamptz,
    -- policy_set_changes value of its publication, then of its deprecation.
    set_change    bigint,
    CONSTRAINT policies_pkey PRIMARY KEY (tenant_id, policy_id),
    CONSTRAINT policies_name_version_key UNIQUE (tenant_id, name, version),
    CONSTRAINT policies_name CHECK (name ~ '^[a-z][a-z0-9._-]{0,99}$'),
    CONSTRAINT policies_published CHECK ((status = 'Draft') = (published_at IS NULL)),
    CONSTRAINT policies_deprecated CHECK ((status = 'Deprecated') = (deprecated_at IS NOT NULL)),
    CONSTRAINT policies_stamped CHECK ((status = 'Draft') = (set_change IS NULL))
);
-- The set a tenant evaluates: its own and the platform's published policies.
CREATE INDEX policies_published ON policies (tenant_id, name, version) WHERE status = 'Published';
SELECT cp_tenant_rls('policies');
CREATE POLICY platform_policies ON policies FOR SELECT USING (tenant_id = 'platform' AND status <> 'Draft');
CREATE POLICY platform_read ON policies FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'policies');

-- Versioned definitions (policies here, model policies in 1004): drafts change freely and may be deleted; a
-- published version changes only by its deprecation, and a deprecated one is final. A change to a published
-- version is a new version. TG_ARGV[0] names the id column, TG_ARGV[1] the constraint reported, and the
-- rest the columns a publication or deprecation may set.
CREATE FUNCTION governance_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := TG_ARGV[2:];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'Draft' THEN
            RAISE EXCEPTION '% %@% is % and cannot be deleted', TG_TABLE_NAME, OLD.name, OLD.version, OLD.status
                USING ERRCODE = 'check_violation', CONSTRAINT = TG_ARGV[1];
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'Deprecated'
       OR (OLD.status = 'Published' AND (NEW.status <> 'Deprecated'
           OR (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable)))
       OR (OLD.status = 'Draft' AND NEW.status = 'Deprecated')
       OR (NEW.tenant_id, to_jsonb(NEW) ->> TG_ARGV[0], NEW.name, NEW.version)
          IS DISTINCT FROM (OLD.tenant_id, to_jsonb(OLD) ->> TG_ARGV[0], OLD.name, OLD.version) THEN
        RAISE EXCEPTION '% %@% is % and immutable', TG_TABLE_NAME, OLD.name, OLD.version, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = TG_ARGV[1];
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER policies_immutable BEFORE UPDATE OR DELETE ON policies FOR EACH ROW
    EXECUTE FUNCTION governance_versions_guard('policy_id', 'policies_immutable', 'status', 'updated_at',
                                              'deprecated_at', 'set_change');

-- Tenants under legal hold, as tenancy announces (TenantLegalHoldChanged): retention never deletes their rows.
CREATE TABLE legal_holds (
    tenant_id  text        NOT NULL,
    on_hold    boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT legal_holds_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('legal_holds');
CREATE POLICY platform_read ON legal_holds FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'legal_holds');

-- Every evaluation's decision. Append-only: the app role may only insert and read, and a trigger refuses
-- UPDATE and DELETE for everyone but the retention function below. Kept seven years.
CREATE TABLE decisions (
    tenant_id            text        NOT NULL,
    decision_id          uuid        NOT NULL,
    decided_at           timestamptz NOT NULL DEFAULT now(),
    principal            text        NOT NULL,
    action               text        NOT NULL,
    resource             text        NOT NULL,
    context              jsonb       NOT NULL DEFAULT '{}',
    policy_set_version   bigint      NOT NULL,
    policy_set_hash      text        NOT NULL,
    -- Ids of the policies that decided (Cedar's reasons), and any evaluation errors.
    determining_policies uuid[]      NOT NULL,
    errors               text[]      NOT NULL DEFAULT '{}',
    effect               text        NOT NULL CHECK (effect IN ('Allow', 'Deny', 'RequiresApproval')),
    trace_id             text        NOT NULL,
    correlation_id       text        NOT NULL,
    CONSTRAINT decisions_pkey PRIMARY KEY (tenant_id, decision_id)
);
CREATE INDEX decisions_by_time ON decisions (tenant_id, decided_at DESC, decision_id DESC);
SELECT cp_tenant_rls('decisions');
CREATE POLICY platform_read ON decisions FOR SELECT USING (current_setting('app.platform', true) = 'on');
-- Only the retention function deletes (the app role has no DELETE grant at all).
CREATE POLICY retention ON decisions FOR DELETE USING (current_setting('governance.retention', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT', 'decisions');

CREATE FUNCTION decisions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('governance.retention', true) = 'on'
       AND current_user <> session_user THEN
        -- Only governance_decisions_expire (SECURITY DEFINER: current_user is its owner) gets here.
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'decisions are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'decisions_append_only';
END
$$;
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_append_only();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION decisions_append_only();

-- Retention: deletes up to `batch` decisions older than `keep`, never a tenant's under legal hold. Runs with
-- the owner's rights (the app role has no DELETE grant); returns how many it deleted.
CREATE FUNCTION governance_decisions_expire(keep interval, batch integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
    was_platform text := current_setting('app.platform', true);
BEGIN
    IF keep < interval '7 years' THEN
        RAISE EXCEPTION 'decisions are kept at least 7 years';
    END IF;
    PERFORM set_config('governance.retention', 'on', true);
    PERFORM set_config('app.platform', 'on', true);
    WITH doomed AS (
        SELECT d.tenant_id, d.decision_id FROM decisions d
        WHERE d.decided_at < now() - keep
          AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.tenant_id = d.tenant_id AND h.on_hold)
        LIMIT batch)
    DELETE FROM decisions d USING doomed
    WHERE d.tenant_id = doomed.tenant_id AND d.decision_id = doomed.decision_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- The settings end with the function (an error aborts the transaction anyway).
    PERFORM set_config('governance.retention', 'off', true);
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION governance_decisions_expire(interval, integer) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_decisions_expire(interval, integer) TO %I',
                   current_setting('cp.app_role'));
END $$;
