-- Tokens die with the client they came through. Keep in step with the
-- other dialect's 0006_client_tokens.sql (a test checks).

-- Access tokens issued through a client carry its generation; one whose
-- generation is not the client's current one is refused. Disabling the
-- client and resetting its secret move it on, and re-enabling leaves it,
-- so tokens from before the disabling stay dead.
ALTER TABLE api_clients ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
