-- A user's sessions end at once: a password change or reset, a deletion
-- and an administrator's revocation. Keep in step with the other
-- dialect's 0008_user_sessions.sql (a test checks).

-- Access tokens of a user carry the user's session generation when they
-- were issued, and refresh tokens keep it; ending the user's sessions
-- moves it on and deletes the refresh tokens in one transaction, so a
-- token of an older generation is refused, and a refresh rotated while
-- the sessions ended cannot be spent again.
ALTER TABLE users ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;
