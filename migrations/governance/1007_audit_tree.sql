-- Each tenant's audit log is also an RFC 6962 Merkle tree over its canonical entries (leaf i = entry
-- i + 1), stored as Go's sumdb/tlog stores one (audit/tree.rs): appending entry n stores its leaf hash and
-- the subtrees it completes (about two hashes per entry) at their stored indexes. Roots, inclusion and
-- consistency proofs are computed from these; like the entries they are append-only.

CREATE TABLE audit_tree (
    tenant_id text   NOT NULL,
    idx       bigint NOT NULL CHECK (idx >= 0),
    hash      bytea  NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT audit_tree_pkey PRIMARY KEY (tenant_id, idx)
);
SELECT cp_tenant_rls('audit_tree');
SELECT cp_grant_app('SELECT, INSERT', 'audit_tree');

CREATE TRIGGER audit_tree_append_only BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();

-- The head also keeps the tree: its root at `size` and its frontier (the roots of the complete subtrees
-- the tree is made of, concatenated in order: at most log2(size) hashes), so an append reads no stored
-- hash. A head from before this migration has no tree yet (tree_size 0): the next append builds it from
-- the stored entries first.
ALTER TABLE audit_heads
    ADD COLUMN tree_size bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0 AND tree_size <= size),
    ADD COLUMN frontier  bytea  NOT NULL DEFAULT '\x'::bytea CHECK (octet_length(frontier) % 32 = 0),
    ADD COLUMN root      bytea  NOT NULL DEFAULT sha256(''::bytea) CHECK (octet_length(root) = 32);
