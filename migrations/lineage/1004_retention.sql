-- Lineage: retention per artifact type. A tenant's policy keeps versions of an artifact type `keep_days`
-- after they were recorded; then the retention worker deletes them — the artifact's published version
-- excepted — with their bodies, never while the tenant is under legal hold (tenancy's
-- TenantLegalHoldChanged, projected into legal_holds). A body shared by versions goes with the last of
-- them. Deleting metadata and queueing its blobs happen in one transaction (body_deletions); the blobs
-- are deleted after it commits, and a deletion that fails stays queued for the next pass, so no blob
-- outlives its metadata for long and none is deleted while metadata points at it.

CREATE TABLE artifact_retention (
    tenant_id     text        NOT NULL,
    artifact_type text        NOT NULL CHECK (artifact_type ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    keep_days     integer     NOT NULL CHECK (keep_days BETWEEN 1 AND 36500),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT artifact_retention_pkey PRIMARY KEY (tenant_id, artifact_type)
);
SELECT cp_tenant_rls('artifact_retention');
CREATE POLICY retention_read ON artifact_retention FOR SELECT USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'artifact_retention');

CREATE TABLE legal_holds (
    tenant_id  text        NOT NULL,
    on_hold    boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT legal_holds_pkey PRIMARY KEY (tenant_id)
);
SELECT cp_tenant_rls('legal_holds');
CREATE POLICY retention_read ON legal_holds FOR SELECT USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'legal_holds');

-- Blobs whose metadata is gone, waiting to be deleted from blob storage.
CREATE TABLE body_deletions (
    tenant_id   text        NOT NULL,
    storage_ref text        NOT NULL,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT body_deletions_pkey PRIMARY KEY (tenant_id, storage_ref)
);
SELECT cp_tenant_rls('body_deletions');
CREATE POLICY retention_read ON body_deletions FOR SELECT USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_insert ON body_deletions FOR INSERT
    WITH CHECK (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_lock ON body_deletions FOR UPDATE
    USING (current_setting('app.system', true) = 'retention') WITH CHECK (false);
CREATE POLICY retention_delete ON body_deletions FOR DELETE
    USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'body_deletions');

-- A version retention deleted stays known by its number: it is never recorded again (its storage path
-- would be reused while its old body may still be queued for deletion or shared).
CREATE TABLE expired_versions (
    tenant_id    text        NOT NULL,
    artifact_id  text        NOT NULL,
    version      text        NOT NULL,
    content_hash text        NOT NULL,
    expired_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT expired_versions_pkey PRIMARY KEY (tenant_id, artifact_id, version)
);
SELECT cp_tenant_rls('expired_versions');
CREATE POLICY retention_read ON expired_versions FOR SELECT USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_insert ON expired_versions FOR INSERT
    WITH CHECK (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('SELECT, INSERT', 'expired_versions');

-- The retention task reads and deletes across tenants, and no more: it locks the artifacts whose versions
-- it deletes (as recording a version or claiming a body does, so neither races it), but a row lock is all
-- its UPDATE policies allow (WITH CHECK false: no row can be written through them).
CREATE POLICY retention_read ON artifacts FOR SELECT USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_lock ON artifacts FOR UPDATE
    USING (current_setting('app.system', true) = 'retention') WITH CHECK (false);
CREATE POLICY retention_read ON artifact_versions FOR SELECT USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_lock ON artifact_versions FOR UPDATE
    USING (current_setting('app.system', true) = 'retention') WITH CHECK (false);
CREATE POLICY retention_delete ON artifact_versions FOR DELETE
    USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_read ON artifact_bodies FOR SELECT USING (current_setting('app.system', true) = 'retention');
CREATE POLICY retention_delete ON artifact_bodies FOR DELETE
    USING (current_setting('app.system', true) = 'retention');
SELECT cp_grant_app('DELETE', 'artifact_versions');

-- 1002's sweeper policy let the sweeper write any row; it only reads, locks and deletes stale claims.
DROP POLICY sweeper ON artifact_bodies;
CREATE POLICY sweeper_read ON artifact_bodies FOR SELECT USING (current_setting('app.system', true) = 'body-sweeper');
CREATE POLICY sweeper_lock ON artifact_bodies FOR UPDATE
    USING (current_setting('app.system', true) = 'body-sweeper') WITH CHECK (false);
CREATE POLICY sweeper_delete ON artifact_bodies FOR DELETE
    USING (current_setting('app.system', true) = 'body-sweeper');

-- As 1001, and the retention task may delete versions (the API never does).
CREATE OR REPLACE FUNCTION artifact_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('app.system', true) = 'retention' AND OLD.status <> 'Published' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'artifact versions are never deleted, but by retention (and never the published one)'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifact_versions_immutable';
    END IF;
    -- What a version is never changes: its content, its place in the order, who made it.
    IF (NEW.tenant_id, NEW.artifact_id, NEW.version, NEW.major, NEW.minor, NEW.patch, NEW.release,
        NEW.content_hash, NEW.storage_ref, NEW.produced_by_agent_id, NEW.produced_by_skill_id,
        NEW.produced_by_task_id, NEW.trace_id, NEW.source_blueprint_id, NEW.created_at, NEW.attributes)
       IS DISTINCT FROM (OLD.tenant_id, OLD.artifact_id, OLD.version, OLD.major, OLD.minor, OLD.patch, OLD.release,
        OLD.content_hash, OLD.storage_ref, OLD.produced_by_agent_id, OLD.produced_by_skill_id,
        OLD.produced_by_task_id, OLD.trace_id, OLD.source_blueprint_id, OLD.created_at, OLD.attributes) THEN
        RAISE EXCEPTION 'artifact version %@% keeps its content', OLD.artifact_id, OLD.version
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifact_versions_immutable';
    END IF;
    -- A final version changes only from Published to Superseded (its status and updated_at, nothing else).
    IF OLD.status IN ('Published', 'Superseded', 'Rejected')
       AND NOT (OLD.status = 'Published' AND NEW.status = 'Superseded'
                AND NEW.published_at IS NOT DISTINCT FROM OLD.published_at) THEN
        RAISE EXCEPTION 'artifact version %@% is % and immutable', OLD.artifact_id, OLD.version, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifact_versions_immutable';
    END IF;
    RETURN NEW;
END
$$;
