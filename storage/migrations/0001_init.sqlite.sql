-- twostep schema, SQLite dialect. Times are UTC, written by the driver in
-- sqlite's text format so that they compare correctly as strings.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL DEFAULT '',
    email_verified    BOOLEAN NOT NULL DEFAULT FALSE,
    name              TEXT NOT NULL DEFAULT '',
    user_groups       TEXT NOT NULL DEFAULT '',
    password_hash     TEXT NOT NULL,
    totp_secret       BLOB,
    totp_confirmed_at TIMESTAMP,
    totp_last_step    BIGINT NOT NULL DEFAULT 0,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMP NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    secret_hash               BLOB,
    name                      TEXT NOT NULL DEFAULT '',
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    response_types            TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    public                    BOOLEAN NOT NULL,
    require_pkce              BOOLEAN NOT NULL,
    skip_consent              BOOLEAN NOT NULL,
    created_at                TIMESTAMP NOT NULL
);

CREATE TABLE oauth2_sessions (
    kind       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    request    TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_sessions_request_id ON oauth2_sessions (request_id);
CREATE INDEX oauth2_sessions_expires_at ON oauth2_sessions (expires_at);

CREATE TABLE login_sessions (
    id                  TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    user_id             TEXT NOT NULL DEFAULT '',
    auth_request_id     TEXT NOT NULL DEFAULT '',
    csrf_token          TEXT NOT NULL,
    pending_totp_secret BLOB,
    password_at         TIMESTAMP,
    auth_time           TIMESTAMP,
    amr                 TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMP NOT NULL,
    expires_at          TIMESTAMP NOT NULL
);
CREATE INDEX login_sessions_expires_at ON login_sessions (expires_at);

CREATE TABLE auth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    form            TEXT NOT NULL,
    requested_at    TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    consent         TEXT NOT NULL DEFAULT '',
    consent_user_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE grants (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    retired_at  TIMESTAMP
);

CREATE TABLE throttles (
    throttle_key TEXT PRIMARY KEY,
    hits         BIGINT NOT NULL,
    window_start TIMESTAMP NOT NULL
);
