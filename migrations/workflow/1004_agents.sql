-- Agent pools and agent tasks.
--
-- * A pool's configuration (its agents, how many tasks each runs at once, how long a lease lasts
--   unrenewed) is here; who holds which agent right now is a lease in Redis (kernel::leases), whose
--   fencing token comes from `fencing_tokens`.
-- * `agent_tasks` is the saga's index of its tasks, written in the same transaction as the instance's
--   events: it finds a task's instance from the task's id (an agent reports by task id), and lists an
--   agent's tasks. The instance's history stays the authority: a report is checked against it.

CREATE TABLE agent_pools (
    tenant_id          text        NOT NULL,
    pool               text        NOT NULL CHECK (pool ~ '^[a-z0-9_-]{1,63}$'),
    -- The agents' ids (catalogue's agent keys, or any id the agents report with).
    agents             text[]      NOT NULL CHECK (cardinality(agents) BETWEEN 1 AND 256),
    -- Tasks one agent runs at once.
    concurrency        integer     NOT NULL CHECK (concurrency BETWEEN 1 AND 64),
    -- A lease not renewed for this long is lost, and the task goes to another agent (or the same one) with
    -- a higher fencing token.
    lease_ttl_seconds  integer     NOT NULL CHECK (lease_ttl_seconds BETWEEN 1 AND 3600),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_pools_pkey PRIMARY KEY (tenant_id, pool)
);
SELECT cp_tenant_rls('agent_pools');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'agent_pools');

CREATE TABLE agent_tasks (
    tenant_id      text        NOT NULL,
    task_id        uuid        NOT NULL,
    instance_id    uuid        NOT NULL,
    step_id        text        NOT NULL,
    attempt        integer     NOT NULL CHECK (attempt >= 1),
    compensation   boolean     NOT NULL,
    skill          text        NOT NULL,
    pool           text        NOT NULL,
    -- The agent holding it, the lease's resource and fencing token (the latest, after a reassignment).
    agent_id       text,
    resource       text,
    fencing_token  bigint,
    status         text        NOT NULL CHECK (status IN ('Assigned', 'Unassigned', 'Completed', 'Failed', 'Cancelled')),
    percent        smallint    NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    message        text        NOT NULL DEFAULT '',
    outputs        jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(outputs) = 'array'),
    reason         text,
    assigned_at    timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_tasks_pkey PRIMARY KEY (tenant_id, task_id),
    CONSTRAINT agent_tasks_stream FOREIGN KEY (tenant_id, instance_id) REFERENCES workflow_streams
);
CREATE INDEX agent_tasks_by_instance ON agent_tasks (tenant_id, instance_id, step_id);
CREATE INDEX agent_tasks_by_agent ON agent_tasks (tenant_id, pool, agent_id, status);
SELECT cp_tenant_rls('agent_tasks');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'agent_tasks');

-- The tenant's instances, most recently changed first (`workflowInstances`).
CREATE INDEX process_state_by_update ON process_state (tenant_id, updated_at DESC, instance_id DESC);
