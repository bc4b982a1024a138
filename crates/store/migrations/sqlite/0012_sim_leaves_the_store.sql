-- The simulated hypervisor keeps its machines in tables of its own, made
-- by its own migrations (crates/drivers/migrations/sim) and recorded in
-- _sim_migrations: the control plane's copy goes. Simulated machines made
-- before this upgrade are not carried over (instances on them are marked
-- Error by reconciliation and can be deleted).
DROP TABLE sim_machines;
