-- One-time links sent by e-mail (SPEC §5): an invited user's activation
-- link and a password reset link. Keep in step with the other dialect's
-- 0016_link_tokens.sql (a test checks).

-- A link's token is random (256 bits) and kept only as a keyed hash
-- (HMAC-SHA256 under a key derived from the configured secret key),
-- which finds it. `purpose` is 'activate' (72 h, an invited user sets
-- a first password) or 'reset' (1 h). A link is deleted when it is
-- used, and every link of a user goes when its password is set.
CREATE TABLE link_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX link_tokens_user ON link_tokens (user_id);
CREATE INDEX link_tokens_expires ON link_tokens (expires_at);
