-- twostep schema, PostgreSQL dialect. Times are TIMESTAMPTZ, always written in UTC.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    username          TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL DEFAULT '',
    email_verified    BOOLEAN NOT NULL DEFAULT FALSE,
    name              TEXT NOT NULL DEFAULT '',
    user_groups       TEXT NOT NULL DEFAULT '',
    password_hash     TEXT NOT NULL,
    totp_secret       BYTEA,
    totp_confirmed_at TIMESTAMPTZ,
    totp_last_step    BIGINT NOT NULL DEFAULT 0,
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    secret_hash               BYTEA,
    name                      TEXT NOT NULL DEFAULT '',
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    response_types            TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    public                    BOOLEAN NOT NULL,
    require_pkce              BOOLEAN NOT NULL,
    skip_consent              BOOLEAN NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE oauth2_sessions (
    kind       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    request    TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
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
    pending_totp_secret BYTEA,
    password_at         TIMESTAMPTZ,
    auth_time           TIMESTAMPTZ,
    amr                 TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_sessions_expires_at ON login_sessions (expires_at);

CREATE TABLE auth_requests (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    form            TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    consent         TEXT NOT NULL DEFAULT '',
    consent_user_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE grants (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);

CREATE TABLE throttles (
    throttle_key TEXT PRIMARY KEY,
    hits         BIGINT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL
);
