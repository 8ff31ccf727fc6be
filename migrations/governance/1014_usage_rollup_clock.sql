-- The rollup closes hours by the database's clock, never the caller's: a caller whose clock ran ahead (or
-- that passed a time of its choosing) closed hours that had not happened yet, and every record for them was
-- then refused. The late window is bounded (0 to 7 days). The watermark lock is named like every other
-- advisory lock (kernel::db::lock: hashtextextended of a name under the domain); ingest takes it shared.
-- Otherwise as 1010.
DROP FUNCTION governance_usage_rollup(timestamptz, interval);

CREATE FUNCTION governance_usage_rollup(late_window interval)
RETURNS TABLE (grain text, rolled_to timestamptz, rows_written bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was_platform text := current_setting('app.platform', true);
    hour_from timestamptz;
    hour_to timestamptz;
    day_from timestamptz;
    day_to timestamptz;
    n bigint;
BEGIN
    IF late_window < interval '0' OR late_window > interval '7 days' THEN
        RAISE EXCEPTION 'the late window is 0 to 7 days, not %', late_window;
    END IF;
    -- Ingest holds this lock shared (usage/store.rs, kernel::db::lock).
    PERFORM pg_advisory_xact_lock(hashtextextended('governance.usage-watermark', 0));
    -- The database's clock, taken once the lock is held: never a caller's.
    hour_to := date_trunc('hour', (clock_timestamp() - late_window) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
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

REVOKE ALL ON FUNCTION governance_usage_rollup(interval) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_usage_rollup(interval) TO %I', current_setting('cp.app_role'));
END $$;
