-- Accounts an administrator can disable and organizations a parent can
-- suspend (SPEC §4, §6). Keep in step with the other dialect's
-- 0013_account_states.sql (a test checks).

-- 'enabled', 'disabled' or 'invited' (no password yet).
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled';
-- 'active' or 'suspended': a suspended organization's principals, and
-- those of every organization below it, are refused.
ALTER TABLE organizations ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
