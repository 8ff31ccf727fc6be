-- The process-state projection: each instance's state as its events leave it, for reads and live views.
-- Written only by the projector, which follows the event store's global order from its own checkpoint
-- (not broker redelivery), and can be dropped and rebuilt from the events with the same result.

CREATE TABLE process_state (
    tenant_id          text        NOT NULL,
    instance_id        uuid        NOT NULL,
    definition_key     text        NOT NULL,
    definition_version integer     NOT NULL,
    status             text        NOT NULL CHECK (status IN ('Created', 'Running', 'AssigningTask', 'AwaitingAgent',
                                       'AwaitingApproval', 'Waiting', 'Compensating', 'Completed', 'Failed', 'Cancelled')),
    -- Each step's state by step id (process::StepState).
    steps              jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(steps) = 'object'),
    -- The stream version of the last event applied, and its type.
    version            bigint      NOT NULL,
    last_event_type    text        NOT NULL,
    started_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    ended_at           timestamptz,
    CONSTRAINT process_state_pkey PRIMARY KEY (tenant_id, instance_id)
);
CREATE INDEX process_state_by_status ON process_state (tenant_id, status, updated_at);
SELECT cp_tenant_rls('process_state');
CREATE POLICY projector ON process_state USING (current_setting('app.system', true) = 'follower')
    WITH CHECK (current_setting('app.system', true) = 'follower');
CREATE POLICY platform_read ON process_state FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'process_state');

-- Where each projector stands in the global order (history::Checkpoint). Not a tenant's row: one per
-- projector, for every tenant's events.
CREATE TABLE projector_checkpoints (
    name        text        NOT NULL,
    tx          bigint      NOT NULL DEFAULT 0,
    position    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projector_checkpoints_pkey PRIMARY KEY (name)
);
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'projector_checkpoints');
