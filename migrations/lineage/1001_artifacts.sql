-- Lineage: artifacts and their versions. Every table leads its keys with tenant_id and forces row-level
-- security (cp_tenant_rls).
--
-- An artifact is a thing producers make again and again (a document, a build, a model): its id is the
-- producer's (an agent task's output names it), and it belongs to a catalogue project and module when they
-- say so. Each version (semver) is one content (`contentHash`, sha256) with who made it, where its body is
-- stored, and where it stands: Draft → Generated → Validated | Rejected → Published → Superseded. Publishing
-- a version supersedes the one published before it, in the same transaction, so an artifact has at most one
-- published version (a unique index says so). What a version is (content, precedence, producer) never
-- changes, and a published, superseded or rejected version changes only by the move Published →
-- Superseded (a trigger refuses anything else, to every role).

CREATE TABLE artifacts (
    tenant_id       text        NOT NULL,
    artifact_id     text        NOT NULL,
    artifact_type   text        NOT NULL CHECK (artifact_type ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    project_id      uuid,
    module_id       uuid,
    -- Who may read its bodies and sensitive fields: callers without lineage:read-restricted see those of
    -- confidential and restricted artifacts redacted.
    classification  text        NOT NULL DEFAULT 'internal'
                                CHECK (classification IN ('public', 'internal', 'confidential', 'restricted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT artifacts_pkey PRIMARY KEY (tenant_id, artifact_id),
    -- Letters, digits and `._:-`, up to 200: it is a path segment of every version's storage reference.
    CONSTRAINT artifacts_id CHECK (artifact_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$')
);
CREATE INDEX artifacts_by_project ON artifacts (tenant_id, project_id, artifact_id) WHERE project_id IS NOT NULL;
CREATE INDEX artifacts_by_module ON artifacts (tenant_id, module_id, artifact_id) WHERE module_id IS NOT NULL;
SELECT cp_tenant_rls('artifacts');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'artifacts');

CREATE TABLE artifact_versions (
    tenant_id           text        NOT NULL,
    artifact_id         text        NOT NULL,
    version             text        NOT NULL CHECK (length(version) BETWEEN 5 AND 100),
    -- The version's precedence, for ordering in SQL: its numbers, and whether it is a release (a
    -- pre-release of the same numbers sorts below it; pre-releases among themselves by when recorded).
    major               bigint      NOT NULL CHECK (major >= 0),
    minor               bigint      NOT NULL CHECK (minor >= 0),
    patch               bigint      NOT NULL CHECK (patch >= 0),
    release             boolean     NOT NULL,
    content_hash        text        NOT NULL CHECK (content_hash ~ '^sha256:[0-9a-f]{64}$'),
    status              text        NOT NULL CHECK (status IN ('Draft', 'Generated', 'Validated', 'Rejected',
                                                               'Published', 'Superseded')),
    -- Who made it: the agent and skill (catalogue's keys), the workflow task, the trace, the blueprint.
    produced_by_agent_id text,
    produced_by_skill_id text,
    produced_by_task_id uuid,
    trace_id            text,
    source_blueprint_id uuid,
    -- Where its body is: `blob://artifacts/{tenant}/{project or _}/{artifactId}/{version}`, or the storage
    -- of an earlier version of the same artifact with the same content (identical content is stored once).
    storage_ref         text        NOT NULL CHECK (storage_ref LIKE 'blob://artifacts/%'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    published_at        timestamptz,
    CONSTRAINT artifact_versions_pkey PRIMARY KEY (tenant_id, artifact_id, version),
    -- The precedence columns are the version's own.
    CONSTRAINT artifact_versions_precedence CHECK (
        split_part(split_part(version, '+', 1), '-', 1) = major || '.' || minor || '.' || patch
        AND release = (strpos(split_part(version, '+', 1), '-') = 0)),
    CONSTRAINT artifact_versions_artifact FOREIGN KEY (tenant_id, artifact_id) REFERENCES artifacts
);
-- Newest first (`versions`, `latest`, range resolution).
CREATE INDEX artifact_versions_by_precedence
    ON artifact_versions (tenant_id, artifact_id, major DESC, minor DESC, patch DESC, release DESC, created_at DESC);
-- At most one published version per artifact.
CREATE UNIQUE INDEX artifact_versions_one_published ON artifact_versions (tenant_id, artifact_id)
    WHERE status = 'Published';
-- Identical content: the versions of an artifact that share a body.
CREATE INDEX artifact_versions_by_content ON artifact_versions (tenant_id, artifact_id, content_hash);
-- What a workflow agent task produced (`AgentTask.outputArtifacts`).
CREATE INDEX artifact_versions_by_task ON artifact_versions (tenant_id, produced_by_task_id)
    WHERE produced_by_task_id IS NOT NULL;
SELECT cp_tenant_rls('artifact_versions');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'artifact_versions');

CREATE FUNCTION artifact_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'artifact versions are never deleted'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifact_versions_immutable';
    END IF;
    -- What a version is never changes: its content, its place in the order, who made it.
    IF (NEW.tenant_id, NEW.artifact_id, NEW.version, NEW.major, NEW.minor, NEW.patch, NEW.release,
        NEW.content_hash, NEW.storage_ref, NEW.produced_by_agent_id, NEW.produced_by_skill_id,
        NEW.produced_by_task_id, NEW.trace_id, NEW.source_blueprint_id, NEW.created_at)
       IS DISTINCT FROM (OLD.tenant_id, OLD.artifact_id, OLD.version, OLD.major, OLD.minor, OLD.patch, OLD.release,
        OLD.content_hash, OLD.storage_ref, OLD.produced_by_agent_id, OLD.produced_by_skill_id,
        OLD.produced_by_task_id, OLD.trace_id, OLD.source_blueprint_id, OLD.created_at) THEN
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
CREATE TRIGGER artifact_versions_immutable BEFORE UPDATE ON artifact_versions
    FOR EACH ROW EXECUTE FUNCTION artifact_versions_guard();
CREATE TRIGGER artifact_versions_no_delete BEFORE DELETE ON artifact_versions
    FOR EACH ROW EXECUTE FUNCTION artifact_versions_guard();
