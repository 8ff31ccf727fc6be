-- The topological order moves out of `modules` into a narrow table of its own.
--
-- A reorder (an edge against the order, `graph::place`) rewrites the ranks of every module it moves. In
-- `modules` that rewrote whole rows: `build_rank` is indexed, so no update was HOT, and each moved module
-- inserted a new entry into all nine of the table's indexes (three of them GIN: metadata, tags, name
-- trigrams) and ran the writable-project trigger, which compares the old and new row as jsonb. Moving 1,328
-- modules took about 70 ms (BENCHMARKS.md). Here a move rewrites one narrow row in place.

CREATE TABLE module_ranks (
    tenant_id  text   NOT NULL,
    module_id  uuid   NOT NULL,
    -- rank(b) < rank(a) for every edge a -> b, and unique in the tenant: a new module takes the next value of
    -- the sequence, and a reorder only permutes the ranks its modules held, under the tenant's graph lock
    -- (`graph::place`; the graph tests check both properties after every insert). No index holds the rank,
    -- so rewriting it is a HOT update — no index entry at all — with the room `fillfactor` leaves in each
    -- page. (With a unique index on the rank, rewriting 1,328 ranks took 40 ms; without, 12 ms.)
    build_rank bigint NOT NULL DEFAULT nextval('module_build_rank'),
    CONSTRAINT module_ranks_pkey PRIMARY KEY (tenant_id, module_id),
    CONSTRAINT module_ranks_module_fkey FOREIGN KEY (tenant_id, module_id)
        REFERENCES modules (tenant_id, module_id) ON DELETE CASCADE
) WITH (fillfactor = 50);

-- Every module keeps its rank. The owner reads every tenant's rows for this one statement (row-level
-- security is forced again before the migration commits, and on the new table right after).
ALTER TABLE modules NO FORCE ROW LEVEL SECURITY;
INSERT INTO module_ranks (tenant_id, module_id, build_rank) SELECT tenant_id, module_id, build_rank FROM modules;
ALTER TABLE modules FORCE ROW LEVEL SECURITY;

SELECT cp_tenant_rls('module_ranks');
CREATE POLICY platform_read ON module_ranks FOR SELECT USING (current_setting('app.platform', true) = 'on');
-- No DELETE: a rank row goes with its module (the cascade runs as the table's owner).
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'module_ranks');

-- Every module gets its rank row however it is inserted (the API, a bulk load, a restore): the next rank,
-- above every module registered before it. One statement per INSERT, whatever its number of rows.
CREATE FUNCTION catalogue_rank_new_modules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO module_ranks (tenant_id, module_id) SELECT tenant_id, module_id FROM new_modules;
    RETURN NULL;
END
$$;
CREATE TRIGGER modules_ranked AFTER INSERT ON modules REFERENCING NEW TABLE AS new_modules
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_rank_new_modules();

ALTER SEQUENCE module_build_rank OWNED BY module_ranks.build_rank;
ALTER TABLE modules DROP COLUMN build_rank;

-- Nothing derived is left in `modules`: every change to one needs a writable project. (The order may still
-- change in an archived project: `module_ranks` has no such trigger.)
DROP TRIGGER modules_in_writable_project ON modules;
CREATE TRIGGER modules_in_writable_project BEFORE INSERT OR UPDATE OR DELETE ON modules
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project();
