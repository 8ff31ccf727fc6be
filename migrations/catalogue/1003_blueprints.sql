-- Catalogue: blueprints, their versions (Draft -> Validated -> Superseded), validation runs and results (kept
-- one year in monthly partitions), and the context maps and domain models projected from validated versions.

CREATE TABLE blueprints (
    tenant_id    text        NOT NULL,
    blueprint_id uuid        NOT NULL,
    project_id   uuid        NOT NULL,
    name         text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT blueprints_pkey PRIMARY KEY (tenant_id, blueprint_id),
    CONSTRAINT blueprints_name_key UNIQUE (tenant_id, project_id, name),
    CONSTRAINT blueprints_project_fkey FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, project_id)
);
SELECT cp_tenant_rls('blueprints');
CREATE POLICY platform_read ON blueprints FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'blueprints');
CREATE TRIGGER blueprints_in_writable_project BEFORE INSERT OR UPDATE ON blueprints
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project();

-- Versions 1, 2, … of a blueprint. At most one Draft (whose definition may be replaced) and one Validated
-- at a time; a Validated version is immutable and becomes Superseded when a later one is validated.
CREATE TABLE blueprint_versions (
    tenant_id        text        NOT NULL,
    blueprint_id     uuid        NOT NULL,
    version          integer     NOT NULL CHECK (version >= 1),
    project_id       uuid        NOT NULL,
    status           text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Validated', 'Superseded')),
    -- The definition (see the blueprints module): a JSON object of at most 256 KiB as text.
    definition       jsonb       NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    validated_at     timestamptz,
    validated_run_id uuid,
    superseded_at    timestamptz,
    CONSTRAINT blueprint_versions_pkey PRIMARY KEY (tenant_id, blueprint_id, version),
    -- Twice the API's 256 KiB of compact JSON: jsonb's text form spaces every `,` and `:`.
    CONSTRAINT blueprint_versions_size CHECK (octet_length(definition::text) <= 524288),
    CONSTRAINT blueprint_versions_validated CHECK ((status = 'Draft') = (validated_at IS NULL)),
    CONSTRAINT blueprint_versions_blueprint_fkey FOREIGN KEY (tenant_id, blueprint_id)
        REFERENCES blueprints (tenant_id, blueprint_id)
);
CREATE UNIQUE INDEX blueprint_versions_one_draft ON blueprint_versions (tenant_id, blueprint_id) WHERE status = 'Draft';
CREATE UNIQUE INDEX blueprint_versions_one_validated ON blueprint_versions (tenant_id, blueprint_id)
    WHERE status = 'Validated';
SELECT cp_tenant_rls('blueprint_versions');
CREATE POLICY platform_read ON blueprint_versions FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'blueprint_versions');
CREATE TRIGGER blueprint_versions_in_writable_project BEFORE INSERT OR UPDATE ON blueprint_versions
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project();

