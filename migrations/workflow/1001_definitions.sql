-- Workflow: versioned workflow definitions, and the skills a definition may call (projected from
-- catalogue's SkillDefinition… events). Every table leads its keys with tenant_id and forces row-level
-- security (cp_tenant_rls).

-- A definition version is published whole and never changes after (API and trigger): a change is a new
-- version. Platform definitions (the registry shipped in the repository, loaded by `workflow provision`
-- and at start) have the tenant `platform` and are read by every tenant.
CREATE TABLE workflow_definitions (
    tenant_id     text        NOT NULL,
    key           text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    -- The validated steps (definitions::Spec), and the sha256 of their canonical JSON: a registry load
    -- compares it, so loading the same registry again changes nothing and a changed one is refused.
    spec          jsonb       NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
    content_hash  text        NOT NULL CHECK (content_hash ~ '^sha256:[0-9a-f]{64}$'),
    status        text        NOT NULL DEFAULT 'Published' CHECK (status IN ('Published', 'Deprecated')),
    published_at  timestamptz NOT NULL DEFAULT now(),
    published_by  text,
    deprecated_at timestamptz,
    CONSTRAINT workflow_definitions_pkey PRIMARY KEY (tenant_id, key, version),
    CONSTRAINT workflow_definitions_key CHECK (key ~ '^[a-z][a-z0-9-]{1,61}[a-z0-9]$'),
    CONSTRAINT workflow_definitions_deprecated CHECK ((status = 'Deprecated') = (deprecated_at IS NOT NULL))
);
SELECT cp_tenant_rls('workflow_definitions');
CREATE POLICY platform_shared ON workflow_definitions FOR SELECT USING (tenant_id = 'platform');
CREATE POLICY platform_read ON workflow_definitions FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'workflow_definitions');

-- Published versions are immutable: only Published -> Deprecated (with its time) may change.
CREATE FUNCTION workflow_definitions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.tenant_id, NEW.key, NEW.version, NEW.name, NEW.description, NEW.spec, NEW.content_hash,
        NEW.published_at, NEW.published_by)
       IS DISTINCT FROM (OLD.tenant_id, OLD.key, OLD.version, OLD.name, OLD.description, OLD.spec,
        OLD.content_hash, OLD.published_at, OLD.published_by)
       OR (OLD.status = 'Deprecated') THEN
        RAISE EXCEPTION 'workflow definition %@% is published and immutable', OLD.key, OLD.version
            USING ERRCODE = 'check_violation', CONSTRAINT = 'workflow_definitions_immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER workflow_definitions_immutable BEFORE UPDATE ON workflow_definitions
    FOR EACH ROW EXECUTE FUNCTION workflow_definitions_guard();

-- The skills a definition's agent tasks may name: each published skill version catalogue announced, for
-- its tenant (or `platform`), until deprecated. Written by the skills consumer only.
CREATE TABLE workflow_skills (
    tenant_id     text        NOT NULL,
    skill_key     text        NOT NULL,
    version       text        NOT NULL,
    deprecated    boolean     NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_skills_pkey PRIMARY KEY (tenant_id, skill_key, version)
);
SELECT cp_tenant_rls('workflow_skills');
CREATE POLICY platform_shared ON workflow_skills FOR SELECT USING (tenant_id = 'platform');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'workflow_skills');
