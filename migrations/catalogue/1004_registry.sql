-- Catalogue: the agent and skill registries.
-- A definition is versioned by (tenant_id, key, semantic version) and moves Draft -> Published -> Deprecated.
-- Drafts are editable; a published version is immutable except for its deprecation, and a deprecated one is
-- final (the API says so first with CONFLICT; the `*_immutable` triggers hold for any writer).
-- Platform definitions are filed under the reserved tenant `platform`: operators write them through a
-- transaction for that tenant (the standard tenant policy), and every tenant reads their published and
-- deprecated versions (`platform_definitions`), never their drafts.

-- Published/Deprecated rows keep every column except the status change itself; nothing but a draft is deleted,
-- and no row changes its tenant, key (the column TG_ARGV[0] names) or version.
CREATE FUNCTION registry_definitions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable constant text[] := ARRAY['status', 'updated_at', 'deprecated_at'];
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'Draft' THEN
            RAISE EXCEPTION '% %@% is % and cannot be deleted', TG_TABLE_NAME, to_jsonb(OLD) ->> TG_ARGV[0],
                OLD.version, OLD.status
                USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_immutable';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'Deprecated'
       OR (OLD.status = 'Published' AND (NEW.status <> 'Deprecated'
           OR (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable)))
       OR (OLD.status = 'Draft' AND NEW.status = 'Deprecated')
       OR (NEW.tenant_id, NEW.version, to_jsonb(NEW) ->> TG_ARGV[0])
          IS DISTINCT FROM (OLD.tenant_id, OLD.version, to_jsonb(OLD) ->> TG_ARGV[0]) THEN
        RAISE EXCEPTION '% %@% is % and immutable', TG_TABLE_NAME, to_jsonb(OLD) ->> TG_ARGV[0], OLD.version,
            OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_immutable';
    END IF;
    RETURN NEW;
END
$$;

CREATE TABLE skill_definitions (
    tenant_id     text        NOT NULL,
    skill_key     text        NOT NULL,
    -- Semantic version without build metadata (checked by the API with the semver crate).
    version       text        NOT NULL,
    -- Sortable form of the version (zero-padded numbers, pre-releases before their release), for listings.
    version_order text        COLLATE "C" NOT NULL,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    -- JSON Schema documents (meta-validated by the API), at most 64 KiB each as JSON text.
    input_schema  jsonb       NOT NULL,
    output_schema jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Published', 'Deprecated')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    deprecated_at timestamptz,
    CONSTRAINT skill_definitions_pkey PRIMARY KEY (tenant_id, skill_key, version),
    CONSTRAINT skill_definitions_key CHECK (skill_key ~ '^[a-z][a-z0-9._-]{0,63}$'),
    CONSTRAINT skill_definitions_schemas CHECK (
        jsonb_typeof(input_schema) IN ('object', 'boolean') AND jsonb_typeof(output_schema) IN ('object', 'boolean')
        AND octet_length(input_schema::text) <= 131072 AND octet_length(output_schema::text) <= 131072),
    CONSTRAINT skill_definitions_published CHECK ((status = 'Draft') = (published_at IS NULL)),
    CONSTRAINT skill_definitions_deprecated CHECK ((status = 'Deprecated') = (deprecated_at IS NOT NULL))
);
-- Listings in (key, version) order.
CREATE INDEX skill_definitions_by_order ON skill_definitions (tenant_id, skill_key, version_order);
SELECT cp_tenant_rls('skill_definitions');
CREATE POLICY platform_definitions ON skill_definitions FOR SELECT
    USING (tenant_id = 'platform' AND status <> 'Draft');
CREATE POLICY platform_read ON skill_definitions FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'skill_definitions');
CREATE TRIGGER skill_definitions_immutable BEFORE UPDATE OR DELETE ON skill_definitions
    FOR EACH ROW EXECUTE FUNCTION registry_definitions_guard('skill_key');

CREATE TABLE agent_definitions (
    tenant_id          text        NOT NULL,
    agent_key          text        NOT NULL,
    version            text        NOT NULL,
    version_order      text        COLLATE "C" NOT NULL,
    name               text        NOT NULL,
    description        text        NOT NULL DEFAULT '',
    capabilities       text[]      NOT NULL DEFAULT '{}',
    -- [{skillKey, versionReq}] (a semver range each); publication adds the resolved
    -- {resolvedVersion, platform} of each, the newest published version in range then.
    skills             jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(skills) = 'array'),
    -- {providers, models, minContextTokens, maxCostPerTaskUsd, features} (typed and checked by the API).
    model_requirements jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(model_requirements) = 'object'),
    status             text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Published', 'Deprecated')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    published_at       timestamptz,
    deprecated_at      timestamptz,
    CONSTRAINT agent_definitions_pkey PRIMARY KEY (tenant_id, agent_key, version),
    CONSTRAINT agent_definitions_key CHECK (agent_key ~ '^[a-z][a-z0-9._-]{0,63}$'),
    CONSTRAINT agent_definitions_size CHECK (octet_length(skills::text) + octet_length(model_requirements::text) <= 131072),
    CONSTRAINT agent_definitions_published CHECK ((status = 'Draft') = (published_at IS NULL)),
    CONSTRAINT agent_definitions_deprecated CHECK ((status = 'Deprecated') = (deprecated_at IS NOT NULL))
);
CREATE INDEX agent_definitions_by_order ON agent_definitions (tenant_id, agent_key, version_order);
SELECT cp_tenant_rls('agent_definitions');
CREATE POLICY platform_definitions ON agent_definitions FOR SELECT
    USING (tenant_id = 'platform' AND status <> 'Draft');
CREATE POLICY platform_read ON agent_definitions FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'agent_definitions');
CREATE TRIGGER agent_definitions_immutable BEFORE UPDATE OR DELETE ON agent_definitions
    FOR EACH ROW EXECUTE FUNCTION registry_definitions_guard('agent_key');
