package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// The purposes of an AccountToken: what its link lets the holder do.
const (
	// PurposeInvite: an administrator invited Email; the link creates the
	// account (Username, Groups) with a password and an authenticator.
	PurposeInvite = "invite"
	// PurposeRegister: someone registered Email themselves; following the
	// link proves the address and creates the account like an invitation.
	PurposeRegister = "register"
	// PurposeVerifyEmail: UserID changed their address to Email; the link
	// marks it verified.
	PurposeVerifyEmail = "verify-email"
	// PurposeResetPassword: UserID forgot their password; the link lets
	// them set a new one, with a code from their authenticator.
	PurposeResetPassword = "reset-password"
)

// AccountToken is a one-time link twostep mails or prints. ID is the hash
// of the link's secret, never the secret itself.
type AccountToken struct {
	ID        string
	Purpose   string
	UserID    string
	Email     string
	Username  string
	Groups    []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

type accountTokenRow struct {
	ID        string       `db:"id"`
	Purpose   string       `db:"purpose"`
	UserID    string       `db:"user_id"`
	Email     string       `db:"email"`
	Username  string       `db:"username"`
	Groups    string       `db:"user_groups"`
	CreatedAt time.Time    `db:"created_at"`
	ExpiresAt time.Time    `db:"expires_at"`
	UsedAt    sql.NullTime `db:"used_at"`
}

// CreateAccountToken stores t.
func (s *Store) CreateAccountToken(ctx context.Context, t AccountToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	for _, g := range t.Groups {
		if strings.Contains(g, ",") {
			return fmt.Errorf("create account token: group %q contains a comma", g)
		}
	}
	_, err := s.exec(ctx, "create account token",
		`INSERT INTO account_tokens (id, purpose, user_id, email, username, user_groups, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Purpose, t.UserID, t.Email, t.Username, strings.Join(t.Groups, ","), utc(t.CreatedAt), utc(t.ExpiresAt))
	return err
}

// GetAccountToken returns the unused, unexpired token with the given ID
// and purpose; anything else is ErrNotFound.
func (s *Store) GetAccountToken(ctx context.Context, purpose, id string) (AccountToken, error) {
	var r accountTokenRow
	if err := s.get(ctx, "get account token", &r,
		`SELECT id, purpose, user_id, email, username, user_groups, created_at, expires_at, used_at
		 FROM account_tokens WHERE id = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`,
		id, purpose, utc(s.now())); err != nil {
		return AccountToken{}, err
	}
	t := AccountToken{
		ID: r.ID, Purpose: r.Purpose, UserID: r.UserID, Email: r.Email, Username: r.Username,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
	if r.Groups != "" {
		t.Groups = strings.Split(r.Groups, ",")
	}
	return t, nil
}

// useAccountToken spends the token: one conditional update, so of several
// callers only one succeeds; the others, and a spent, expired or unknown
// token, get ErrNotFound.
func (s *Store) useAccountToken(ctx context.Context, purpose, id string) error {
	now := utc(s.now())
	n, err := s.exec(ctx, "use account token",
		`UPDATE account_tokens SET used_at = ? WHERE id = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`,
		now, id, purpose, now)
	return oneRow("use account token", n, err)
}

// CreateUserWithToken spends an invitation or registration token and
// creates u, in one transaction: a taken username (ErrAlreadyExists)
// leaves the token unspent, and a spent token (ErrNotFound) creates no
// one.
func (s *Store) CreateUserWithToken(ctx context.Context, purpose, tokenID string, u User) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.useAccountToken(ctx, purpose, tokenID); err != nil {
			return err
		}
		return s.CreateUser(ctx, u)
	})
}

// VerifyEmailWithToken spends an email verification token and marks the
// user's address verified, in one transaction, if it is still the address
// the token was sent to; otherwise (ErrNotFound) nothing changes.
func (s *Store) VerifyEmailWithToken(ctx context.Context, tokenID string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		t, err := s.GetAccountToken(ctx, PurposeVerifyEmail, tokenID)
		if err != nil {
			return err
		}
		if err := s.useAccountToken(ctx, PurposeVerifyEmail, tokenID); err != nil {
			return err
		}
		n, err := s.exec(ctx, "verify email",
			`UPDATE users SET email_verified = ? WHERE id = ? AND email = ?`, true, t.UserID, t.Email)
		return oneRow("verify email", n, err)
	})
}

// ResetPasswordWithToken spends a password reset token of userID and sets
// the user's password hash, in one transaction. Like SetPasswordHash it
// ends the user's login sessions and remembered devices, and it voids the
// user's other reset links. A spent or expired token, or one of another
// user, is ErrNotFound and changes nothing.
func (s *Store) ResetPasswordWithToken(ctx context.Context, tokenID, userID, hash string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		t, err := s.GetAccountToken(ctx, PurposeResetPassword, tokenID)
		if err != nil {
			return err
		}
		if t.UserID != userID {
			return fmt.Errorf("reset password: token of another user: %w", ErrNotFound)
		}
		if err := s.useAccountToken(ctx, PurposeResetPassword, tokenID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, "void reset tokens",
			`DELETE FROM account_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
			userID, PurposeResetPassword); err != nil {
			return err
		}
		return s.SetPasswordHash(ctx, userID, hash, "")
	})
}
