-- Legal hold (the seed: no retention deletes a held tenant's data anywhere). Tenancy's
-- `TenantLegalHoldChanged` is projected here (legal_holds/: the latest event by occurredAt wins), and the
-- validation-result retention keeps a partition whole while any tenant with rows in it is on hold.
CREATE TABLE legal_holds (
    tenant_id  text        NOT NULL,
    on_hold    boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT legal_holds_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('legal_holds');
CREATE POLICY platform_read ON legal_holds FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'legal_holds');

-- As 1003, and a partition with a held tenant's rows is kept.
CREATE OR REPLACE FUNCTION catalogue_validation_partitions_drop(keep_months integer)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamp := date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months);
    r record;
    held text;
    was_platform text := current_setting('app.platform', true);
BEGIN
    -- The seed keeps validation results a year: whoever calls this (the app role included) cannot keep less.
    IF keep_months < 12 THEN
        RAISE EXCEPTION 'validation results are kept at least 12 months (asked to keep %)', keep_months;
    END IF;
    -- Dropping a partition locks its parent: wait a little for readers, then give up until the next pass.
    SET LOCAL lock_timeout = '5s';
    PERFORM pg_advisory_xact_lock(hashtextextended('catalogue.validation-partitions', 0));
    -- Every tenant's legal hold is read (the platform policy of legal_holds).
    PERFORM set_config('app.platform', 'on', true);
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
        CONTINUE WHEN r.month + interval '1 month' > cutoff;
        -- A partition holding rows of a tenant on legal hold is kept whole until the hold is lifted.
        EXECUTE format(
            'SELECT min(x.tenant_id) FROM %I x JOIN legal_holds h ON h.tenant_id = x.tenant_id AND h.on_hold',
            r.part) INTO held;
        IF held IS NOT NULL THEN
            RAISE NOTICE 'kept %: tenant % is under legal hold', r.part, held;
            CONTINUE;
        END IF;
        EXECUTE format('DROP TABLE %I', r.part);
        RETURN NEXT r.part;
    END LOOP;
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;
