package storage

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The states of a login session, in the only order they can be reached.
const (
	// StatePassword: the browser must give a username and password.
	StatePassword = "password"
	// StateTOTP: the password was right; a TOTP code is due.
	StateTOTP = "totp"
	// StateDone: both factors were checked.
	StateDone = "done"
)

// LoginSession is one browser's progress through the login. ID is the hash
// of the opaque cookie value, never the value itself.
type LoginSession struct {
	ID            string
	State         string
	UserID        string
	AuthRequestID string
	CSRFToken     string
	// PendingTOTPSecret is the secret shown during enrolment; it becomes the
	// user's only when a code from it verifies. In the clear here, sealed in
	// the database.
	PendingTOTPSecret string
	PasswordAt        time.Time
	AuthTime          time.Time
	// AMR (RFC 8176) and ACR say how the login ended: which factors were
	// checked, and by which path (code, recovery code, remembered device).
	AMR []string
	ACR string
	// SID names a completed login to relying parties: the ID token's
	// `sid` and the logout token's (OpenID Connect Back-Channel Logout 1.0
	// §2.1). It is random and set when the session reaches StateDone;
	// unlike ID it says nothing about the cookie.
	SID string
	// FailedCodes counts the wrong codes given in this login.
	FailedCodes int
	// IP and UserAgent are where the login started, for the account
	// page's list of sessions.
	IP        string
	UserAgent string
	CreatedAt time.Time
	ExpiresAt time.Time
}

type loginSessionRow struct {
	ID                string       `db:"id"`
	State             string       `db:"state"`
	UserID            string       `db:"user_id"`
	AuthRequestID     string       `db:"auth_request_id"`
	CSRFToken         string       `db:"csrf_token"`
	PendingTOTPSecret []byte       `db:"pending_totp_secret"`
	PasswordAt        sql.NullTime `db:"password_at"`
	AuthTime          sql.NullTime `db:"auth_time"`
	AMR               string       `db:"amr"`
	ACR               string       `db:"acr"`
	SID               string       `db:"sid"`
	FailedCodes       int          `db:"failed_codes"`
	IP                string       `db:"ip"`
	UserAgent         string       `db:"user_agent"`
	CreatedAt         time.Time    `db:"created_at"`
	ExpiresAt         time.Time    `db:"expires_at"`
}

