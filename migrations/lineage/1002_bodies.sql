-- Lineage: artifact bodies in blob storage. A body is stored once per storage reference (versions of an
-- artifact with identical content share one); this table says which are there, whole and checked.
--
-- An upload first claims the row ('uploading', its upload_id, touched_at renewed while it streams), so two
-- uploads never write one blob at once; the blob is written only under a committed claim. Once the body is
-- in blob storage whole and its sha256 matched the version's contentHash, the row becomes 'stored' in the
-- transaction that publishes ArtifactBodyStored. A claim left behind (a process that died mid-upload, or a
-- metadata transaction that failed after the blob was written) goes stale; the sweeper removes its blob and
-- the claim, and any upload may then start again.

CREATE TABLE artifact_bodies (
    tenant_id    text        NOT NULL,
    storage_ref  text        NOT NULL CHECK (storage_ref LIKE 'blob://artifacts/%'),
    content_hash text        NOT NULL CHECK (content_hash ~ '^sha256:[0-9a-f]{64}$'),
    state        text        NOT NULL CHECK (state IN ('uploading', 'stored')),
    -- The upload holding the claim (while uploading).
    upload_id    uuid,
    size         bigint      CHECK (size >= 0),
    touched_at   timestamptz NOT NULL DEFAULT now(),
    stored_at    timestamptz,
    CONSTRAINT artifact_bodies_pkey PRIMARY KEY (tenant_id, storage_ref),
    CONSTRAINT artifact_bodies_state CHECK (
        (state = 'uploading' AND upload_id IS NOT NULL AND stored_at IS NULL)
        OR (state = 'stored' AND size IS NOT NULL AND stored_at IS NOT NULL))
);
-- The sweeper's stale claims, across tenants (the one key not led by tenant_id: it serves the sweeper).
CREATE INDEX artifact_bodies_claims ON artifact_bodies (touched_at) WHERE state = 'uploading';
SELECT cp_tenant_rls('artifact_bodies');
CREATE POLICY sweeper ON artifact_bodies USING (current_setting('app.system', true) = 'body-sweeper');
SELECT cp_grant_app('SELECT, INSERT, UPDATE, DELETE', 'artifact_bodies');

-- A stored body never changes (retention deletes it with its versions' metadata).
CREATE FUNCTION artifact_bodies_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'stored' THEN
        RAISE EXCEPTION 'the body at % is stored and immutable', OLD.storage_ref
            USING ERRCODE = 'check_violation', CONSTRAINT = 'artifact_bodies_immutable';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER artifact_bodies_immutable BEFORE UPDATE ON artifact_bodies
    FOR EACH ROW EXECUTE FUNCTION artifact_bodies_guard();

-- What the producer says of a version beyond its metadata (the prompt, the parameters, a summary): a
-- sensitive field, which callers without lineage:read-restricted see redacted on confidential and
-- restricted artifacts, like the body. Set when the version is recorded, never changed.
ALTER TABLE artifact_versions ADD COLUMN attributes jsonb
    CHECK (attributes IS NULL OR (jsonb_typeof(attributes) = 'object' AND octet_length(attributes::text) <= 16384));
