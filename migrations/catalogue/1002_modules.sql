-- Catalogue: the module catalogue and its dependency graph.

CREATE TABLE modules (
    tenant_id   text        NOT NULL,
    module_id   uuid        NOT NULL,
    project_id  uuid        NOT NULL,
    name        text        NOT NULL,
    -- Semantic version (checked by the API with the semver crate).
    version     text        NOT NULL,
    kind        text        NOT NULL,
    owner       text        NOT NULL DEFAULT '',
    tags        text[]      NOT NULL DEFAULT '{}',
    -- Free-form metadata: the API takes at most 16 KiB of compact JSON; PostgreSQL prints jsonb with a space
    -- after every `,` and `:`, so the backstop here is twice that as text.
    metadata    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    -- Longest dependency chain below the module, kept so that every edge a -> b has level(a) > level(b):
    -- a cycle check can skip every module at or below the new edge's source, and `ORDER BY level` is a build order.
    level       integer     NOT NULL DEFAULT 0 CHECK (level >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT modules_pkey PRIMARY KEY (tenant_id, module_id),
    CONSTRAINT modules_name_key UNIQUE (tenant_id, project_id, name),
    CONSTRAINT modules_metadata_size CHECK (octet_length(metadata::text) <= 32768),
    CONSTRAINT modules_project_fkey FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, project_id)
);
-- Listing a tenant's modules by name (the catalogue's stable order), and a project's build order.
CREATE INDEX modules_by_name ON modules (tenant_id, name, module_id);
CREATE INDEX modules_by_project_level ON modules (tenant_id, project_id, level, name);
CREATE INDEX modules_by_kind ON modules (tenant_id, kind, name, module_id);
-- Containment (`metadata @> …`), tags and name search, each with the tenant leading (btree_gin).
CREATE INDEX modules_metadata ON modules USING gin (tenant_id, metadata jsonb_path_ops);
CREATE INDEX modules_tags ON modules USING gin (tenant_id, tags);
CREATE INDEX modules_name_trgm ON modules USING gin (tenant_id, name gin_trgm_ops);
SELECT cp_tenant_rls('modules');
CREATE POLICY platform_read ON modules FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'modules');
-- `level` is derived (raised by dependencies added to other modules) and may change in an archived project.
CREATE TRIGGER modules_in_writable_project BEFORE INSERT OR UPDATE OR DELETE ON modules
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project('level');

-- Every object path some module's metadata has had (`build.tool`), so a filter on a path no module has is
-- refused as a likely typo instead of silently matching nothing.
CREATE TABLE module_metadata_paths (
    tenant_id text NOT NULL,
    path      text NOT NULL,
    CONSTRAINT module_metadata_paths_pkey PRIMARY KEY (tenant_id, path)
);
SELECT cp_tenant_rls('module_metadata_paths');
SELECT cp_grant_app('SELECT, INSERT', 'module_metadata_paths');

-- Edges module -> module ("depends on"), within a tenant, with the semver range the dependent accepts.
-- Inserts are serialized per tenant (an advisory lock) so that no two concurrent edges close a cycle.
CREATE TABLE dependencies (
    tenant_id          text        NOT NULL,
    from_module        uuid        NOT NULL,
    to_module          uuid        NOT NULL,
    version_constraint text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dependencies_pkey PRIMARY KEY (tenant_id, from_module, to_module),
    CONSTRAINT dependencies_no_self CHECK (from_module <> to_module),
    CONSTRAINT dependencies_from_fkey FOREIGN KEY (tenant_id, from_module) REFERENCES modules (tenant_id, module_id),
    CONSTRAINT dependencies_to_fkey FOREIGN KEY (tenant_id, to_module) REFERENCES modules (tenant_id, module_id)
);
-- Dependents (reverse edges) and the level invariant's checks.
CREATE INDEX dependencies_to ON dependencies (tenant_id, to_module, from_module);
SELECT cp_tenant_rls('dependencies');
CREATE POLICY platform_read ON dependencies FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'dependencies');

-- An edge belongs to its dependent (`from`): it cannot be added to or removed from an archived project's
-- module. (Depending on a module of an archived project is allowed: it is still there to build against.)
CREATE FUNCTION dependencies_in_writable_project() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r dependencies;
    p uuid;
BEGIN
    r := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    SELECT project_id INTO p FROM modules WHERE tenant_id = r.tenant_id AND module_id = r.from_module;
    IF p IS NOT NULL THEN
        PERFORM catalogue_project_writable(r.tenant_id, p);
    END IF;
    RETURN r;
END
$$;
CREATE TRIGGER dependencies_in_writable_project BEFORE INSERT OR DELETE ON dependencies
    FOR EACH ROW EXECUTE FUNCTION dependencies_in_writable_project();
