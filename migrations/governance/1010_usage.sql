-- Usage metering (usage/mod.rs): raw usage records, time-partitioned by day and dropped whole after the raw
-- retention (90 days by default), and their hourly and daily rollups, kept seven years.
--
-- A record's identity is (tenant, occurred_at, idempotency_key): a producer that retries sends the same
-- record, same key and same time, and the second copy is dropped (ON CONFLICT DO NOTHING). The partition key
-- is part of every unique key of a partitioned table, so uniqueness holds per instant, as it does for
-- Lago's and OpenMeter's (transaction id, timestamp) deduplication.

CREATE TABLE usage_records (
    tenant_id       text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    idempotency_key text        NOT NULL,
    meter           text        NOT NULL,
    quantity        bigint      NOT NULL CHECK (quantity >= 0),
    dimensions      jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_pkey PRIMARY KEY (tenant_id, occurred_at, idempotency_key)
) PARTITION BY RANGE (occurred_at);
-- The rollup reads an hour of every tenant's records at a time: a BRIN index over time, nearly free to
-- keep up as records arrive in time order.
CREATE INDEX usage_records_occurred_brin ON usage_records USING brin (occurred_at);
SELECT cp_tenant_rls('usage_records');
SELECT cp_grant_app('SELECT, INSERT', 'usage_records');
CREATE POLICY platform_read ON usage_records FOR SELECT USING (current_setting('app.platform', true) = 'on');

-- Sums of records per tenant, meter, bucket (an hour or a day, UTC) and set of dimensions.
CREATE TABLE usage_rollups (
    tenant_id    text        NOT NULL,
    meter        text        NOT NULL,
    grain        text        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket_start timestamptz NOT NULL,
    dimensions   jsonb       NOT NULL,
    quantity     bigint      NOT NULL,
    records      bigint      NOT NULL,
    CONSTRAINT usage_rollups_pkey PRIMARY KEY (tenant_id, meter, grain, bucket_start, dimensions)
);
CREATE INDEX usage_rollups_bucket ON usage_rollups (bucket_start);
SELECT cp_tenant_rls('usage_rollups');
SELECT cp_grant_app('SELECT', 'usage_rollups');
CREATE POLICY platform_write ON usage_rollups USING (current_setting('app.platform', true) = 'on');

