-- Issue 4: lockout counters, recovery codes, remembered devices, audit
-- events and failure-based throttling. SQLite dialect.

-- failed_codes counts consecutive wrong second-factor codes (NIST SP
-- 800-63B §5.2.2); a correct code resets it.
ALTER TABLE users ADD COLUMN failed_codes BIGINT NOT NULL DEFAULT 0;
-- failed_codes counts this login's wrong codes; acr is how it ended.
ALTER TABLE login_sessions ADD COLUMN failed_codes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_sessions ADD COLUMN acr TEXT NOT NULL DEFAULT '';

-- Throttles now count failures with a back-off deadline instead of hits
-- in a fixed window; the old counters are transient, so they are dropped.
DROP TABLE throttles;
CREATE TABLE throttles (
    throttle_key  TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    blocked_until TIMESTAMP NOT NULL
);
CREATE INDEX throttles_blocked_until ON throttles (blocked_until);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE remembered_devices (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX remembered_devices_user_id ON remembered_devices (user_id);
CREATE INDEX remembered_devices_expires_at ON remembered_devices (expires_at);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TIMESTAMP NOT NULL,
    event      TEXT NOT NULL,
    outcome    TEXT NOT NULL DEFAULT '',
    user_id    TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_user_id ON audit_events (user_id, occurred_at);

-- Sealed values now start with the 4-byte version of the key that sealed
-- them. Values sealed before had none; their key is version 1 of the ring
-- (what TWOSTEP_SECRET_KEY or the key file holds).
UPDATE users SET totp_secret = CAST(X'00000001' || totp_secret AS BLOB) WHERE totp_secret IS NOT NULL;
UPDATE login_sessions SET pending_totp_secret = CAST(X'00000001' || pending_totp_secret AS BLOB) WHERE pending_totp_secret IS NOT NULL;
UPDATE signing_keys SET private_key = CAST(X'00000001' || private_key AS BLOB) WHERE private_key IS NOT NULL;
