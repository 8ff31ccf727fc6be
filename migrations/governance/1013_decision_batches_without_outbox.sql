-- Decision batches enqueue their `PolicyDecided` events through the kernel (outbox::enqueue_batch), which
-- writes every outbox column — the actor among them, which this function's own INSERT had left out. This
-- version appends the decisions only. Otherwise as 1005.
DROP FUNCTION governance_append_decisions(text[], uuid[], timestamptz[], text[], text[], text[], jsonb[], bigint[],
                                          text[], jsonb[], jsonb[], text[], text[], text[], text[], jsonb[], text,
                                          text, integer);

CREATE FUNCTION governance_append_decisions(
    p_tenants text[], p_ids uuid[], p_at timestamptz[], p_principals text[], p_actions text[], p_resources text[],
    p_contexts jsonb[], p_versions bigint[], p_hashes text[], p_determining jsonb[], p_errors jsonb[],
    p_effects text[], p_traces text[], p_correlations text[]
) RETURNS void LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_temp AS $$
DECLARE
    v_caller text := current_setting('app.tenant_id', true);
    v_tenant text;
BEGIN
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
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_caller, ''), true);
END
$$;
