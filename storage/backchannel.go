package storage

import (
	"context"
	"fmt"
	"time"
)

// SessionClient records that a completed login session, named by its sid,
// signed its user in to a client that takes back-channel logouts (OpenID
// Connect Back-Channel Logout 1.0): when the session ends, that client is
// told.
type SessionClient struct {
	SID      string
	ClientID string
	UserID   string
	// ExpiresAt is when the login session expires; the record goes then.
	ExpiresAt time.Time
}

// AddSessionClient records sc. Recording a sid and client again changes
// nothing.
func (s *Store) AddSessionClient(ctx context.Context, sc SessionClient) error {
	_, err := s.exec(ctx, "add session client",
		`INSERT INTO session_clients (sid, client_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (sid, client_id) DO NOTHING`,
		sc.SID, sc.ClientID, sc.UserID, utc(s.now()), utc(sc.ExpiresAt))
	return err
}

// BackchannelLogout is a logout notification waiting to be delivered to a
// client's back-channel logout URI. It holds what the logout token says,
// not a token: each attempt signs a fresh one, so that a retry does not
// carry an expired token.
type BackchannelLogout struct {
	ID       string
	ClientID string
	// UserID and SID are the logout token's sub and sid.
	UserID string
	SID    string
	URI    string
	// Attempts counts the deliveries tried, a claimed one included.
	Attempts      int
	NextAttemptAt time.Time
	CreatedAt     time.Time
}

type backchannelLogoutRow struct {
	ID            string    `db:"id"`
	ClientID      string    `db:"client_id"`
	UserID        string    `db:"user_id"`
	SID           string    `db:"sid"`
	URI           string    `db:"uri"`
	Attempts      int       `db:"attempts"`
	NextAttemptAt time.Time `db:"next_attempt_at"`
	CreatedAt     time.Time `db:"created_at"`
}

// QueueBackchannelLogouts ends the session sid: it forgets which clients
// the session signed in to and queues, due at once, a logout for each of
// them that has a back-channel logout URI (the URI registered now). It
// returns how many it queued. It runs in one transaction, and of several
// callers for one sid only one queues anything.
func (s *Store) QueueBackchannelLogouts(ctx context.Context, sid string) (int64, error) {
	var queued int64
	err := s.inTx(ctx, func(ctx context.Context) error {
		now := utc(s.now())
		// The ID is the sid and the client ID (which has no spaces): one
		// logout per client and session, whoever queues it.
		n, err := s.exec(ctx, "queue backchannel logouts",
			`INSERT INTO backchannel_logouts (id, client_id, user_id, sid, uri, attempts, next_attempt_at, created_at)
			 SELECT sc.sid || ' ' || sc.client_id, sc.client_id, sc.user_id, sc.sid, c.backchannel_logout_uri, 0, ?, ?
			 FROM session_clients sc JOIN clients c ON c.id = sc.client_id
			 WHERE sc.sid = ? AND c.backchannel_logout_uri <> ''
			 ON CONFLICT (id) DO NOTHING`, now, now, sid)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, "queue backchannel logouts", `DELETE FROM session_clients WHERE sid = ?`, sid); err != nil {
			return err
		}
		queued = n
		return nil
	})
	return queued, err
}

// ClaimBackchannelLogouts claims up to limit logouts that are due, oldest
// first, for one delivery attempt each: their Attempts goes up by one and
// they are not due again until lease has passed, so that a claimer that
// dies mid-delivery is retried by another. Each row is claimed by one
// conditional update: of several instances claiming at once, exactly one
// gets it.
func (s *Store) ClaimBackchannelLogouts(ctx context.Context, limit int, lease time.Duration) ([]BackchannelLogout, error) {
	now := utc(s.now())
	var rows []backchannelLogoutRow
	if err := s.sel(ctx, "claim backchannel logouts", &rows,
		`SELECT id, client_id, user_id, sid, uri, attempts, next_attempt_at, created_at
		 FROM backchannel_logouts WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, now, limit); err != nil {
		return nil, err
	}
	until := utc(now.Add(lease))
	var claimed []BackchannelLogout
	for _, r := range rows {
		n, err := s.exec(ctx, "claim backchannel logout",
			`UPDATE backchannel_logouts SET attempts = attempts + 1, next_attempt_at = ?
			 WHERE id = ? AND attempts = ? AND next_attempt_at <= ?`, until, r.ID, r.Attempts, now)
		if err != nil {
			return claimed, err
		}
		if n == 0 {
			continue // another claimer took it
		}
		claimed = append(claimed, BackchannelLogout{
			ID: r.ID, ClientID: r.ClientID, UserID: r.UserID, SID: r.SID, URI: r.URI,
			Attempts: r.Attempts + 1, NextAttemptAt: until, CreatedAt: r.CreatedAt.UTC(),
		})
	}
	return claimed, nil
}

// RetryBackchannelLogout makes a claimed logout due again at `at`, after
// a failed attempt. attempts is the claim's Attempts: if the logout was
// claimed again since (the lease ran out) or is gone, nothing changes and
// it returns ErrConflict.
func (s *Store) RetryBackchannelLogout(ctx context.Context, id string, attempts int, at time.Time) error {
	n, err := s.exec(ctx, "retry backchannel logout",
		`UPDATE backchannel_logouts SET next_attempt_at = ? WHERE id = ? AND attempts = ?`, utc(at), id, attempts)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("retry backchannel logout: %w", ErrConflict)
	}
	return nil
}

// DeleteBackchannelLogout removes a logout that was delivered or given
// up; a missing one is not an error.
func (s *Store) DeleteBackchannelLogout(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "delete backchannel logout", `DELETE FROM backchannel_logouts WHERE id = ?`, id)
	return err
}
