-- Durable timers (kernel::timers): step timeouts, waits, retry backoff, lease expiry checks — anything a
-- domain must do at a time, across restarts. A timer is keyed (tenant, subject, name, deadline): setting
-- the same one twice is one timer. A firer claims due timers with FOR UPDATE SKIP LOCKED (one replica per
-- timer), runs the domain's handler in the same transaction and deletes the timer there, so a timer fires
-- once with its effects or, if anything fails (a crash included), stays to fire at the next pass.
CREATE TABLE timers (
    tenant_id  text        NOT NULL,
    subject    text        NOT NULL,
    name       text        NOT NULL,
    deadline   timestamptz NOT NULL,
    payload    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT timers_pkey PRIMARY KEY (tenant_id, subject, name, deadline),
    CONSTRAINT timers_subject CHECK (length(subject) BETWEEN 1 AND 200),
    CONSTRAINT timers_name CHECK (length(name) BETWEEN 1 AND 200)
);
-- The firers' order. The one key not led by tenant_id: it serves the firer, which reads every tenant.
CREATE INDEX timers_due ON timers (deadline);
SELECT cp_tenant_rls('timers');
CREATE POLICY firer ON timers USING (current_setting('app.system', true) = 'timers');
-- UPDATE only because claiming with SELECT … FOR UPDATE needs it; timers are never updated.
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'timers');
