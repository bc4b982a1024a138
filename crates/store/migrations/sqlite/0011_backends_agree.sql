-- Both backends hold the same rules (a test compares them). A refresh
-- spends its parent in code (UPDATE … RETURNING, then the successor's
-- INSERT, in one transaction), as on PostgreSQL: no trigger. PostgreSQL
-- drops the foreign key of users.datacenter_id, which SQLite never had.
DROP TRIGGER IF EXISTS refresh_tokens_spend_parent;
