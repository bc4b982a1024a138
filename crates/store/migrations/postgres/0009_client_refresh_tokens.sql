-- A client's own refresh tokens (client credentials with offline_access,
-- SPEC §5): a refresh token is a user's or, without one, its client's.
-- Keep in step with the other dialect's 0009_client_refresh_tokens.sql
-- (a test checks).

ALTER TABLE refresh_tokens ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_subject
    CHECK (user_id IS NOT NULL OR client_id IS NOT NULL);
-- Ending a user's or a client's sessions deletes their tokens.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
