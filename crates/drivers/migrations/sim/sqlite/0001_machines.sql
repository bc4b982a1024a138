-- The simulated hypervisor's machines.
CREATE TABLE sim_machines (
    id         TEXT PRIMARY KEY NOT NULL,
    -- `running` or `stopped`.
    power      TEXT NOT NULL,
    cpu        BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    image      TEXT NOT NULL,
    -- How many times it has booted (a start or a reboot).
    boots      BIGINT NOT NULL,
    -- The last reboot's task, so that a reboot counts once per task.
    last_task  TEXT,
    updated_at BIGINT NOT NULL
);
