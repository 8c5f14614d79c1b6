package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Grant is a user's remembered consent for a client: the scopes they allowed.
type Grant struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Covers reports whether every scope in scopes was granted.
func (g Grant) Covers(scopes []string) bool {
	have := make(map[string]bool, len(g.Scopes))
	for _, s := range g.Scopes {
		have[s] = true
	}
	for _, s := range scopes {
		if !have[s] {
			return false
		}
	}
	return true
}

// GetGrant returns the user's grant for the client, or ErrNotFound.
func (s *Store) GetGrant(ctx context.Context, userID, clientID string) (Grant, error) {
	var r struct {
		Scopes    string    `db:"scopes"`
		CreatedAt time.Time `db:"created_at"`
		UpdatedAt time.Time `db:"updated_at"`
	}
	if err := s.get(ctx, "get grant", &r,
		`SELECT scopes, created_at, updated_at FROM grants WHERE user_id = ? AND client_id = ?`, userID, clientID); err != nil {
		return Grant{}, err
	}
	return Grant{UserID: userID, ClientID: clientID, Scopes: strings.Fields(r.Scopes),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// SaveGrant records that the user allowed scopes for the client, adding
// them to what was granted before. Concurrent saves must not lose each
// other's scopes, and the union cannot be computed in portable SQL, so it
// is a compare-and-swap: the first grant is one INSERT that does nothing if
// a row appeared meanwhile; a later one is one UPDATE that applies only if
// the scopes are still those read; a lost race reads again.
func (s *Store) SaveGrant(ctx context.Context, userID, clientID string, scopes []string) error {
	for range saveGrantAttempts {
		now := utc(s.now())
		var old string
		err := s.get(ctx, "save grant", &old,
			`SELECT scopes FROM grants WHERE user_id = ? AND client_id = ?`, userID, clientID)
		var n int64
		switch {
		case errors.Is(err, ErrNotFound):
			n, err = s.exec(ctx, "save grant",
				`INSERT INTO grants (user_id, client_id, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
				 ON CONFLICT (user_id, client_id) DO NOTHING`,
				userID, clientID, strings.Join(union(nil, scopes), " "), now, now)
		case err != nil:
			return err
		default:
			n, err = s.exec(ctx, "save grant",
				`UPDATE grants SET scopes = ?, updated_at = ? WHERE user_id = ? AND client_id = ? AND scopes = ?`,
				strings.Join(union(strings.Fields(old), scopes), " "), now, userID, clientID, old)
		}
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
	}
	return fmt.Errorf("save grant: %w: too many concurrent updates", ErrConflict)
}

// saveGrantAttempts bounds SaveGrant's retries; each lost race means
// another save committed, so running out takes a storm of consents to one
// grant.
const saveGrantAttempts = 100

// DeleteGrant forgets a user's consent for a client.
func (s *Store) DeleteGrant(ctx context.Context, userID, clientID string) error {
	n, err := s.exec(ctx, "delete grant", `DELETE FROM grants WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return oneRow("delete grant", n, err)
}

// ListGrants returns the user's grants, ordered by client ID.
func (s *Store) ListGrants(ctx context.Context, userID string) ([]Grant, error) {
	var rows []struct {
		ClientID  string    `db:"client_id"`
		Scopes    string    `db:"scopes"`
		CreatedAt time.Time `db:"created_at"`
		UpdatedAt time.Time `db:"updated_at"`
	}
	if err := s.sel(ctx, "list grants", &rows,
		`SELECT client_id, scopes, created_at, updated_at FROM grants WHERE user_id = ? ORDER BY client_id`, userID); err != nil {
		return nil, err
	}
	grants := make([]Grant, 0, len(rows))
	for _, r := range rows {
		grants = append(grants, Grant{UserID: userID, ClientID: r.ClientID, Scopes: strings.Fields(r.Scopes),
			CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()})
	}
	return grants, nil
}

// RevokeGrant forgets the user's consent for the client and revokes every
// code and token issued to the client for the user, in one transaction.
// A grant that does not exist is ErrNotFound and revokes nothing.
func (s *Store) RevokeGrant(ctx context.Context, userID, clientID string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.DeleteGrant(ctx, userID, clientID); err != nil {
			return err
		}
		_, err := s.exec(ctx, "revoke client tokens",
			`DELETE FROM oauth2_sessions WHERE subject = ? AND client_id = ?`, userID, clientID)
		return err
	})
}

func union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var out []string
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
