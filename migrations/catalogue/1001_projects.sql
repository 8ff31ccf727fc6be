-- Catalogue: projects and their environments.
-- Every table leads its keys with tenant_id and forces row-level security (cp_tenant_rls). Platform
-- operators read through `app.platform` (the `platform_read` policies); only tenants write their rows.

-- Metadata and name search index with the tenant leading (both extensions are trusted: the owner may create them).
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE projects (
    tenant_id          text        NOT NULL,
    project_id         uuid        NOT NULL,
    slug               text        NOT NULL,
    name               text        NOT NULL,
    description        text        NOT NULL DEFAULT '',
    -- An identity Principal id; identity resolves it.
    owner_principal_id uuid,
    status             text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Archived')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    archived_at        timestamptz,
    CONSTRAINT projects_pkey PRIMARY KEY (tenant_id, project_id),
    CONSTRAINT projects_slug_key UNIQUE (tenant_id, slug),
    CONSTRAINT projects_slug CHECK (slug ~ '^[a-z][a-z0-9-]{1,61}[a-z0-9]$'),
    CONSTRAINT projects_archived CHECK ((status = 'Archived') = (archived_at IS NOT NULL))
);
SELECT cp_tenant_rls('projects');
CREATE POLICY platform_read ON projects FOR SELECT USING (current_setting('app.platform', true) = 'on');
-- Projects are archived, never deleted (the seed keeps them for their lifetime and then the archive).
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'projects');

-- An archived project is read-only: nothing but its own archive row may change, and it never comes back.
CREATE FUNCTION projects_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'Archived' THEN
        RAISE EXCEPTION 'project % is archived and read-only', OLD.slug
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_read_only';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER projects_read_only BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION projects_guard();

-- Whether a project accepts changes (used by the triggers of everything inside a project).
CREATE FUNCTION catalogue_project_writable(t text, p uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM projects WHERE tenant_id = t AND project_id = p AND status = 'Archived') THEN
        RAISE EXCEPTION 'project % is archived and read-only', p
            USING ERRCODE = 'check_violation', CONSTRAINT = 'projects_read_only';
    END IF;
END
$$;

CREATE TABLE environments (
    tenant_id   text        NOT NULL,
    project_id  uuid        NOT NULL,
    name        text        NOT NULL CHECK (name IN ('dev', 'test', 'staging', 'prod')),
    config      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    -- Bumped by every applied change; a pending prod change records the version it was asked against.
    version     integer     NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT environments_pkey PRIMARY KEY (tenant_id, project_id, name),
    CONSTRAINT environments_project_fkey FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, project_id)
);
SELECT cp_tenant_rls('environments');
CREATE POLICY platform_read ON environments FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'environments');

-- Changes to an environment: applied at once outside prod; for prod, pending until governance decides.
CREATE TABLE environment_changes (
    tenant_id     text        NOT NULL,
    change_id     uuid        NOT NULL,
    project_id    uuid        NOT NULL,
    environment   text        NOT NULL,
    config        jsonb       NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    reason        text        NOT NULL DEFAULT '',
    requested_by  text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('Pending', 'Applied', 'Rejected', 'Expired', 'Cancelled')),
    -- The environment's version the change was asked against, and the one it produced when applied.
    base_version  integer     NOT NULL,
    applied_version integer,
    decided_by    text,
    decision_note text,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    CONSTRAINT environment_changes_pkey PRIMARY KEY (tenant_id, change_id),
    CONSTRAINT environment_changes_env_fkey FOREIGN KEY (tenant_id, project_id, environment)
        REFERENCES environments (tenant_id, project_id, name)
);
-- One pending prod change per project at a time: a second request waits for the first to be decided.
-- (Changes elsewhere are recorded and applied in one transaction.)
CREATE UNIQUE INDEX environment_changes_one_pending ON environment_changes (tenant_id, project_id, environment)
    WHERE status = 'Pending' AND environment = 'prod';
CREATE INDEX environment_changes_by_env ON environment_changes (tenant_id, project_id, environment, requested_at DESC);
SELECT cp_tenant_rls('environment_changes');
CREATE POLICY platform_read ON environment_changes FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'environment_changes');

-- Decided changes are history: they never change again.
CREATE FUNCTION environment_changes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'Pending' THEN
        RAISE EXCEPTION 'environment change % is % and final', OLD.change_id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'environment_changes_final';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER environment_changes_final BEFORE UPDATE ON environment_changes
    FOR EACH ROW EXECUTE FUNCTION environment_changes_guard();

-- Rows inside an archived project cannot be inserted, changed or deleted (the API says so first; this holds
-- for any writer). A table may name columns its triggers leave alone (TG_ARGV: derived columns such as a
-- module's `level`, which a dependency added elsewhere may raise).
CREATE FUNCTION catalogue_in_writable_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM catalogue_project_writable(OLD.tenant_id, OLD.project_id);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_NARGS > 0
       AND (to_jsonb(NEW) - TG_ARGV::text[]) = (to_jsonb(OLD) - TG_ARGV::text[]) THEN
        RETURN NEW;
    END IF;
    PERFORM catalogue_project_writable(NEW.tenant_id, NEW.project_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER environments_in_writable_project BEFORE INSERT OR UPDATE OR DELETE ON environments
    FOR EACH ROW EXECUTE FUNCTION catalogue_in_writable_project();
