-- Identity: principals (users and service identities), roles and their permissions, role bindings, OAuth
-- clients (secrets stored only as hashes) and API tokens (stored only as SHA-256). Every table is
-- tenant-scoped with forced RLS. Platform operators are principals of the reserved tenant `platform`.

CREATE TABLE principals (
    tenant_id    text        NOT NULL,
    principal_id uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('User', 'Service')),
    display_name text        NOT NULL,
    email        text,
    status       text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Disabled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT principals_pkey PRIMARY KEY (tenant_id, principal_id)
);
CREATE UNIQUE INDEX principals_email ON principals (tenant_id, lower(email)) WHERE email IS NOT NULL;
SELECT cp_tenant_rls('principals');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'principals');

CREATE TABLE roles (
    tenant_id   text        NOT NULL,
    role_key    text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    permissions text[]      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_pkey PRIMARY KEY (tenant_id, role_key)
);
SELECT cp_tenant_rls('roles');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'roles');

CREATE TABLE role_bindings (
    tenant_id    text        NOT NULL,
    principal_id uuid        NOT NULL,
    role_key     text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_bindings_pkey PRIMARY KEY (tenant_id, principal_id, role_key),
    CONSTRAINT role_bindings_principal_fkey FOREIGN KEY (tenant_id, principal_id) REFERENCES principals,
    CONSTRAINT role_bindings_role_fkey FOREIGN KEY (tenant_id, role_key) REFERENCES roles
);
SELECT cp_tenant_rls('role_bindings');
SELECT cp_grant_app('SELECT, INSERT, DELETE', 'role_bindings');

-- client_id is `cpc_<tenant>_<random>`, so the token endpoint knows the tenant before it reads a row.
CREATE TABLE oauth_clients (
    tenant_id         text        NOT NULL,
    client_id         text        NOT NULL,
    principal_id      uuid        NOT NULL,
    secret_hash       text        NOT NULL,
    scopes            text[]      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    secret_rotated_at timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    CONSTRAINT oauth_clients_pkey PRIMARY KEY (tenant_id, client_id),
    CONSTRAINT oauth_clients_principal_fkey FOREIGN KEY (tenant_id, principal_id) REFERENCES principals
);
SELECT cp_tenant_rls('oauth_clients');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'oauth_clients');

CREATE TABLE api_tokens (
    tenant_id    text        NOT NULL,
    token_id     uuid        NOT NULL,
    principal_id uuid        NOT NULL,
    name         text        NOT NULL,
    token_hash   text        NOT NULL,
    scopes       text[]      NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_tokens_pkey PRIMARY KEY (tenant_id, token_id),
    CONSTRAINT api_tokens_principal_fkey FOREIGN KEY (tenant_id, principal_id) REFERENCES principals
);
-- Validation looks a token up by hash before it knows the tenant: only the validation path
-- (`app.system = 'token-validation'`) may read across tenants, and only this table.
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);
SELECT cp_tenant_rls('api_tokens');
CREATE POLICY token_validation ON api_tokens FOR SELECT
    USING (current_setting('app.system', true) = 'token-validation');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'api_tokens');
