-- The token service: signing keys, API clients, refresh tokens and revoked
-- access tokens. Keep in step with the other dialect's 0003_identity.sql (a
-- test checks).

-- Keys that sign access and id tokens, shared by every node. The private
-- key (PKCS#8) is sealed with AES-256-GCM under the configured secret key
-- and stored base64. A key signs until `retired_at`; it is published in the
-- JWKS until `expires_at`, when the last token it signed has expired.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    purpose     TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    sealed_key  TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    expires_at  BIGINT
);
CREATE INDEX signing_keys_purpose ON signing_keys (purpose, created_at);

-- OAuth2 API clients. The secret is kept as a keyed hash (HMAC-SHA256):
-- it is random and long, so a password hash would only cost time.
CREATE TABLE api_clients (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    auth_method     TEXT NOT NULL,
    status          TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_access_at  BIGINT,
    version         BIGINT NOT NULL
);
CREATE INDEX api_clients_organization ON api_clients (organization_id, id);

-- The roles a client acts with, in its own organization.
CREATE TABLE client_role_assignments (
    client_id TEXT NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles (id),
    PRIMARY KEY (client_id, role_id)
);

-- Opaque refresh tokens, stored as SHA-256. Each use rotates the token:
-- the used one gets `used_at`, and a second use of it revokes the family.
-- `parent_id` is the token this one replaced; `organization_id` is the
-- user's, so that a refresh needs no other row.
CREATE TABLE refresh_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    family_id       TEXT NOT NULL,
    parent_id       TEXT,
    token_hash      TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    client_id       TEXT REFERENCES api_clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Access tokens revoked before they expire, by `jti`. Every node polls this
-- table for what was revoked since its last look.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
