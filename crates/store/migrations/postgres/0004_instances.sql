-- Instances, quotas and the durable task engine. Keep in step with the
-- other dialect's 0004_instances.sql (a test checks).

CREATE TABLE instances (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    state           TEXT NOT NULL,
    cpu             BIGINT NOT NULL,
    memory_mib      BIGINT NOT NULL,
    disk_gib        BIGINT NOT NULL,
    image           TEXT NOT NULL,
    datacenter_id   TEXT NOT NULL REFERENCES datacenters (id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX instances_organization ON instances (organization_id, id);
CREATE INDEX instances_state ON instances (organization_id, state, id);
CREATE INDEX instances_name ON instances (organization_id, name, id);

-- Limits on an organization's own instances; a missing row or a NULL
-- column is no limit.
CREATE TABLE quotas (
    organization_id TEXT PRIMARY KEY NOT NULL REFERENCES organizations (id),
    instances       BIGINT,
    vcpus           BIGINT,
    memory_mib      BIGINT,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);

-- Every running server process, with the time its lease runs out. A node
-- renews its lease every few seconds; the tasks and idempotency claims of
-- a node whose lease has run out are taken over by the others.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY NOT NULL,
    started_at  BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);

-- Tasks. `status` is PENDING (not yet claimed), RUNNING (shown as PENDING),
-- SUCCESS or FAILED. `step` is the next step to run, or, while
-- `unwinding`, the next to undo. `active_resource` is the resource id while
-- the task is not finished: unique, so one resource never has two.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    operation       TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    active_resource TEXT,
    agent_id        TEXT,
    status          TEXT NOT NULL,
    progress        BIGINT NOT NULL,
    step            BIGINT NOT NULL,
    unwinding       BIGINT NOT NULL,
    input           TEXT NOT NULL,
    result          TEXT,
    error           TEXT,
    owner           TEXT,
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    completed_at    BIGINT
);
CREATE UNIQUE INDEX tasks_active_resource ON tasks (active_resource);
CREATE INDEX tasks_status ON tasks (status, id);
CREATE INDEX tasks_organization ON tasks (organization_id, id);
CREATE INDEX tasks_resource ON tasks (resource_id, id);
CREATE INDEX tasks_completed ON tasks (completed_at);

-- The step log: every step done, undone or failed, in order.
CREATE TABLE task_steps (
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    name    TEXT NOT NULL,
    action  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT,
    at      BIGINT NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- The simulated hypervisor's machines: its state survives restarts.
CREATE TABLE sim_machines (
    id         TEXT PRIMARY KEY NOT NULL,
    power      TEXT NOT NULL,
    cpu        BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    image      TEXT NOT NULL,
    boots      BIGINT NOT NULL,
    last_task  TEXT,
    updated_at BIGINT NOT NULL
);

-- An idempotent POST that started a task records it here in the task's
-- own transaction, so a retry after a crash finds the task; `node_id`
-- names the process that holds a claim still in progress.
ALTER TABLE idempotency_keys ADD COLUMN task_id TEXT;
ALTER TABLE idempotency_keys ADD COLUMN node_id TEXT;
