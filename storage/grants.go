package storage

import (
	"context"
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
// them to what was granted before, in one upsert.
func (s *Store) SaveGrant(ctx context.Context, userID, clientID string, scopes []string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		merged := scopes
		if g, err := s.GetGrant(ctx, userID, clientID); err == nil {
			merged = union(g.Scopes, scopes)
		}
		now := utc(s.now())
		_, err := s.exec(ctx, "save grant",
			`INSERT INTO grants (user_id, client_id, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
			userID, clientID, strings.Join(merged, " "), now, now)
		return err
	})
}

// DeleteGrant forgets a user's consent for a client.
func (s *Store) DeleteGrant(ctx context.Context, userID, clientID string) error {
	n, err := s.exec(ctx, "delete grant", `DELETE FROM grants WHERE user_id = ? AND client_id = ?`, userID, clientID)
	return oneRow("delete grant", n, err)
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
