-- A batching consumer takes the inbox rows of a batch's messages — of any tenants — in one statement.
-- SECURITY INVOKER: each tenant's rows are inserted with `app.tenant_id` set to that tenant, so row-level
-- security checks every row as a tenant's own transaction would; the caller's setting is restored after.
-- Returns the (tenant, key) pairs that were new: a key already there comes back not at all, one twice in
-- the batch once.
CREATE FUNCTION cp_inbox_take(p_tenants text[], p_keys text[], p_handler text, p_event_ids text[])
RETURNS TABLE (tenant text, message text) LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    v_caller text := current_setting('app.tenant_id', true);
    v_tenant text;
BEGIN
    IF cardinality(p_keys) <> cardinality(p_tenants) OR cardinality(p_event_ids) <> cardinality(p_tenants) THEN
        RAISE EXCEPTION 'cp_inbox_take: one tenant, key and event id per message';
    END IF;
    FOR v_tenant IN SELECT DISTINCT x FROM unnest(p_tenants) AS x LOOP
        PERFORM set_config('app.tenant_id', v_tenant, true);
        RETURN QUERY
            INSERT INTO inbox (tenant_id, message_key, handler, event_id)
            SELECT u.t, u.k, p_handler, u.e FROM unnest(p_tenants, p_keys, p_event_ids) AS u(t, k, e)
            WHERE u.t = v_tenant
            ON CONFLICT DO NOTHING
            RETURNING inbox.tenant_id, inbox.message_key;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_caller, ''), true);
END
$$;
