-- Operator console sessions (issue #16): a platform admin signs in by
-- presenting a platform-admin token once; the console then knows them by a
-- random session token in an HttpOnly cookie. Only the token's SHA-256 is
-- stored, so a read of this table cannot be replayed as a session.
--
-- A session ends at the first of: sign-out (ended_at), `absolute_timeout`
-- after it began or the credential's own expiry (expires_at), or
-- `idle_timeout` after it was last used (last_seen_at, moved by every
-- request). Control plane, no tenant: only the platform-admin context
-- reads or writes it (../policies/console_sessions.sql). The housekeeping
-- deletes sessions a day after they ended.
CREATE TABLE console_sessions (
    id            uuid        PRIMARY KEY,
    token_hash    bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    subject       text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 300),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE UNIQUE INDEX console_sessions_token_hash ON console_sessions (token_hash);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON console_sessions TO tenantry_service;
