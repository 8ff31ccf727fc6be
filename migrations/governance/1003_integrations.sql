-- Governance: integration connections (git hosting, CI, chat, cloud). Secrets only by reference: a
-- connection holds `configRef`s (`env:`, `file:`, Azure Key Vault and HashiCorp Vault references), never a
-- value; the API refuses settings that look like secrets.

CREATE TABLE integration_connections (
    tenant_id      text        NOT NULL,
    connection_id  uuid        NOT NULL,
    name           text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('GitHosting', 'Ci', 'Chat', 'Cloud', 'Other')),
    provider       text        NOT NULL,
    settings       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'
                                                            AND octet_length(settings::text) <= 16384),
    -- { "<secret name>": "<configRef>" }
    secret_refs    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secret_refs) = 'object'),
    status         text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Disabled')),
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_tested_at timestamptz,
    last_test_ok   boolean,
    CONSTRAINT integration_connections_pkey PRIMARY KEY (tenant_id, connection_id),
    CONSTRAINT integration_connections_name_key UNIQUE (tenant_id, name),
    CONSTRAINT integration_connections_name CHECK (name ~ '^[a-z][a-z0-9-]{1,62}$')
);
SELECT cp_tenant_rls('integration_connections');
CREATE POLICY platform_read ON integration_connections FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'integration_connections');
