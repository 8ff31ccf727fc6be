-- Fencing tokens for leases (kernel::leases): Redis holds who holds a resource, for a time; this table
-- issues the token each new lease carries — a counter per (tenant, resource) that only grows — so a holder
-- whose lease was lost (expired, flushed with Redis) and taken by another is refused when it writes with
-- its older token.
CREATE TABLE fencing_tokens (
    tenant_id  text        NOT NULL,
    resource   text        NOT NULL,
    token      bigint      NOT NULL CHECK (token >= 1),
    holder     text        NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fencing_tokens_pkey PRIMARY KEY (tenant_id, resource),
    CONSTRAINT fencing_tokens_resource CHECK (length(resource) BETWEEN 1 AND 200)
);
SELECT cp_tenant_rls('fencing_tokens');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'fencing_tokens');
