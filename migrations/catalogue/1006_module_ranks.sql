-- The topological order moves out of `modules` into a narrow table of its own.
--
-- A reorder (an edge against the order, `graph::place`) rewrites the ranks of every module it moves. In
-- `modules` that rewrote whole rows: `build_rank` is indexed, so no update was HOT, and each moved module
-- inserted a new entry into all nine of the table's indexes (three of them GIN: metadata, tags, name
-- trigrams) and ran the writable-project trigger, which compares the old and new row as jsonb. Moving 1,328
-- modules took about 70 ms (BENCHMARKS.md). Here a move is one narrow row and two index entries, and the
-- cycle search reads ranks from a small index instead of the wide table.

CREATE TABLE module_ranks (
    tenant_id  text   NOT NULL,
    module_id  uuid   NOT NULL,
    -- rank(b) < rank(a) for every edge a -> b; unique in the tenant, checked at the end of each statement so
    -- one UPDATE can permute a reordered region's ranks.
    build_rank bigint NOT NULL DEFAULT nextval('module_build_rank'),
    -- The rank rides in the key's index, so the cycle search reads it without visiting the table.
    CONSTRAINT module_ranks_pkey PRIMARY KEY (tenant_id, module_id) INCLUDE (build_rank),
    CONSTRAINT module_ranks_rank_key UNIQUE (tenant_id, build_rank) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT module_ranks_module_fkey FOREIGN KEY (tenant_id, module_id)
        REFERENCES modules (tenant_id, module_id) ON DELETE CASCADE
);

-- Every module keeps its rank. The owner reads every tenant's rows for this one statement (row-level
-- security is forced again before the migration commits, and on the new table right after).
ALTER TABLE modules NO FORCE ROW LEVEL SECURITY;
INSERT INTO module_ranks (tenant_id, module_id, build_rank) SELECT tenant_id, module_id, build_rank FROM modules;
ALTER TABLE modules FORCE ROW LEVEL SECURITY;

SELECT cp_tenant_rls('module_ranks');
CREATE POLICY platform_read ON module_ranks FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'module_ranks');

ALTER SEQUENCE module_build_rank OWNED BY module_ranks.build_rank;
ALTER TABLE modules DROP COLUMN build_rank;

-- Nothing derived is left in `modules`: every change to one needs a writable project. (The order may still
-- change in an archived project: `module_ranks` has no such trigger.)
DROP TRIGGER modules_in_writable_project ON modules;
CREATE TRIGGER modules_in_writable_project BEFORE INSERT OR UPDATE OR DELETE ON modules
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project();
