-- Tenancy: tenants, editions, subscriptions, feature flags, quota definitions and balances.
-- Tenant-scoped tables lead every key with tenant_id and force row-level security (cp_tenant_rls).
-- Platform operators act through `app.platform` on the tables they manage; editions and flag definitions are
-- platform-level catalogue rows: readable by every tenant, writable only by operators.

CREATE TABLE editions (
    edition_id     text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    name           text        NOT NULL,
    status         text        NOT NULL DEFAULT 'Draft' CHECK (status IN ('Draft', 'Published', 'Retired')),
    feature_set    text[]      NOT NULL DEFAULT '{}',
    -- quota key -> limit per period; every limit non-negative (checked below and in the API).
    quota_template jsonb       NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    CONSTRAINT editions_pkey PRIMARY KEY (edition_id, version),
    CONSTRAINT editions_quota_template_object CHECK (jsonb_typeof(quota_template) = 'object')
);

-- A published edition is immutable: only Published -> Retired may change it, and nothing deletes it.
CREATE FUNCTION editions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'Draft' THEN
            RAISE EXCEPTION 'edition %/% is % and cannot be deleted', OLD.edition_id, OLD.version, OLD.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'editions_immutable';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'Retired'
       OR (OLD.status = 'Published' AND (NEW.status <> 'Retired'
           OR (NEW.name, NEW.feature_set, NEW.quota_template) IS DISTINCT FROM
              (OLD.name, OLD.feature_set, OLD.quota_template))) THEN
        RAISE EXCEPTION 'edition %/% is % and immutable', OLD.edition_id, OLD.version, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'editions_immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER editions_immutable BEFORE UPDATE OR DELETE ON editions
    FOR EACH ROW EXECUTE FUNCTION editions_guard();

ALTER TABLE editions ENABLE ROW LEVEL SECURITY;
ALTER TABLE editions FORCE ROW LEVEL SECURITY;
CREATE POLICY catalogue_read ON editions FOR SELECT USING (true);
CREATE POLICY platform_operator ON editions USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'editions');

CREATE TABLE tenants (
    tenant_id       text        NOT NULL,
    display_name    text        NOT NULL,
    region          text        NOT NULL,
    status          text        NOT NULL DEFAULT 'Provisioning'
                                CHECK (status IN ('Provisioning', 'Active', 'Suspended', 'Retired')),
    edition_id      text        NOT NULL,
    isolation_model text        NOT NULL CHECK (isolation_model IN ('shared', 'dedicated')),
    legal_hold      boolean     NOT NULL DEFAULT false,
    status_reason   text,
    provisioned_at  timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_slug CHECK (tenant_id ~ '^[a-z][a-z0-9-]{1,61}[a-z0-9]$')
);
SELECT cp_tenant_rls('tenants');
CREATE POLICY platform_operator ON tenants USING (current_setting('app.platform', true) = 'on');
-- Tenants are retired, never deleted (legal hold, audit).
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'tenants');

CREATE TABLE subscriptions (
    tenant_id       text        NOT NULL REFERENCES tenants (tenant_id),
    subscription_id uuid        NOT NULL,
    edition_id      text        NOT NULL,
    edition_version integer     NOT NULL,
    status          text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Ended')),
    starts_at       timestamptz NOT NULL DEFAULT now(),
    ends_at         timestamptz,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (tenant_id, subscription_id),
    CONSTRAINT subscriptions_edition_fkey FOREIGN KEY (edition_id, edition_version)
        REFERENCES editions (edition_id, version)
);
-- At most one active subscription per tenant.
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions (tenant_id) WHERE status = 'Active';
-- "Is this edition in use?" when an operator retires it.
CREATE INDEX subscriptions_by_edition ON subscriptions (edition_id, edition_version) WHERE status = 'Active';
SELECT cp_tenant_rls('subscriptions');
CREATE POLICY platform_operator ON subscriptions USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'subscriptions');

CREATE TABLE feature_flags (
    flag_key        text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    -- Kill switch: off means off for everybody.
    enabled         boolean     NOT NULL DEFAULT false,
    rollout_percent integer     NOT NULL DEFAULT 0 CHECK (rollout_percent BETWEEN 0 AND 100),
    -- Empty means every edition.
    editions        text[]      NOT NULL DEFAULT '{}',
    allow_tenants   text[]      NOT NULL DEFAULT '{}',
    deny_tenants    text[]      NOT NULL DEFAULT '{}',
    version         integer     NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feature_flags_pkey PRIMARY KEY (flag_key)
);
ALTER TABLE feature_flags ENABLE ROW LEVEL SECURITY;
ALTER TABLE feature_flags FORCE ROW LEVEL SECURITY;
CREATE POLICY catalogue_read ON feature_flags FOR SELECT USING (true);
CREATE POLICY platform_operator ON feature_flags USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'feature_flags');

CREATE TABLE quota_definitions (
    tenant_id   text        NOT NULL REFERENCES tenants (tenant_id),
    quota_key   text        NOT NULL,
    limit_value bigint      NOT NULL CHECK (limit_value >= 0),
    period      text        NOT NULL CHECK (period IN ('Day', 'Month', 'Lifetime')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quota_definitions_pkey PRIMARY KEY (tenant_id, quota_key)
);
SELECT cp_tenant_rls('quota_definitions');
CREATE POLICY platform_operator ON quota_definitions USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'quota_definitions');

-- The system of record for consumption; Redis counters are rebuilt from here.
CREATE TABLE quota_balances (
    tenant_id    text        NOT NULL,
    quota_key    text        NOT NULL,
    period_start timestamptz NOT NULL,
    used         bigint      NOT NULL DEFAULT 0 CHECK (used >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quota_balances_pkey PRIMARY KEY (tenant_id, quota_key, period_start),
    CONSTRAINT quota_balances_definition_fkey FOREIGN KEY (tenant_id, quota_key)
        REFERENCES quota_definitions (tenant_id, quota_key)
);
SELECT cp_tenant_rls('quota_balances');
CREATE POLICY platform_operator ON quota_balances USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'quota_balances');
