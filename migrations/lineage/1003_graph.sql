-- Lineage: the graph of what came from what. Nodes are named `<kind>:<key>`:
--
--   task:<workflow task uuid>          artifact:<artifactId>@<version>      blueprint:<catalogue blueprint uuid>
--   deployment:<projectId>/<environment>@<config version>                  (catalogue's EnvironmentChanged)
--   job:<namespace>/<name>   run:<runId>   dataset:<namespace>/<name>         (OpenLineage)
--
-- An edge from → to says `to` came from `from`, with its kind and when it was recorded: PRODUCED (task →
-- artifact version), BLUEPRINT (blueprint → artifact version), DERIVED (input version → version),
-- DEPLOYED (artifact version → deployment), RUN (job → run), INPUT (dataset → run), OUTPUT (run →
-- dataset). Edges are recorded once (the key), whoever reports them again. Traversals go one layer per
-- statement over the key (downstream) and lineage_edges_upstream (upstream): kernel::graph.

CREATE TABLE lineage_nodes (
    tenant_id  text        NOT NULL,
    node_id    text        NOT NULL CHECK (length(node_id) BETWEEN 3 AND 1100),
    kind       text        NOT NULL CHECK (kind IN ('task', 'artifact', 'blueprint', 'deployment', 'job', 'run', 'dataset')),
    -- For people: an artifact's name, a job's or dataset's name, an environment.
    label      text        CHECK (length(label) <= 500),
    -- What OpenLineage said of it last (a dataset's schema, a run's state and times): facets by name.
    facets     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(facets) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lineage_nodes_pkey PRIMARY KEY (tenant_id, node_id),
    CONSTRAINT lineage_nodes_kind CHECK (starts_with(node_id, kind || ':'))
);
SELECT cp_tenant_rls('lineage_nodes');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'lineage_nodes');

CREATE TABLE lineage_edges (
    tenant_id   text        NOT NULL,
    from_node   text        NOT NULL,
    to_node     text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('PRODUCED', 'BLUEPRINT', 'DERIVED', 'DEPLOYED', 'RUN', 'INPUT', 'OUTPUT')),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lineage_edges_pkey PRIMARY KEY (tenant_id, from_node, to_node, kind),
    CONSTRAINT lineage_edges_from FOREIGN KEY (tenant_id, from_node) REFERENCES lineage_nodes ON DELETE CASCADE,
    CONSTRAINT lineage_edges_to FOREIGN KEY (tenant_id, to_node) REFERENCES lineage_nodes ON DELETE CASCADE
);
-- Upstream layers: the edges into a frontier.
CREATE INDEX lineage_edges_upstream ON lineage_edges (tenant_id, to_node, from_node);
SELECT cp_tenant_rls('lineage_edges');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'lineage_edges');

-- OpenLineage events as received (RunEvent, DatasetEvent, JobEvent), for replay and audit; the graph is
-- what they say.
CREATE TABLE openlineage_events (
    tenant_id   text        NOT NULL,
    received_id uuid        NOT NULL,
    event_kind  text        NOT NULL CHECK (event_kind IN ('run', 'dataset', 'job')),
    event_type  text,
    event_time  timestamptz NOT NULL,
    run_id      uuid,
    job         text,
    producer    text        NOT NULL,
    event       jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT openlineage_events_pkey PRIMARY KEY (tenant_id, received_id)
);
CREATE INDEX openlineage_events_by_run ON openlineage_events (tenant_id, run_id, event_time) WHERE run_id IS NOT NULL;
SELECT cp_tenant_rls('openlineage_events');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'openlineage_events');
