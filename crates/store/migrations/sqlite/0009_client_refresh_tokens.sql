-- A client's own refresh tokens (client credentials with offline_access,
-- SPEC §5): a refresh token is a user's or, without one, its client's.
-- Keep in step with the other dialect's 0009_client_refresh_tokens.sql
-- (a test checks). SQLite cannot drop NOT NULL from a column: the table
-- is made anew with the rows, indexes and trigger it had.

CREATE TABLE refresh_tokens_next (
    id                 TEXT PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL,
    parent_id          TEXT,
    token_hash         TEXT NOT NULL,
    user_id            TEXT REFERENCES users (id) ON DELETE CASCADE,
    organization_id    TEXT NOT NULL,
    client_id          TEXT REFERENCES api_clients (id) ON DELETE CASCADE,
    scope              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    revoked_at         BIGINT,
    session_generation BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT refresh_tokens_subject CHECK (user_id IS NOT NULL OR client_id IS NOT NULL)
);
INSERT INTO refresh_tokens_next (id, family_id, parent_id, token_hash, user_id,
    organization_id, client_id, scope, created_at, expires_at, used_at, revoked_at,
    session_generation)
SELECT id, family_id, parent_id, token_hash, user_id, organization_id, client_id, scope,
    created_at, expires_at, used_at, revoked_at, session_generation FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_next RENAME TO refresh_tokens;
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- Ending a user's or a client's sessions deletes their tokens.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);

-- A refresh is one statement (INSERT … SELECT of the successor): this
-- trigger spends the parent in the same statement. (PostgreSQL does both
-- in one statement with a data-modifying CTE instead.)
CREATE TRIGGER refresh_tokens_spend_parent AFTER INSERT ON refresh_tokens
WHEN NEW.parent_id IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.created_at WHERE id = NEW.parent_id;
END;