// CreateLoginSession inserts ls.
func (s *Store) CreateLoginSession(ctx context.Context, ls LoginSession) error {
	if ls.CreatedAt.IsZero() {
		ls.CreatedAt = s.now()
	}
	_, err := s.exec(ctx, "create login session",
		`INSERT INTO login_sessions (id, state, user_id, auth_request_id, csrf_token, password_at, auth_time, amr, acr, sid,
		                             ip, user_agent, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ls.ID, ls.State, ls.UserID, ls.AuthRequestID, ls.CSRFToken, nullTime(ls.PasswordAt), nullTime(ls.AuthTime),
		strings.Join(ls.AMR, " "), ls.ACR, ls.SID, bound(ls.IP, maxAuditField), bound(ls.UserAgent, maxUserAgent),
		utc(ls.CreatedAt), utc(ls.ExpiresAt))
	return err
}

const loginSessionColumns = `id, state, user_id, auth_request_id, csrf_token, pending_totp_secret, password_at,
	auth_time, amr, acr, sid, failed_codes, ip, user_agent, created_at, expires_at`

// GetLoginSession returns the unexpired login session with the given ID.
func (s *Store) GetLoginSession(ctx context.Context, id string) (LoginSession, error) {
	var r loginSessionRow
	err := s.get(ctx, "get login session", &r,
		`SELECT `+loginSessionColumns+` FROM login_sessions WHERE id = ? AND expires_at > ?`, id, utc(s.now()))
	if err != nil {
		return LoginSession{}, err
	}
	return s.loginSessionFromRow(r)
}

func (s *Store) loginSessionFromRow(r loginSessionRow) (LoginSession, error) {
	ls := LoginSession{
		ID: r.ID, State: r.State, UserID: r.UserID, AuthRequestID: r.AuthRequestID, CSRFToken: r.CSRFToken,
		AMR: strings.Fields(r.AMR), ACR: r.ACR, SID: r.SID, FailedCodes: r.FailedCodes, IP: r.IP, UserAgent: r.UserAgent,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
	if r.PasswordAt.Valid {
		ls.PasswordAt = r.PasswordAt.Time.UTC()
	}
	if r.AuthTime.Valid {
		ls.AuthTime = r.AuthTime.Time.UTC()
	}
	if len(r.PendingTOTPSecret) > 0 {
		secret, err := s.open(r.PendingTOTPSecret, "pending-totp:"+r.ID)
		if err != nil {
			return LoginSession{}, fmt.Errorf("get login session: %w", err)
		}
		ls.PendingTOTPSecret = string(secret)
	}
	return ls, nil
}

// ListUserLoginSessions returns the user's unexpired completed login
// sessions, the most recent login first.
func (s *Store) ListUserLoginSessions(ctx context.Context, userID string) ([]LoginSession, error) {
	var rows []loginSessionRow
	if err := s.sel(ctx, "list login sessions", &rows,
		`SELECT `+loginSessionColumns+` FROM login_sessions WHERE user_id = ? AND state = ? AND expires_at > ?
		 ORDER BY auth_time DESC, sid`, userID, StateDone, utc(s.now())); err != nil {
		return nil, err
	}
	out := make([]LoginSession, 0, len(rows))
	for _, r := range rows {
		ls, err := s.loginSessionFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ls)
	}
	return out, nil
}

// DeleteUserLoginSessionBySID ends the user's completed login session
// named sid; a session that is not theirs is ErrNotFound.
func (s *Store) DeleteUserLoginSessionBySID(ctx context.Context, userID, sid string) error {
	n, err := s.exec(ctx, "delete login session",
		`DELETE FROM login_sessions WHERE user_id = ? AND sid = ? AND state = ? AND sid <> ''`, userID, sid, StateDone)
	return oneRow("delete login session", n, err)
}

// AdvanceLoginSession moves the session with ID oldID from state `from` to
// next, which carries the new ID (the cookie value is replaced after each
// factor), the new state and what that step learned. It is one conditional
// update: if the session is gone, expired or no longer in `from`, nothing
// changes and it returns ErrConflict. A pending TOTP secret does not
// survive the move; next.SID replaces the session's sid.
func (s *Store) AdvanceLoginSession(ctx context.Context, oldID, from string, next LoginSession) error {
	n, err := s.exec(ctx, "advance login session",
		`UPDATE login_sessions
		 SET id = ?, state = ?, user_id = ?, csrf_token = ?, pending_totp_secret = NULL,
		     password_at = ?, auth_time = ?, amr = ?, acr = ?, sid = ?, failed_codes = 0, expires_at = ?
		 WHERE id = ? AND state = ? AND expires_at > ?`,
		next.ID, next.State, next.UserID, next.CSRFToken, nullTime(next.PasswordAt), nullTime(next.AuthTime),
		strings.Join(next.AMR, " "), next.ACR, next.SID, utc(next.ExpiresAt), oldID, from, utc(s.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("advance login session: %w", ErrConflict)
	}
	return nil
}

// SetLoginSessionAuthRequest points a login session at the pending
// authorization request it serves.
func (s *Store) SetLoginSessionAuthRequest(ctx context.Context, id, authRequestID string) error {
	n, err := s.exec(ctx, "set login session request",
		`UPDATE login_sessions SET auth_request_id = ? WHERE id = ?`, authRequestID, id)
	return oneRow("set login session request", n, err)
}

// SetPendingTOTPSecret stores the enrolment secret shown to a session in
// the TOTP state, or to a completed one replacing its authenticator on the
// account page; it fails with ErrConflict in any other state.
func (s *Store) SetPendingTOTPSecret(ctx context.Context, id, secret string) error {
	sealed, err := s.seal([]byte(secret), "pending-totp:"+id)
	if err != nil {
		return fmt.Errorf("set pending totp: %w", err)
	}
	n, err := s.exec(ctx, "set pending totp",
		`UPDATE login_sessions SET pending_totp_secret = ? WHERE id = ? AND state IN (?, ?)`, sealed, id, StateTOTP, StateDone)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("set pending totp: %w", ErrConflict)
	}
	return nil
}

// CountSessionCodeFailure counts one code attempt against a login session
// in the TOTP state before it is checked, unless max attempts are already
// counted: then the session is spent and it returns ErrConflict, as it does
// for a session that is gone or in another state.
func (s *Store) CountSessionCodeFailure(ctx context.Context, id string, max int) error {
	n, err := s.exec(ctx, "count session code failure",
		`UPDATE login_sessions SET failed_codes = failed_codes + 1
		 WHERE id = ? AND state = ? AND failed_codes < ? AND expires_at > ?`,
		id, StateTOTP, max, utc(s.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("count session code failure: %w", ErrConflict)
	}
	return nil
}

// DeleteLoginSession ends a login session; a missing one is not an error.
func (s *Store) DeleteLoginSession(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "delete login session", `DELETE FROM login_sessions WHERE id = ?`, id)
	return err
}

// DeleteUserLoginSessions ends every login session of a user.
func (s *Store) DeleteUserLoginSessions(ctx context.Context, userID string) error {
	_, err := s.exec(ctx, "delete login sessions", `DELETE FROM login_sessions WHERE user_id = ?`, userID)
	return err
}

// Consent decisions recorded on an AuthRequest.
const (
	ConsentGranted = "granted"
	ConsentDenied  = "denied"
)

// AuthRequest is an authorization request waiting for the login and consent
// steps. Form holds its original parameters; RequestedAt is when it first
// arrived, so the steps do not move it.
type AuthRequest struct {
	ID            string
	ClientID      string
	Form          url.Values
	RequestedAt   time.Time
	ExpiresAt     time.Time
	Consent       string
	ConsentUserID string
}

type authRequestRow struct {
	ID            string    `db:"id"`
	ClientID      string    `db:"client_id"`
	Form          string    `db:"form"`
	RequestedAt   time.Time `db:"requested_at"`
	ExpiresAt     time.Time `db:"expires_at"`
	Consent       string    `db:"consent"`
	ConsentUserID string    `db:"consent_user_id"`
}

// CreateAuthRequest inserts ar.
func (s *Store) CreateAuthRequest(ctx context.Context, ar AuthRequest) error {
	_, err := s.exec(ctx, "create auth request",
		`INSERT INTO auth_requests (id, client_id, form, requested_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		ar.ID, ar.ClientID, ar.Form.Encode(), utc(ar.RequestedAt), utc(ar.ExpiresAt))
	return err
}

// GetAuthRequest returns the unexpired authorization request with the ID.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (AuthRequest, error) {
	var r authRequestRow
	err := s.get(ctx, "get auth request", &r,
		`SELECT id, client_id, form, requested_at, expires_at, consent, consent_user_id
		 FROM auth_requests WHERE id = ? AND expires_at > ?`, id, utc(s.now()))
	if err != nil {
		return AuthRequest{}, err
	}
	form, err := url.ParseQuery(r.Form)
	if err != nil {
		return AuthRequest{}, fmt.Errorf("get auth request: decode form: %w", err)
	}
	return AuthRequest{
		ID: r.ID, ClientID: r.ClientID, Form: form, RequestedAt: r.RequestedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(), Consent: r.Consent, ConsentUserID: r.ConsentUserID,
	}, nil
}

