-- Access: home data centers, custom-role name uniqueness, API keys and the
-- audit log. Keep in step with the other dialect's 0002_access.sql (a test
-- checks).

-- Data centers that serve accounts. The row with the fixed id below is this
-- server's own; its URL is the configured public URL, so it is stored NULL.
CREATE TABLE datacenters (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    server_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
CREATE UNIQUE INDEX datacenters_name ON datacenters (name);
INSERT INTO datacenters (id, name, server_url, created_at, updated_at, version)
VALUES ('00000000-0000-7000-8000-000000000100', 'local', NULL, 0, 0, 1);

ALTER TABLE users ADD COLUMN datacenter_id TEXT NOT NULL
    DEFAULT '00000000-0000-7000-8000-000000000100' REFERENCES datacenters (id);

-- A custom role's name is unique within its organization (built-in roles
-- have no organization; their names are reserved by the application).
CREATE UNIQUE INDEX roles_organization_name ON roles (organization_id, name);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    version      BIGINT NOT NULL
);
CREATE UNIQUE INDEX api_keys_secret_hash ON api_keys (secret_hash);
CREATE UNIQUE INDEX api_keys_user_name ON api_keys (user_id, name);

-- Who did what, when, where, with what outcome. No foreign keys: events
-- outlive the principals, organizations and targets they name.
CREATE TABLE audit_events (
    id              TEXT PRIMARY KEY NOT NULL,
    occurred_at     BIGINT NOT NULL,
    organization_id TEXT,
    actor_type      TEXT,
    actor_id        TEXT,
    actor_name      TEXT,
    action          TEXT NOT NULL,
    target_type     TEXT,
    target_id       TEXT,
    outcome         TEXT NOT NULL,
    status          BIGINT NOT NULL,
    request_id      TEXT,
    agent_id        TEXT,
    client_address  TEXT
);
CREATE INDEX audit_events_organization ON audit_events (organization_id, id);
