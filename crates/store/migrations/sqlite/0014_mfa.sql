-- MFA with TOTP (RFC 6238) and recovery codes, and organizations that
-- require it. Keep in step with the other dialect's 0014_mfa.sql (a test
-- checks).

-- A user's TOTP secret: one row a user, `pending` from enrolment until a
-- code confirms it, then `active`. The secret is sealed (AES-256-GCM
-- under the configured secret key, the user's id as associated data), as
-- signing keys are, never stored in clear. `last_step` is the time step
-- (unix seconds / 30) of the last accepted code: a code of that step or
-- an earlier one is refused, so no code is accepted twice. `failures`,
-- `failed_at` and `locked_until` are the wrong-code lockout, counted
-- like the password lockout's counters.
CREATE TABLE user_totp (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    sealed_secret TEXT NOT NULL,
    state         TEXT NOT NULL,
    last_step     BIGINT,
    failures      BIGINT NOT NULL,
    failed_at     BIGINT NOT NULL,
    locked_until  BIGINT,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT
);

-- The recovery codes of an active TOTP, kept as keyed hashes
-- (HMAC-SHA256 under the configured secret key); each works once
-- (`used_at` set), and all go when the TOTP is removed or confirmed
-- anew.
CREATE TABLE user_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id),
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- An organization that requires MFA of its users and of every
-- organization below it: 1 or 0, as the store keeps flags.
ALTER TABLE organizations ADD COLUMN mfa_required BIGINT NOT NULL DEFAULT 0;
