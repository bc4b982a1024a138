-- Both backends hold the same rules (a test compares them). A refresh
-- spends its parent in code, so SQLite drops its trigger here (PostgreSQL
-- never had one). SQLite cannot give users.datacenter_id a foreign key
-- (ADD COLUMN with a non-NULL default), and deleting a data center checks
-- for its users in code, so PostgreSQL drops its key too.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_datacenter_id_fkey;
