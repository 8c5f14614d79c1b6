-- Issue 7: the account page, invitations, registration and password reset.
-- PostgreSQL dialect.

-- Where a login session started, so the account page can tell sessions
-- apart.
ALTER TABLE login_sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE login_sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';

-- account_tokens: the one-time links twostep mails or prints (an
-- invitation, a registration, an email verification, a password reset).
-- id is the SHA-256 of the link's token, never the token itself. A link
-- works once (used_at) and only until expires_at.
CREATE TABLE account_tokens (
    id          TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    user_id     TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    username    TEXT NOT NULL DEFAULT '',
    user_groups TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
CREATE INDEX account_tokens_user_id ON account_tokens (user_id, purpose);
CREATE INDEX users_email ON users (lower(email));
