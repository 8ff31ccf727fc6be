-- Workflow's event store: an append-only stream per workflow instance.
--
-- * Optimistic concurrency: `workflow_streams.version` is the number of events a stream holds. An append
--   names the version it read (`expected`); the UPDATE that moves the version on matches only that version,
--   so of two appends at one version exactly one wins (the other waits for the winner's commit, then matches
--   nothing and is refused with CONFLICT naming both versions). The key (tenant, instance, version) of
--   `workflow_events` is the second guard.
-- * The global order: every event carries the id of the transaction that wrote it (`tx`, an xid8 as a
--   bigint) and a `position` from one sequence. Readers that follow all streams (the projector, replay,
--   subscriptions) read in (tx, position) order and only below the oldest transaction still in flight
--   (`pg_snapshot_xmin`): every transaction below it has ended, and one that has not yet written gets a
--   larger xid, so nothing can commit later behind a reader's checkpoint. Reading by `position` alone
--   could skip an event whose transaction took its position first and committed last.
-- * Events are never changed or removed: the app role has SELECT and INSERT only, and a trigger refuses
--   UPDATE and DELETE to every role.

CREATE TABLE workflow_streams (
    tenant_id          text        NOT NULL,
    instance_id        uuid        NOT NULL,
    definition_tenant  text        NOT NULL,
    definition_key     text        NOT NULL,
    definition_version integer     NOT NULL,
    version            bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_streams_pkey PRIMARY KEY (tenant_id, instance_id)
);
SELECT cp_tenant_rls('workflow_streams');
CREATE POLICY platform_read ON workflow_streams FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'workflow_streams');

CREATE TABLE workflow_events (
    tenant_id    text        NOT NULL,
    instance_id  uuid        NOT NULL,
    version      bigint      NOT NULL CHECK (version >= 1),
    position     bigint      GENERATED ALWAYS AS IDENTITY,
    tx           bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    data         jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    -- The envelope's trace, correlation and causation ids and the actor, as the outbox carries them.
    meta         jsonb       NOT NULL CHECK (jsonb_typeof(meta) = 'object'),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_events_pkey PRIMARY KEY (tenant_id, instance_id, version),
    CONSTRAINT workflow_events_stream FOREIGN KEY (tenant_id, instance_id) REFERENCES workflow_streams
);
-- The global order. The one key not led by tenant_id: it serves the readers that follow every stream.
CREATE INDEX workflow_events_global ON workflow_events (tx, position);
SELECT cp_tenant_rls('workflow_events');
CREATE POLICY platform_read ON workflow_events FOR SELECT USING (current_setting('app.platform', true) = 'on');
-- The readers that follow every tenant's streams.
CREATE POLICY follower ON workflow_events FOR SELECT USING (current_setting('app.system', true) = 'follower');
SELECT cp_grant_app('SELECT, INSERT', 'workflow_events');

CREATE FUNCTION workflow_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow events are append-only'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'workflow_events_append_only';
END
$$;
CREATE TRIGGER workflow_events_append_only BEFORE UPDATE OR DELETE ON workflow_events
    FOR EACH ROW EXECUTE FUNCTION workflow_events_append_only();
CREATE TRIGGER workflow_events_no_truncate BEFORE TRUNCATE ON workflow_events
    FOR EACH STATEMENT EXECUTE FUNCTION workflow_events_append_only();

-- The oldest transaction still in flight, as a bigint: readers of the global order stop below it.
CREATE FUNCTION workflow_safe_tx() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint
$$;