-- How far each grain is rolled up: every bucket before `rolled_to` is closed. Records for a closed hour
-- are refused (too late); records for an open one are counted when it closes. The rollup worker moves the
-- hourly watermark to the hour `late window` ago, and the daily one to the day the hourly one is in.
-- Ingest holds the advisory lock `governance_usage_watermark` shared while it checks and inserts; the
-- rollup holds it exclusively, so no record lands in an hour while that hour is being closed.
CREATE TABLE usage_watermarks (
    grain     text        NOT NULL CHECK (grain IN ('hour', 'day')),
    rolled_to timestamptz NOT NULL,
    CONSTRAINT usage_watermarks_pkey PRIMARY KEY (grain)
);
SELECT cp_grant_app('SELECT', 'usage_watermarks');
INSERT INTO usage_watermarks VALUES
    ('hour', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    ('day', date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC');

-- Creates the daily partitions (UTC days) from the day the hourly watermark is in (records before it are
-- refused), but not before `keep_days` ago, to `days_ahead` days from now; returns how many it created.
CREATE FUNCTION governance_usage_partitions(days_ahead integer, keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    today timestamp := date_trunc('day', now() AT TIME ZONE 'UTC');
    first timestamp;
    day timestamp;
    part text;
    created integer := 0;
BEGIN
    IF days_ahead < 1 OR days_ahead > 60 THEN
        RAISE EXCEPTION 'days_ahead is 1 to 60';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('governance_usage_partitions'));
    SELECT greatest(least(date_trunc('day', rolled_to AT TIME ZONE 'UTC'), today), today - make_interval(days => keep_days))
        INTO first FROM usage_watermarks WHERE grain = 'hour';
    day := first;
    WHILE day <= today + make_interval(days => days_ahead) LOOP
        part := 'usage_records_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)',
                           part, day AT TIME ZONE 'UTC', (day + interval '1 day') AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        day := day + interval '1 day';
    END LOOP;
    RETURN created;
END
$$;

-- Closes every hour before `at - late_window` (and every day before the day that reaches): rolls the
-- hours' records up into hourly rollups and the days' hourly rollups into daily ones, and moves the
-- watermarks. Returns each grain's watermark and the rollup rows it wrote. Waits for ingests in flight.
CREATE FUNCTION governance_usage_rollup(at timestamptz, late_window interval)
RETURNS TABLE (grain text, rolled_to timestamptz, rows_written bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was_platform text := current_setting('app.platform', true);
    hour_from timestamptz;
    hour_to timestamptz := date_trunc('hour', (at - late_window) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    day_from timestamptz;
    day_to timestamptz;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('governance_usage_watermark'));
    PERFORM set_config('app.platform', 'on', true);

    SELECT w.rolled_to INTO hour_from FROM usage_watermarks w WHERE w.grain = 'hour' FOR UPDATE;
    n := 0;
    IF hour_to > hour_from THEN
        INSERT INTO usage_rollups (tenant_id, meter, grain, bucket_start, dimensions, quantity, records)
        SELECT r.tenant_id, r.meter, 'hour',
               date_trunc('hour', r.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
               r.dimensions, LEAST(sum(r.quantity), 9223372036854775807)::bigint, count(*)
        FROM usage_records r
        WHERE r.occurred_at >= hour_from AND r.occurred_at < hour_to
        GROUP BY 1, 2, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE usage_watermarks w SET rolled_to = hour_to WHERE w.grain = 'hour';
    ELSE
        hour_to := hour_from;
    END IF;
    grain := 'hour'; rolled_to := hour_to; rows_written := n;
    RETURN NEXT;

    SELECT w.rolled_to INTO day_from FROM usage_watermarks w WHERE w.grain = 'day' FOR UPDATE;
    day_to := date_trunc('day', hour_to AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    n := 0;
    IF day_to > day_from THEN
        INSERT INTO usage_rollups (tenant_id, meter, grain, bucket_start, dimensions, quantity, records)
        SELECT u.tenant_id, u.meter, 'day',
               date_trunc('day', u.bucket_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
               u.dimensions, LEAST(sum(u.quantity), 9223372036854775807)::bigint, sum(u.records)
        FROM usage_rollups u
        WHERE u.grain = 'hour' AND u.bucket_start >= day_from AND u.bucket_start < day_to
        GROUP BY 1, 2, 4, 5;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE usage_watermarks w SET rolled_to = day_to WHERE w.grain = 'day';
    ELSE
        day_to := day_from;
    END IF;
    grain := 'day'; rolled_to := day_to; rows_written := n;
    RETURN NEXT;
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;

-- Retention: a raw partition whose day ended more than `raw_days` ago is dropped whole, provided it is
-- rolled up (its day is before the daily watermark) and no tenant with records in it is under legal hold;
-- otherwise it is kept whole and named with the reason. Rollups older than `rollup_years` are deleted,
-- except a held tenant's.
CREATE FUNCTION governance_usage_expire(raw_days integer, rollup_years integer)
RETURNS TABLE (partition_name text, dropped boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz := (date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => raw_days))
                          AT TIME ZONE 'UTC';
    rolled timestamptz;
    part record;
    held text;
    was_platform text := current_setting('app.platform', true);
BEGIN
    IF raw_days < 1 OR rollup_years < 1 THEN
        RAISE EXCEPTION 'raw usage is kept at least a day and rollups at least a year';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('governance_usage_expire'));
    PERFORM set_config('app.platform', 'on', true);
    SELECT w.rolled_to INTO rolled FROM usage_watermarks w WHERE w.grain = 'day';
    FOR part IN
        SELECT c.relname AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'usage_records'::regclass
        ORDER BY 2
    LOOP
        CONTINUE WHEN part.upper > cutoff;
        EXECUTE format(
            'SELECT min(r.tenant_id) FROM %I r JOIN legal_holds h ON h.tenant_id = r.tenant_id AND h.on_hold',
            part.name) INTO held;
        partition_name := part.name;
        IF part.upper > rolled THEN
            dropped := false; reason := 'not rolled up yet';
        ELSIF held IS NOT NULL THEN
            dropped := false; reason := format('tenant %s is under legal hold', held);
        ELSE
            EXECUTE format('ALTER TABLE usage_records DETACH PARTITION %I', part.name);
            EXECUTE format('DROP TABLE %I', part.name);
            dropped := true; reason := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM usage_rollups u
    WHERE u.bucket_start < now() - make_interval(years => rollup_years)
      AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.tenant_id = u.tenant_id AND h.on_hold);
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;

REVOKE ALL ON FUNCTION governance_usage_partitions(integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION governance_usage_rollup(timestamptz, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION governance_usage_expire(integer, integer) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_usage_partitions(integer, integer) TO %I',
                   current_setting('cp.app_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_usage_rollup(timestamptz, interval) TO %I',
                   current_setting('cp.app_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_usage_expire(integer, integer) TO %I',
                   current_setting('cp.app_role'));
END $$;
SELECT governance_usage_partitions(7, 90);
