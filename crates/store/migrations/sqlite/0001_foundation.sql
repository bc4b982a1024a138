-- Foundation: the platform's own state, organizations, users, roles and
-- idempotency records. Ids are lower-case UUID text; times are microseconds
-- since the Unix epoch (BIGINT) so that both backends compare them alike.
-- Keep in step with ../postgres/0001_foundation.sql (a test checks).

CREATE TABLE platform_settings (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,
    parent_id  TEXT REFERENCES organizations (id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
CREATE INDEX organizations_parent ON organizations (parent_id);

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    login           TEXT NOT NULL,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_login ON users (login);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE roles (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT REFERENCES organizations (id),
    name            TEXT NOT NULL,
    permissions     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX roles_organization ON roles (organization_id);

CREATE TABLE role_assignments (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id         TEXT NOT NULL REFERENCES roles (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    PRIMARY KEY (user_id, role_id, organization_id)
);

-- Built-in roles: fixed ids, no organization.
INSERT INTO roles (id, organization_id, name, permissions, created_at, updated_at, version) VALUES
  ('00000000-0000-7000-8000-000000000001', NULL, 'admin',
   'organizations:read organizations:write users:read users:write roles:read roles:write clients:read clients:write instances:read instances:write instances:operate tasks:read audit:read notary:read notary:write',
   0, 0, 1),
  ('00000000-0000-7000-8000-000000000002', NULL, 'operator',
   'organizations:read users:read roles:read clients:read instances:read instances:write instances:operate tasks:read audit:read notary:read',
   0, 0, 1),
  ('00000000-0000-7000-8000-000000000003', NULL, 'viewer',
   'organizations:read users:read roles:read clients:read instances:read tasks:read audit:read notary:read',
   0, 0, 1);

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    location     TEXT,
    body         BLOB,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
