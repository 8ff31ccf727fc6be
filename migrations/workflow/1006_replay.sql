-- Replay runs and their shadow streams: an instance's history run again through the saga's decisions
-- (against the version it ran or another), the events the code produces written here — never into the
-- source stream — with where they part from the history. Kept 90 days (`workflow_replay_retention`),
-- longer while the tenant is under legal hold.

CREATE TABLE replay_runs (
    tenant_id          text        NOT NULL,
    replay_id          uuid        NOT NULL,
    instance_id        uuid        NOT NULL,
    definition_tenant  text        NOT NULL,
    definition_key     text        NOT NULL,
    definition_version integer     NOT NULL,
    -- Decisions found equal before the end or the divergence.
    decisions_checked  integer     NOT NULL,
    -- The history's version where the code parts from it (NULL: it does not), what the code decides there
    -- and what the history holds.
    diverged_at        bigint,
    decided            jsonb,
    recorded           jsonb,
    replayed_by        text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT replay_runs_pkey PRIMARY KEY (tenant_id, replay_id),
    CONSTRAINT replay_runs_stream FOREIGN KEY (tenant_id, instance_id) REFERENCES workflow_streams
);
CREATE INDEX replay_runs_by_instance ON replay_runs (tenant_id, instance_id, created_at DESC);
SELECT cp_tenant_rls('replay_runs');
CREATE POLICY retention ON replay_runs FOR ALL USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'replay_runs');

-- The shadow stream: the facts as recorded and the decisions as the code makes them, up to the divergence.
CREATE TABLE replay_events (
    tenant_id   text   NOT NULL,
    replay_id   uuid   NOT NULL,
    version     bigint NOT NULL,
    event_type  text   NOT NULL,
    data        jsonb  NOT NULL,
    CONSTRAINT replay_events_pkey PRIMARY KEY (tenant_id, replay_id, version),
    CONSTRAINT replay_events_run FOREIGN KEY (tenant_id, replay_id) REFERENCES replay_runs ON DELETE CASCADE
);
SELECT cp_tenant_rls('replay_events');
CREATE POLICY retention ON replay_events FOR ALL USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT', 'replay_events');

-- Tenancy's legal holds (TenantLegalHoldChanged, the latest by occurredAt wins): no retention deletes a
-- held tenant's rows.
CREATE TABLE legal_holds (
    tenant_id  text        NOT NULL,
    on_hold    boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT legal_holds_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('legal_holds');
CREATE POLICY retention ON legal_holds FOR SELECT USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'legal_holds');

-- Deletes every tenant's replay runs (and their shadow events) older than `keep_days` (at least 90), but
-- a held tenant's; how many runs. Called by the retention worker in a `retention` system transaction.
CREATE FUNCTION workflow_replay_retention(keep_days integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF keep_days < 90 THEN
        RAISE EXCEPTION 'replay runs are kept at least 90 days (asked to keep %)', keep_days;
    END IF;
    DELETE FROM replay_runs r
     WHERE r.created_at < now() - make_interval(days => keep_days)
       AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.tenant_id = r.tenant_id AND h.on_hold);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
