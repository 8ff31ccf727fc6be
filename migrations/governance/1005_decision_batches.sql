-- Decisions appended in batches (decisions/writer.rs: the API's group commit). One call appends the
-- decisions of several tenants and their outbox rows, so a batch costs one round trip, not three per tenant.
-- SECURITY INVOKER: row-level security checks every row, each tenant's rows inserted after switching
-- app.tenant_id to it; the caller's setting is restored at the end. Every array is one entry per decision;
-- `envelopes` is either empty (the caller emits its events itself) or one `PolicyDecided` envelope per
-- decision, with its event id in `event_ids`.
CREATE FUNCTION governance_append_decisions(
    p_tenants text[], p_ids uuid[], p_at timestamptz[], p_principals text[], p_actions text[], p_resources text[],
    p_contexts jsonb[], p_versions bigint[], p_hashes text[], p_determining jsonb[], p_errors jsonb[],
    p_effects text[], p_traces text[], p_correlations text[],
    p_event_ids text[], p_envelopes jsonb[], p_event_type text, p_routing_key text, p_schema_version integer
) RETURNS void LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    v_caller text := current_setting('app.tenant_id', true);
    v_tenant text;
BEGIN
    IF cardinality(p_envelopes) NOT IN (0, cardinality(p_ids))
       OR cardinality(p_event_ids) <> cardinality(p_envelopes) THEN
        RAISE EXCEPTION 'governance_append_decisions: one envelope per decision, or none';
    END IF;
    FOR v_tenant IN SELECT DISTINCT x FROM unnest(p_tenants) AS x LOOP
        PERFORM set_config('app.tenant_id', v_tenant, true);
        INSERT INTO decisions (tenant_id, decision_id, decided_at, principal, action, resource, context,
                               policy_set_version, policy_set_hash, determining_policies, errors, effect,
                               trace_id, correlation_id)
        SELECT u.t, u.id, u.at, u.p, u.a, u.r, u.c, u.v, u.h,
               ARRAY(SELECT jsonb_array_elements_text(u.dp)::uuid),
               ARRAY(SELECT jsonb_array_elements_text(u.e)),
               u.ef, u.tr, u.co
        FROM unnest(p_tenants, p_ids, p_at, p_principals, p_actions, p_resources, p_contexts, p_versions, p_hashes,
                    p_determining, p_errors, p_effects, p_traces, p_correlations)
             AS u(t, id, at, p, a, r, c, v, h, dp, e, ef, tr, co)
        WHERE u.t = v_tenant;
        IF cardinality(p_envelopes) > 0 THEN
            INSERT INTO outbox (tenant_id, event_id, event_type, routing_key, schema_version, envelope)
            SELECT o.t, o.id, p_event_type, p_routing_key, p_schema_version, o.env
            FROM unnest(p_tenants, p_event_ids, p_envelopes) AS o(t, id, env)
            WHERE o.t = v_tenant;
        END IF;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_caller, ''), true);
END
$$;
