-- Sign-in for people and web apps (SPEC §5): what a client registers for
-- the authorization-code flow, the identity provider's SSO sessions, the
-- codes it hands out and the consents users gave. Keep in step with the
-- other dialect's 0015_sign_in.sql (a test checks).

-- Space-separated lists: URIs have no spaces, grant types are words.
ALTER TABLE api_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE api_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE api_clients ADD COLUMN grant_types TEXT NOT NULL
    DEFAULT 'client_credentials password refresh_token';
-- 1 for the platform's own applications: no consent page.
ALTER TABLE api_clients ADD COLUMN first_party BIGINT NOT NULL DEFAULT 0;

-- A browser's session with the identity provider, found by the SHA-256
-- of its cookie. It lives until `expires_at` (absolute) and while it is
-- used within the idle time after `last_seen_at`; it carries the user's
-- session generation, so ending the user's sessions ends it too.
CREATE TABLE sso_sessions (
    id                 TEXT PRIMARY KEY NOT NULL,
    token_hash         TEXT NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_generation BIGINT NOT NULL,
    -- Space-separated RFC 8176 methods: 'pwd', 'pwd otp'.
    amr                TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    user_agent         TEXT NOT NULL,
    address            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_seen_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX sso_sessions_token ON sso_sessions (token_hash);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);

-- Authorization codes, by the SHA-256 of the code: single use, bound to
-- the client, the redirect URI, the PKCE challenge and the nonce. A code
-- spent records what it issued (`access_jti`, `refresh_family_id`) so
-- that a replay revokes it.
CREATE TABLE authorization_codes (
    code_hash          TEXT PRIMARY KEY NOT NULL,
    client_id          TEXT NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id         TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    scope              TEXT NOT NULL,
    nonce              TEXT,
    code_challenge     TEXT NOT NULL,
    amr                TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    access_jti         TEXT,
    access_expires_at  BIGINT,
    refresh_family_id  TEXT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- What a user allowed a third-party client, until revoked.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES api_clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
