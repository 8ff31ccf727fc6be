-- A tenant's own transaction may only add to its quota balances (consuming quota): lowering `used`, or
-- deleting a balance, would undo the limit. Refunds and corrections are the platform's.
CREATE FUNCTION quota_balances_only_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('app.platform', true) IS DISTINCT FROM 'on'
       AND (NEW.used < OLD.used OR (NEW.tenant_id, NEW.quota_key, NEW.period_start)
                                   IS DISTINCT FROM (OLD.tenant_id, OLD.quota_key, OLD.period_start)) THEN
        RAISE EXCEPTION 'only platform operators lower a quota balance'
            USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'quota_balances_only_grow';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER quota_balances_only_grow BEFORE UPDATE ON quota_balances
    FOR EACH ROW EXECUTE FUNCTION quota_balances_only_grow();
