-- The password lockout, counted in the database so that every node sees
-- every attempt. Keep in step with the other dialect's
-- 0007_login_throttle.sql (a test checks).

-- One counter per key: `account:LOGIN`, `pair:LOGIN|ADDRESS` and
-- `address:ADDRESS` count attempts (reserved before the password is
-- hashed, taken back by a success) and hold a lock; `known:LOGIN|ADDRESS`
-- counts successes, so that an address a user has signed in from is not
-- refused when the account as a whole is locked. `at` is the time of the
-- last attempt (or success).
CREATE TABLE login_throttle (
    key          TEXT PRIMARY KEY NOT NULL,
    count        BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    locked_until BIGINT
);
CREATE INDEX login_throttle_locked ON login_throttle (locked_until);
CREATE INDEX login_throttle_at ON login_throttle (at);