// DecideAuthRequest records the user's consent decision, once: a request
// already decided returns ErrConflict.
func (s *Store) DecideAuthRequest(ctx context.Context, id, userID, decision string) error {
	n, err := s.exec(ctx, "decide auth request",
		`UPDATE auth_requests SET consent = ?, consent_user_id = ? WHERE id = ? AND consent = '' AND expires_at > ?`,
		decision, userID, id, utc(s.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("decide auth request: %w", ErrConflict)
	}
	return nil
}

// DeleteAuthRequest consumes an authorization request. Only one caller can
// consume it: a second gets ErrNotFound.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "delete auth request", `DELETE FROM auth_requests WHERE id = ?`, id)
	return oneRow("delete auth request", n, err)
}

// Authentication context classes (OpenID Connect Core 1.0 §2, acr) a
// login can end with. Relying parties that need a fresh TOTP code ask for
// ACRTOTP in acr_values.
const (
	// ACRTOTP: password and a TOTP code, in this login.
	ACRTOTP = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
	// ACRRecoveryCode: password and a one-time recovery code.
	ACRRecoveryCode = "urn:twostep:acr:recovery-code"
	// ACRRememberedDevice: password, from a browser that gave a TOTP code
	// in an earlier login and was remembered.
	ACRRememberedDevice = "urn:twostep:acr:remembered-device"
)