-- A validated version is immutable for any writer: its content never changes and it is never deleted; the
-- only change left is Validated -> Superseded.
CREATE FUNCTION blueprint_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'Draft' THEN
            RAISE EXCEPTION 'blueprint version % is % and immutable', OLD.version, OLD.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'blueprint_versions_immutable';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'Draft' THEN
        IF NEW.status = 'Superseded' THEN
            RAISE EXCEPTION 'a draft cannot be superseded'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'blueprint_versions_immutable';
        END IF;
        RETURN NEW;
    END IF;
    IF OLD.status = 'Validated' AND NEW.status = 'Superseded'
       AND (NEW.tenant_id, NEW.blueprint_id, NEW.version, NEW.project_id, NEW.definition, NEW.created_at,
            NEW.validated_at, NEW.validated_run_id)
           IS NOT DISTINCT FROM
           (OLD.tenant_id, OLD.blueprint_id, OLD.version, OLD.project_id, OLD.definition, OLD.created_at,
            OLD.validated_at, OLD.validated_run_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'blueprint version % is % and immutable', OLD.version, OLD.status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'blueprint_versions_immutable';
END
$$;
CREATE TRIGGER blueprint_versions_immutable BEFORE UPDATE OR DELETE ON blueprint_versions
    FOR EACH ROW EXECUTE FUNCTION blueprint_versions_guard();

-- Validation runs and their findings, time-partitioned by month on `recorded_at` (a run's results share its
-- timestamp, so they land in the same month) and kept `VALIDATION_RETENTION_MONTHS`: the retention worker
-- drops whole partitions. The app role reaches them through the parents only (RLS forced there) and
-- maintains partitions through the SECURITY DEFINER functions below.
CREATE TABLE blueprint_validation_runs (
    tenant_id    text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    run_id       uuid        NOT NULL,
    blueprint_id uuid        NOT NULL,
    project_id   uuid        NOT NULL,
    version      integer     NOT NULL,
    valid        boolean     NOT NULL,
    errors       integer     NOT NULL,
    warnings     integer     NOT NULL,
    infos        integer     NOT NULL,
    CONSTRAINT blueprint_validation_runs_pkey PRIMARY KEY (tenant_id, recorded_at, run_id)
) PARTITION BY RANGE (recorded_at);
CREATE INDEX blueprint_validation_runs_by_version
    ON blueprint_validation_runs (tenant_id, blueprint_id, version, recorded_at DESC);
SELECT cp_tenant_rls('blueprint_validation_runs');
CREATE POLICY platform_read ON blueprint_validation_runs FOR SELECT
    USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT', 'blueprint_validation_runs');

CREATE TABLE blueprint_validation_results (
    tenant_id    text        NOT NULL,
    recorded_at  timestamptz NOT NULL,
    run_id       uuid        NOT NULL,
    ordinal      integer     NOT NULL,
    blueprint_id uuid        NOT NULL,
    version      integer     NOT NULL,
    rule         text        NOT NULL,
    severity     text        NOT NULL CHECK (severity IN ('Error', 'Warning', 'Info')),
    message      text        NOT NULL,
    -- A JSON path into the definition: `$.contexts[1].aggregates[0].name`.
    location     text        NOT NULL,
    CONSTRAINT blueprint_validation_results_pkey PRIMARY KEY (tenant_id, recorded_at, run_id, ordinal)
) PARTITION BY RANGE (recorded_at);
CREATE INDEX blueprint_validation_results_by_run ON blueprint_validation_results (tenant_id, run_id, ordinal);
SELECT cp_tenant_rls('blueprint_validation_results');
CREATE POLICY platform_read ON blueprint_validation_results FOR SELECT
    USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT', 'blueprint_validation_results');

-- Creates the monthly partitions (UTC months) of both tables for the month of `from_time` and `months_ahead`
-- after it, if missing; returns the names created. Owned by the migration owner and run with its rights,
-- so the app role (which owns nothing) can keep partitions ahead of time.
CREATE FUNCTION catalogue_validation_partitions_ensure(from_time timestamptz, months_ahead integer)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    first_month timestamp := date_trunc('month', from_time AT TIME ZONE 'UTC');
    m timestamp;
    tbl text;
    part text;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24';
    END IF;
    -- The app role keeps partitions ready from this month on; only the owner (or an operator) may create
    -- past months (e.g. to restore an archive).
    IF session_user = current_setting('cp.app_role', true) AND from_time < now() - interval '1 month' THEN
        RAISE EXCEPTION 'the app role creates partitions from the current month on';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('catalogue.validation-partitions', 0));
    FOR i IN 0..months_ahead LOOP
        m := first_month + make_interval(months => i);
        FOREACH tbl IN ARRAY ARRAY['blueprint_validation_runs', 'blueprint_validation_results'] LOOP
            part := tbl || '_' || to_char(m, 'YYYYMM');
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, tbl,
                               m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
                RETURN NEXT part;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- Drops the partitions of both tables that end before the UTC month `keep_months` before the current one
-- (whole months of results, never a row at a time); returns the names dropped.
CREATE FUNCTION catalogue_validation_partitions_drop(keep_months integer)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamp := date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months);
    r record;
