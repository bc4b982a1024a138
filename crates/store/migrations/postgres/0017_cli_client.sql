-- The command-line client's own registration (`nephele login --web`,
-- RFC 8252): a public, first-party client of the root organization that
-- may send a code to any port of http://127.0.0.1/callback. Setup makes
-- it with the root organization; this makes it for a platform set up
-- before. Keep in step with the other dialect's 0017_cli_client.sql.
INSERT INTO api_clients (
    id, organization_id, name, auth_method, status, secret_hash, created_by,
    created_at, updated_at, last_access_at, version, token_generation,
    redirect_uris, post_logout_redirect_uris, grant_types, first_party
)
SELECT '00000000-0000-7000-8000-000000000c11', id, 'Nephele CLI', 'none', 'enabled', '', NULL,
    CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) * 1000000, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) * 1000000,
    NULL, 1, 0,
    'http://127.0.0.1/callback', '', 'authorization_code refresh_token', 1
FROM organizations
WHERE parent_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM api_clients WHERE id = '00000000-0000-7000-8000-000000000c11');
