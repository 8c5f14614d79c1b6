package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is a person who logs in. ID is the stable opaque subject (`sub`);
// Username is what they type.
type User struct {
	ID            string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	PasswordHash  string
	// TOTPSecret is the confirmed base32 TOTP secret, in the clear here and
	// sealed in the database; empty until an authenticator is confirmed.
	TOTPSecret      string
	TOTPConfirmedAt time.Time
	// TOTPLastStep is the last RFC 6238 time step accepted for this user;
	// only a later step is accepted again (the replay guard).
	TOTPLastStep int64
	// FailedCodes counts the wrong second-factor codes given since the last
	// right one (NIST SP 800-63B §5.2.2); at the login's limit the account
	// is locked until an administrator unlocks it.
	FailedCodes int
	Disabled    bool
	CreatedAt   time.Time
}

// HasTOTP reports whether the user has a confirmed authenticator.
func (u User) HasTOTP() bool { return u.TOTPSecret != "" }

// UserClaims are the OpenID Connect claims a User holds besides `sub`.
func UserClaims() []string {
	return []string{"name", "preferred_username", "email", "email_verified", "groups"}
}

// ClaimScope returns the scope that releases the user claim name (OpenID
// Connect Core §5.4; groups is twostep's own scope), or "" for a claim
// not in UserClaims. The authorization endpoint releases a claim that a
// claims parameter asks for only if the user allowed its scope.
func ClaimScope(name string) string {
	switch name {
	case "name", "preferred_username":
		return "profile"
	case "email", "email_verified":
		return "email"
	case "groups":
		return "groups"
	}
	return ""
}

type userRow struct {
	ID              string       `db:"id"`
	Username        string       `db:"username"`
	Email           string       `db:"email"`
	EmailVerified   bool         `db:"email_verified"`
	Name            string       `db:"name"`
	Groups          string       `db:"user_groups"`
	PasswordHash    string       `db:"password_hash"`
	TOTPSecret      []byte       `db:"totp_secret"`
	TOTPConfirmedAt sql.NullTime `db:"totp_confirmed_at"`
	TOTPLastStep    int64        `db:"totp_last_step"`
	FailedCodes     int          `db:"failed_codes"`
	Disabled        bool         `db:"disabled"`
	CreatedAt       time.Time    `db:"created_at"`
}

const userColumns = `id, username, email, email_verified, name, user_groups, password_hash,
	totp_secret, totp_confirmed_at, totp_last_step, failed_codes, disabled, created_at`

func (s *Store) userFromRow(r userRow) (User, error) {
	u := User{
		ID: r.ID, Username: r.Username, Email: r.Email, EmailVerified: r.EmailVerified,
		Name: r.Name, PasswordHash: r.PasswordHash, TOTPLastStep: r.TOTPLastStep,
		FailedCodes: r.FailedCodes, Disabled: r.Disabled, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.Groups != "" {
		u.Groups = strings.Split(r.Groups, ",")
	}
	if r.TOTPConfirmedAt.Valid {
		u.TOTPConfirmedAt = r.TOTPConfirmedAt.Time.UTC()
	}
	if len(r.TOTPSecret) > 0 {
		secret, err := s.open(r.TOTPSecret, "totp:"+r.ID)
		if err != nil {
			return User{}, fmt.Errorf("user %q: %w", r.Username, err)
		}
		u.TOTPSecret = string(secret)
	}
	return u, nil
}

// CreateUser inserts u. A taken ID or username is ErrAlreadyExists.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	for _, g := range u.Groups {
		if strings.Contains(g, ",") {
			return fmt.Errorf("create user: group %q contains a comma", g)
		}
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	_, err := s.exec(ctx, "create user",
		`INSERT INTO users (id, username, email, email_verified, name, user_groups, password_hash, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.Email, u.EmailVerified, u.Name, strings.Join(u.Groups, ","), u.PasswordHash, utc(u.CreatedAt))
	return err
}

// GetUser returns the user with the given ID (the subject).
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	var r userRow
	if err := s.get(ctx, "get user", &r, `SELECT `+userColumns+` FROM users WHERE id = ?`, id); err != nil {
		return User{}, err
	}
	return s.userFromRow(r)
}

// GetUserByUsername returns the user with the given username.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (User, error) {
	var r userRow
	if err := s.get(ctx, "get user", &r, `SELECT `+userColumns+` FROM users WHERE username = ?`, username); err != nil {
		return User{}, err
	}
	return s.userFromRow(r)
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return s.selectUsers(ctx, "list users", `SELECT `+userColumns+` FROM users ORDER BY username`)
}

// selectUsers runs a query for user rows.
func (s *Store) selectUsers(ctx context.Context, op, query string, args ...any) ([]User, error) {
	var rows []userRow
	if err := s.sel(ctx, op, &rows, query, args...); err != nil {
		return nil, err
	}
	users := make([]User, 0, len(rows))
	for _, r := range rows {
		u, err := s.userFromRow(r)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, nil
}

// oneRow turns "no row changed" into ErrNotFound.
func oneRow(op string, n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// SetUserDisabled disables or enables a user. Disabling also ends the
// user's login sessions and revokes every code and token issued to them, in
// the same transaction: a user is never disabled with tokens still live.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "disable user", `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id)
		if err := oneRow("disable user", n, err); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		if err := s.DeleteUserLoginSessions(ctx, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, "revoke user tokens", `DELETE FROM oauth2_sessions WHERE subject = ?`, id)
		return err
	})
}

