-- Issue 5: OpenID Connect Back-Channel Logout 1.0. SQLite dialect.

-- sid names a completed login session to relying parties (§2.1): random,
-- set when the session reaches the done state, and unlike the row ID not
-- derived from the cookie. Sessions completed before this migration get
-- one too, so their logouts reach the clients they sign in to from now on.
ALTER TABLE login_sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE login_sessions SET sid = lower(hex(randomblob(16))) WHERE state = 'done';

-- session_clients: the clients (with a back-channel logout URI) a login
-- session was issued codes for, until the session ends or expires.
CREATE TABLE session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_expires_at ON session_clients (expires_at);

-- backchannel_logouts: logout notifications to deliver. A fresh logout
-- token is signed for each attempt, so a retry never carries an expired
-- one. A claimed row's next_attempt_at is pushed out by a lease.
CREATE TABLE backchannel_logouts (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    sid             TEXT NOT NULL,
    uri             TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX backchannel_logouts_next_attempt_at ON backchannel_logouts (next_attempt_at);
