-- Governance: model policies — which model providers and models agents may use, per tenant, optionally
-- narrowed to a project and/or a skill, with limits. Versioned by name like Cedar policies: Draft ->
-- Published -> Deprecated, a published version immutable (a change is a new version).

CREATE TABLE model_policies (
    tenant_id              text        NOT NULL,
    model_policy_id        uuid        NOT NULL,
    name                   text        NOT NULL,
    version                integer     NOT NULL CHECK (version >= 1),
    -- Scope: NULL = every project / every skill.
    project_id             uuid,
    skill_key              text,
    -- [{ "provider": "openai", "models": ["gpt-4o", "gpt-4o-mini"] }]; "*" in models allows every model.
    allowed                jsonb       NOT NULL CHECK (jsonb_typeof(allowed) = 'array'),
    max_tokens_per_task    integer     CHECK (max_tokens_per_task > 0),
    max_cost_per_day_cents bigint      CHECK (max_cost_per_day_cents >= 0),
    status                 text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Published', 'Deprecated')),
    created_by             text        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    published_at           timestamptz,
    deprecated_at          timestamptz,
    CONSTRAINT model_policies_pkey PRIMARY KEY (tenant_id, model_policy_id),
    CONSTRAINT model_policies_name_version_key UNIQUE (tenant_id, name, version),
    CONSTRAINT model_policies_name CHECK (name ~ '^[a-z][a-z0-9._-]{0,99}$'),
    CONSTRAINT model_policies_published CHECK ((status = 'Draft') = (published_at IS NULL)),
    CONSTRAINT model_policies_deprecated CHECK ((status = 'Deprecated') = (deprecated_at IS NOT NULL))
);
-- The scopes a task is evaluated against: only published versions count.
CREATE INDEX model_policies_in_force ON model_policies (tenant_id, project_id, skill_key) WHERE status = 'Published';
SELECT cp_tenant_rls('model_policies');
CREATE POLICY platform_read ON model_policies FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'model_policies');

-- The same rules as policies' (governance_versions_guard, 1001).
CREATE TRIGGER model_policies_immutable BEFORE UPDATE OR DELETE ON model_policies FOR EACH ROW
    EXECUTE FUNCTION governance_versions_guard('model_policy_id', 'model_policies_immutable', 'status',
                                              'updated_at', 'deprecated_at');