BEGIN
    -- The seed keeps validation results a year: whoever calls this (the app role included) cannot keep less.
    IF keep_months < 12 THEN
        RAISE EXCEPTION 'validation results are kept at least 12 months (asked to keep %)', keep_months;
    END IF;
    -- Dropping a partition locks its parent: wait a little for readers, then give up until the next pass.
    SET LOCAL lock_timeout = '5s';
    PERFORM pg_advisory_xact_lock(hashtextextended('catalogue.validation-partitions', 0));
    FOR r IN
        SELECT c.relname::text AS part, to_timestamp(substring(c.relname from '_([0-9]{6})$'), 'YYYYMM')::date AS month
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname IN ('blueprint_validation_runs', 'blueprint_validation_results')
          AND p.relnamespace = 'public'::regnamespace
          AND c.relname ~ '_[0-9]{6}$'
        ORDER BY 1
    LOOP
        IF r.month + interval '1 month' <= cutoff THEN
            EXECUTE format('DROP TABLE %I', r.part);
            RETURN NEXT r.part;
        END IF;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION catalogue_validation_partitions_ensure(timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION catalogue_validation_partitions_drop(integer) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION catalogue_validation_partitions_ensure(timestamptz, integer) TO %I',
                   current_setting('cp.app_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION catalogue_validation_partitions_drop(integer) TO %I',
                   current_setting('cp.app_role'));
END
$$;

-- This month and the next three exist from the start; the retention worker keeps three months ahead.
SELECT catalogue_validation_partitions_ensure(now(), 3);

-- The context map and domain models of a blueprint, projected from its newest validated version (rebuilt
-- whole, keyed by natural keys, on every BlueprintVersionValidated). `context_map_sources` says which version.
CREATE TABLE context_map_sources (
    tenant_id    text        NOT NULL,
    blueprint_id uuid        NOT NULL,
    project_id   uuid        NOT NULL,
    version      integer     NOT NULL,
    projected_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT context_map_sources_pkey PRIMARY KEY (tenant_id, blueprint_id)
);
CREATE INDEX context_map_sources_by_project ON context_map_sources (tenant_id, project_id);
SELECT cp_tenant_rls('context_map_sources');
CREATE POLICY platform_read ON context_map_sources FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'context_map_sources');

CREATE TABLE bounded_contexts (
    tenant_id    text    NOT NULL,
    blueprint_id uuid    NOT NULL,
    name         text    NOT NULL,
    project_id   uuid    NOT NULL,
    -- Position in the definition's `contexts`.
    position     integer NOT NULL,
    modules      text[]  NOT NULL DEFAULT '{}',
    CONSTRAINT bounded_contexts_pkey PRIMARY KEY (tenant_id, blueprint_id, name)
);
CREATE INDEX bounded_contexts_by_project ON bounded_contexts (tenant_id, project_id);
SELECT cp_tenant_rls('bounded_contexts');
CREATE POLICY platform_read ON bounded_contexts FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'bounded_contexts');

CREATE TABLE context_relationships (
    tenant_id    text    NOT NULL,
    blueprint_id uuid    NOT NULL,
    upstream     text    NOT NULL,
    downstream   text    NOT NULL,
    kind         text    NOT NULL CHECK (kind IN ('CustomerSupplier', 'Conformist', 'SharedKernel', 'Partnership',
                                                  'AnticorruptionLayer', 'OpenHostService', 'PublishedLanguage',
                                                  'SeparateWays')),
    project_id   uuid    NOT NULL,
    position     integer NOT NULL,
    CONSTRAINT context_relationships_pkey PRIMARY KEY (tenant_id, blueprint_id, upstream, downstream, kind)
);
CREATE INDEX context_relationships_by_project ON context_relationships (tenant_id, project_id);
SELECT cp_tenant_rls('context_relationships');
CREATE POLICY platform_read ON context_relationships FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'context_relationships');

CREATE TABLE domain_aggregates (
    tenant_id    text    NOT NULL,
    blueprint_id uuid    NOT NULL,
    context      text    NOT NULL,
    name         text    NOT NULL,
    project_id   uuid    NOT NULL,
    position     integer NOT NULL,
    entities     text[]  NOT NULL DEFAULT '{}',
    CONSTRAINT domain_aggregates_pkey PRIMARY KEY (tenant_id, blueprint_id, context, name)
);
CREATE INDEX domain_aggregates_by_project ON domain_aggregates (tenant_id, project_id);
SELECT cp_tenant_rls('domain_aggregates');
CREATE POLICY platform_read ON domain_aggregates FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'domain_aggregates');
