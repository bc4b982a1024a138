-- The notary: stored files and the append-only Merkle log of their
-- hashes. Keep in step with the other dialect's 0005_notary.sql (a test
-- checks).

-- A stored file, or a registered hash (no content). `leaf_index` is its
-- place in the log, NULL until a batch notarizes it.
CREATE TABLE notary_files (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    owner_type      TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size_bytes      BIGINT,
    content         TEXT NOT NULL,
    leaf_index      BIGINT UNIQUE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX notary_files_organization ON notary_files (organization_id, id);
CREATE INDEX notary_files_sha256 ON notary_files (organization_id, sha256, id);
CREATE INDEX notary_files_name ON notary_files (organization_id, name, id);
CREATE INDEX notary_files_pending ON notary_files (created_at, id) WHERE leaf_index IS NULL;

-- Every signed tree head, each with the proof that it extends the one
-- before it.
CREATE TABLE notary_tree_heads (
    tree_size         BIGINT PRIMARY KEY NOT NULL,
    root_hash         TEXT NOT NULL,
    signed_at         BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    signature         TEXT NOT NULL,
    previous_size     BIGINT NOT NULL,
    consistency_proof TEXT NOT NULL
);

-- The notary's signing keys (Ed25519), sealed with the secret key. They
-- are never rotated away: every certificate ever issued stays checkable.
CREATE TABLE notary_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
