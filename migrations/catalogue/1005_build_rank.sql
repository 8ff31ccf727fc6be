-- The dependency graph keeps a topological order instead of levels.
--
-- `level` (the longest chain below a module) made most cycle checks free, but keeping it tight meant an edge
-- from a low module to a high one raised everything above the source, up to the whole tenant (1.5–2 s for
-- 20,000 modules in the benchmark). `build_rank` is a total order with rank(b) < rank(a) for every edge
-- a -> b, kept by Pearce and Kelly's incremental algorithm ("A dynamic topological sort algorithm for
-- directed acyclic graphs", JEA 2006; `graph/store.rs`): an edge that agrees with the order costs nothing,
-- and one that does not reorders only the modules between its two ends that are connected to them.
--
-- A new module takes the next value of a sequence (shared by all tenants: ranks only compare within one),
-- so modules registered before the ones that depend on them — the usual case — never move.

CREATE SEQUENCE module_build_rank AS bigint;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SEQUENCE module_build_rank TO %I', current_setting('cp.app_role'));
END
$$;

ALTER TABLE modules ADD COLUMN build_rank bigint;
-- Existing modules keep the order their levels gave. The owner reads every tenant's rows for this one
-- statement (row-level security is forced again before the migration commits).
ALTER TABLE modules NO FORCE ROW LEVEL SECURITY;
ALTER TABLE modules DISABLE TRIGGER modules_in_writable_project;
UPDATE modules m SET build_rank = o.rank
FROM (SELECT tenant_id, module_id, row_number() OVER (ORDER BY level, created_at, module_id) AS rank FROM modules) o
WHERE m.tenant_id = o.tenant_id AND m.module_id = o.module_id;
SELECT setval('module_build_rank', coalesce(max(build_rank), 0) + 1, false) FROM modules;
ALTER TABLE modules ENABLE TRIGGER modules_in_writable_project;
ALTER TABLE modules FORCE ROW LEVEL SECURITY;

ALTER TABLE modules
    ALTER COLUMN build_rank SET DEFAULT nextval('module_build_rank'),
    ALTER COLUMN build_rank SET NOT NULL,
    -- Checked at the end of each statement, so one UPDATE can permute the ranks of a reordered region.
    ADD CONSTRAINT modules_build_rank_key UNIQUE (tenant_id, build_rank) DEFERRABLE INITIALLY IMMEDIATE;
ALTER SEQUENCE module_build_rank OWNED BY modules.build_rank;

DROP INDEX modules_by_project_level;
CREATE INDEX modules_by_project_rank ON modules (tenant_id, project_id, build_rank);
ALTER TABLE modules DROP COLUMN level;

-- `build_rank` is derived (reordered by dependencies added to other modules) and may change in an archived
-- project; nothing else there may.
DROP TRIGGER modules_in_writable_project ON modules;
CREATE TRIGGER modules_in_writable_project BEFORE INSERT OR UPDATE OR DELETE ON modules
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project('build_rank');
