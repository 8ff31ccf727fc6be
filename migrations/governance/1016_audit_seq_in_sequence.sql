-- (tenant, seq) is unique across the audit log's partitions. A partitioned table's unique key must include
-- the partition key (recorded_at), so the primary key alone let two partitions hold the same (tenant, seq).
-- Each tenant's head now records the last sequence number written (`sequenced`), and a statement trigger
-- admits new entries only as the next numbers after it, each once, and moves it: a duplicate, a gap or a
-- number from the past is refused whatever partition it lands in, by anyone (a restore restores the heads
-- with the entries). The append locks the head already, so the check adds one update of a row it holds.
ALTER TABLE audit_heads ADD COLUMN sequenced bigint NOT NULL DEFAULT 0 CHECK (sequenced >= 0);
UPDATE audit_heads SET sequenced = size;

CREATE FUNCTION audit_entries_in_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    WITH added_by_tenant AS (
        SELECT tenant_id, min(seq) AS lo, max(seq) AS hi, count(*) AS n, count(DISTINCT seq) AS distinct_n
        FROM added GROUP BY tenant_id
    ), moved AS (
        UPDATE audit_heads h SET sequenced = a.hi
        FROM added_by_tenant a
        WHERE h.tenant_id = a.tenant_id AND a.lo = h.sequenced + 1 AND a.hi - a.lo + 1 = a.n AND a.n = a.distinct_n
        RETURNING h.tenant_id
    )
    SELECT a.tenant_id, a.lo, a.hi INTO bad
    FROM added_by_tenant a WHERE a.tenant_id NOT IN (SELECT tenant_id FROM moved) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'audit entries %..% of tenant % are not the next in its sequence', bad.lo, bad.hi, bad.tenant_id
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'audit_entries_tenant_seq';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_entries_in_sequence AFTER INSERT ON audit_entries
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_in_sequence();