// SetPasswordHash replaces a user's password hash and ends their
// remembered devices and login sessions, all but the one with ID
// keepSessionID (the account page's own, when the user changed the
// password there; "" keeps none), in one transaction.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash, keepSessionID string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "set password", `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id)
		if err := oneRow("set password", n, err); err != nil {
			return err
		}
		if err := s.DeleteUserDevices(ctx, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, "delete login sessions",
			`DELETE FROM login_sessions WHERE user_id = ? AND id <> ?`, id, keepSessionID)
		return err
	})
}

// UpdateProfile sets a user's display name and email address. A changed
// address (other than in case) is no longer verified.
func (s *Store) UpdateProfile(ctx context.Context, id, name, email string) error {
	n, err := s.exec(ctx, "update profile",
		`UPDATE users SET name = ?, email = ?, email_verified = CASE WHEN lower(email) = lower(?) THEN email_verified ELSE ? END
		 WHERE id = ?`, name, email, email, false, id)
	return oneRow("update profile", n, err)
}

// UsersByEmail returns the users whose email address is email, compared
// without regard to case, ordered by username. No user has the empty
// address.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]User, error) {
	if email == "" {
		return nil, nil
	}
	return s.selectUsers(ctx, "users by email",
		`SELECT `+userColumns+` FROM users WHERE lower(email) = lower(?) ORDER BY username`, email)
}

// ResetTOTP forgets a user's authenticator, so the next login enrols a new
// one, lifts the lock of too many wrong codes (an administrator has
// stepped in), and voids their recovery codes, remembered devices and
// login sessions, in one transaction.
func (s *Store) ResetTOTP(ctx context.Context, id string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "reset totp",
			`UPDATE users SET totp_secret = NULL, totp_confirmed_at = NULL, failed_codes = 0 WHERE id = ?`, id)
		if err := oneRow("reset totp", n, err); err != nil {
			return err
		}
		if _, err := s.exec(ctx, "delete recovery codes", `DELETE FROM recovery_codes WHERE user_id = ?`, id); err != nil {
			return err
		}
		if err := s.DeleteUserDevices(ctx, id); err != nil {
			return err
		}
		return s.DeleteUserLoginSessions(ctx, id)
	})
}

// ConfirmTOTP makes secret the user's authenticator, consumes the time
// step its first code used and stores the hashes of the user's recovery
// codes, in one transaction. It succeeds only while the user has no
// confirmed authenticator; otherwise it returns ErrConflict.
func (s *Store) ConfirmTOTP(ctx context.Context, id, secret string, step int64, recoveryHashes []string) error {
	sealed, err := s.seal([]byte(secret), "totp:"+id)
	if err != nil {
		return fmt.Errorf("confirm totp: %w", err)
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "confirm totp",
			`UPDATE users SET totp_secret = ?, totp_confirmed_at = ?, totp_last_step = ?, failed_codes = 0
			 WHERE id = ? AND totp_secret IS NULL`,
			sealed, utc(s.now()), step, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("confirm totp: %w", ErrConflict)
		}
		return s.ReplaceRecoveryCodes(ctx, id, recoveryHashes)
	})
}

// ReplaceTOTP makes secret the user's authenticator in place of the
// confirmed one, consumes the time step the new one's first code used,
// forgets the enrolment secret of the login session sessionID and the
// user's remembered devices (they were remembered on the old
// authenticator's word, and a lost phone may be one of them), in one
// transaction. Until it runs the old authenticator keeps working. A user
// without a confirmed authenticator is ErrConflict.
func (s *Store) ReplaceTOTP(ctx context.Context, id, sessionID, secret string, step int64) error {
	sealed, err := s.seal([]byte(secret), "totp:"+id)
	if err != nil {
		return fmt.Errorf("replace totp: %w", err)
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "replace totp",
			`UPDATE users SET totp_secret = ?, totp_confirmed_at = ?, totp_last_step = ?, failed_codes = 0
			 WHERE id = ? AND totp_secret IS NOT NULL`,
			sealed, utc(s.now()), step, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("replace totp: %w", ErrConflict)
		}
		if err := s.DeleteUserDevices(ctx, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, "clear pending totp",
			`UPDATE login_sessions SET pending_totp_secret = NULL WHERE id = ? AND user_id = ?`, sessionID, id)
		return err
	})
}

// CountCodeFailure counts one second-factor attempt against the user
// before it is checked, unless max attempts are already counted; then it
// returns ErrConflict (the account is locked). It returns the count
// including this attempt. A right code resets the count (UseTOTPStep,
// ConfirmTOTP, UseRecoveryCode), so the count is of consecutive failures.
func (s *Store) CountCodeFailure(ctx context.Context, id string, max int) (int, error) {
	var n int
	err := s.get(ctx, "count code failure", &n,
		`UPDATE users SET failed_codes = failed_codes + 1 WHERE id = ? AND failed_codes < ? RETURNING failed_codes`,
		id, max)
	if errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("count code failure: %w", ErrConflict)
	}
	return n, err
}

// UnlockUser clears the user's count of failed codes, lifting the lock it
// set.
func (s *Store) UnlockUser(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "unlock user", `UPDATE users SET failed_codes = 0 WHERE id = ?`, id)
	return oneRow("unlock user", n, err)
}

// UseTOTPStep records that a code from time step was accepted and resets
// the user's failed codes. It is one conditional statement: it succeeds
// only if step is later than every step accepted before, so a code works
// once even under concurrent submissions. Otherwise it returns
// ErrConflict.
func (s *Store) UseTOTPStep(ctx context.Context, id string, step int64) error {
	n, err := s.exec(ctx, "use totp step",
		`UPDATE users SET totp_last_step = ?, failed_codes = 0 WHERE id = ? AND totp_last_step < ? AND totp_secret IS NOT NULL`,
		step, id, step)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("use totp step: %w", ErrConflict)
	}
	return nil
}
