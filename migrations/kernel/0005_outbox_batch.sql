-- Many events in one round trip (outbox::enqueue_batch): a batch that writes several tenants' rows — a group
-- commit — enqueues all its events with one call. SECURITY INVOKER: row-level security checks every row, each
-- tenant's rows inserted after switching app.tenant_id to it; the caller's setting is restored at the end.
-- Every array holds one entry per event.
CREATE FUNCTION cp_outbox_enqueue(
    p_tenants text[], p_event_ids text[], p_event_types text[], p_routing_keys text[], p_schema_versions integer[],
    p_envelopes jsonb[], p_actors text[]
) RETURNS void LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    v_caller text := current_setting('app.tenant_id', true);
    v_tenant text;
BEGIN
    IF cardinality(p_event_ids) <> cardinality(p_tenants) OR cardinality(p_event_types) <> cardinality(p_tenants)
       OR cardinality(p_routing_keys) <> cardinality(p_tenants)
       OR cardinality(p_schema_versions) <> cardinality(p_tenants)
       OR cardinality(p_envelopes) <> cardinality(p_tenants) OR cardinality(p_actors) <> cardinality(p_tenants) THEN
        RAISE EXCEPTION 'cp_outbox_enqueue: every array holds one entry per event';
    END IF;
    FOR v_tenant IN SELECT DISTINCT x FROM unnest(p_tenants) AS x LOOP
        PERFORM set_config('app.tenant_id', v_tenant, true);
        INSERT INTO outbox (tenant_id, event_id, event_type, routing_key, schema_version, envelope, actor)
        SELECT o.t, o.id, o.ty, o.rk, o.v, o.env, o.act
        FROM unnest(p_tenants, p_event_ids, p_event_types, p_routing_keys, p_schema_versions, p_envelopes, p_actors)
             AS o(t, id, ty, rk, v, env, act)
        WHERE o.t = v_tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_caller, ''), true);
END
$$;
