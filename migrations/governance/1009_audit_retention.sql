-- Retention of audit entries: a monthly partition whose month ended more than `keep_months` ago is
-- dropped whole — provided no tenant with entries in it is under legal hold, and every entry in it has
-- been exported (so nothing is lost that was never copied out). A partition that fails either test is
-- kept whole and named in the result with the reason, until the hold is lifted or the export catches up.
-- The Merkle tree's stored hashes stay: proofs about later entries, and checkpoints, still hold.
CREATE FUNCTION governance_audit_expire(keep_months integer)
RETURNS TABLE (partition_name text, dropped boolean, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months))
                          AT TIME ZONE 'UTC';
    part record;
    held text;
    unexported text;
    was_platform text := current_setting('app.platform', true);
BEGIN
    IF keep_months < 12 THEN
        RAISE EXCEPTION 'audit entries are kept at least 12 months (asked: %)', keep_months;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('governance_audit_expire'));
    -- The holds and export cursors are under row-level security, which applies to the owner too (FORCE):
    -- read them as a platform operator. (The partitions themselves are read directly, as their owner.)
    PERFORM set_config('app.platform', 'on', true);
    FOR part IN
        SELECT c.relname AS name,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_entries'::regclass
        ORDER BY 2
    LOOP
        CONTINUE WHEN part.upper > cutoff;
        EXECUTE format(
            'SELECT min(e.tenant_id) FROM %I e JOIN legal_holds h ON h.tenant_id = e.tenant_id AND h.on_hold',
            part.name) INTO held;
        EXECUTE format(
            'SELECT min(e.tenant_id) FROM %I e LEFT JOIN audit_export_cursors c ON c.tenant_id = e.tenant_id '
            'WHERE e.seq > coalesce(c.exported_to, 0)', part.name) INTO unexported;
        IF held IS NOT NULL THEN
            partition_name := part.name; dropped := false;
            reason := format('tenant %s is under legal hold', held);
        ELSIF unexported IS NOT NULL THEN
            partition_name := part.name; dropped := false;
            reason := format('tenant %s has entries here not exported yet', unexported);
        ELSE
            EXECUTE format('ALTER TABLE audit_entries DETACH PARTITION %I', part.name);
            EXECUTE format('DROP TABLE %I', part.name);
            partition_name := part.name; dropped := true; reason := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;
REVOKE ALL ON FUNCTION governance_audit_expire(integer) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_audit_expire(integer) TO %I',
                   current_setting('cp.app_role'));
END $$;
