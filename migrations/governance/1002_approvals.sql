-- Governance: approval requests and their votes, and who holds which role (identity's RoleBound /
-- RoleUnbound events, projected here: an approver must hold one of the roles a request names).
-- Requests are kept for their lifetime and seven years after (nothing deletes them).

CREATE TABLE approvals (
    tenant_id      text        NOT NULL,
    approval_id    uuid        NOT NULL,
    -- What it is about: `<domain>.<Thing>` and the thing's id in that domain.
    subject_kind   text        NOT NULL CHECK (subject_kind ~ '^[a-z][a-z0-9-]*\.[A-Za-z][A-Za-z0-9]*$'),
    subject_id     text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 200),
    project_id     text,
    summary        text        NOT NULL,
    details        jsonb       NOT NULL DEFAULT '{}',
    approver_roles text[]      NOT NULL CHECK (cardinality(approver_roles) BETWEEN 1 AND 20),
    quorum         integer     NOT NULL CHECK (quorum BETWEEN 1 AND 20),
    requested_by   text        NOT NULL,
    status         text        NOT NULL DEFAULT 'Pending'
                   CHECK (status IN ('Pending', 'Approved', 'Rejected', 'Expired', 'Cancelled')),
    expires_at     timestamptz NOT NULL,
    -- The request's trace and correlation ids and the command's event id: the answer carries them back.
    trace_id       text        NOT NULL,
    correlation_id text        NOT NULL,
    request_event  text,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    decision_note  text,
    CONSTRAINT approvals_pkey PRIMARY KEY (tenant_id, approval_id),
    CONSTRAINT approvals_decided CHECK ((status = 'Pending') = (decided_at IS NULL))
);
-- One open request per subject: a repeated request (a command re-sent) finds the open one.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (tenant_id, subject_kind, subject_id) WHERE status = 'Pending';
CREATE INDEX approvals_by_time ON approvals (tenant_id, requested_at DESC, approval_id DESC);
CREATE INDEX approvals_expiring ON approvals (expires_at) WHERE status = 'Pending';
SELECT cp_tenant_rls('approvals');
CREATE POLICY platform_read ON approvals FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'approvals');

-- A decided request is final; nothing but its status, decision time and note ever changes.
CREATE FUNCTION approvals_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable constant text[] := ARRAY['status', 'decided_at', 'decision_note'];
BEGIN
    IF OLD.status <> 'Pending' OR (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable) THEN
        RAISE EXCEPTION 'approval % is % and final', OLD.approval_id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'approvals_final';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER approvals_final BEFORE UPDATE ON approvals FOR EACH ROW EXECUTE FUNCTION approvals_guard();

CREATE TABLE approval_votes (
    tenant_id   text        NOT NULL,
    approval_id uuid        NOT NULL,
    principal   text        NOT NULL,
    vote        text        NOT NULL CHECK (vote IN ('Approve', 'Reject')),
    -- The approver roles the voter held when voting.
    as_roles    text[]      NOT NULL,
    note        text,
    voted_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_votes_pkey PRIMARY KEY (tenant_id, approval_id, principal),
    CONSTRAINT approval_votes_approval_fkey FOREIGN KEY (tenant_id, approval_id) REFERENCES approvals (tenant_id, approval_id)
);
SELECT cp_tenant_rls('approval_votes');
CREATE POLICY platform_read ON approval_votes FOR SELECT USING (current_setting('app.platform', true) = 'on');
SELECT cp_grant_app('SELECT, INSERT', 'approval_votes');

-- Identity's role bindings, as its events tell them (the latest event per binding wins).
CREATE TABLE principal_roles (
    tenant_id  text        NOT NULL,
    principal  text        NOT NULL,
    role_key   text        NOT NULL,
    bound      boolean     NOT NULL,
    changed_at timestamptz NOT NULL,
    CONSTRAINT principal_roles_pkey PRIMARY KEY (tenant_id, principal, role_key)
);
SELECT cp_tenant_rls('principal_roles');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'principal_roles');

-- The expiry worker's view across tenants: pending requests past their expiry, oldest first.
CREATE FUNCTION governance_expired_approvals(batch integer)
RETURNS TABLE (tenant_id text, approval_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    was_platform text := current_setting('app.platform', true);
BEGIN
    PERFORM set_config('app.platform', 'on', true);
    RETURN QUERY SELECT a.tenant_id, a.approval_id FROM approvals a
        WHERE a.status = 'Pending' AND a.expires_at <= now()
        ORDER BY a.expires_at LIMIT batch;
    PERFORM set_config('app.platform', coalesce(was_platform, ''), true);
END
$$;
REVOKE ALL ON FUNCTION governance_expired_approvals(integer) FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION governance_expired_approvals(integer) TO %I',
                   current_setting('cp.app_role'));
END $$;
