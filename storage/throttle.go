package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxReserveRounds bounds how often ReserveAttempt retries after losing a
// race to a concurrent attempt on the same key.
const maxReserveRounds = 8

// ReserveAttempt counts one attempt against key as a failure before the
// caller checks it, unless the key is blocked. delay(n) is how long the key
// stays blocked after n failures; failures recorded more than forget ago
// are forgotten. It returns ok=false and the end of the block when the key
// is blocked. The caller clears the count with ResetThrottle, or gives the
// attempt back with RefundAttempt, when the attempt succeeds.
//
// Counting before checking makes the limit exact under concurrency: each
// attempt is one compare-and-swap on the row, so a burst of parallel
// guesses cannot all slip through a back-off that none of them has
// recorded yet. Losing the swap to a concurrent attempt re-reads the row.
func (s *Store) ReserveAttempt(ctx context.Context, key string, delay func(failures int) time.Duration, forget time.Duration) (ok bool, blockedUntil time.Time, err error) {
	for range maxReserveRounds {
		now := utc(s.now())
		var row struct {
			Failures     int       `db:"failures"`
			BlockedUntil time.Time `db:"blocked_until"`
		}
		err := s.get(ctx, "read throttle", &row,
			`SELECT failures, blocked_until FROM throttles WHERE throttle_key = ?`, key)
		switch {
		case errors.Is(err, ErrNotFound):
			n, err := s.exec(ctx, "reserve attempt",
				`INSERT INTO throttles (throttle_key, failures, blocked_until) VALUES (?, 1, ?)
				 ON CONFLICT (throttle_key) DO NOTHING`,
				key, utc(now.Add(delay(1))))
			if err != nil {
				return false, time.Time{}, err
			}
			if n == 1 {
				return true, time.Time{}, nil
			}
			continue // a concurrent attempt created the row first
		case err != nil:
			return false, time.Time{}, err
		}
		if until := row.BlockedUntil.UTC(); until.After(now) {
			return false, until, nil
		}
		failures := row.Failures
		if row.BlockedUntil.Before(now.Add(-forget)) {
			failures = 0
		}
		n, err := s.exec(ctx, "reserve attempt",
			`UPDATE throttles SET failures = ?, blocked_until = ?
			 WHERE throttle_key = ? AND failures = ? AND blocked_until = ?`,
			failures+1, utc(now.Add(delay(failures+1))), key, row.Failures, row.BlockedUntil)
		if err != nil {
			return false, time.Time{}, err
		}
		if n == 1 {
			return true, time.Time{}, nil
		}
	}
	// Every round lost to a concurrent attempt: the key is under a burst.
	return false, utc(s.now()), nil
}

// RefundAttempt gives back an attempt that ReserveAttempt counted and that
// turned out to succeed, for keys a success must not clear (a shared IP
// address). The block it may have set stays until it ends.
func (s *Store) RefundAttempt(ctx context.Context, key string) error {
	_, err := s.exec(ctx, "refund attempt",
		`UPDATE throttles SET failures = failures - 1 WHERE throttle_key = ? AND failures > 0`, key)
	return err
}

// ThrottleFailures returns how many failures are counted against key and
// until when it is blocked; an unknown key has none.
func (s *Store) ThrottleFailures(ctx context.Context, key string) (int, time.Time, error) {
	var row struct {
		Failures     int       `db:"failures"`
		BlockedUntil time.Time `db:"blocked_until"`
	}
	err := s.get(ctx, "read throttle", &row,
		`SELECT failures, blocked_until FROM throttles WHERE throttle_key = ?`, key)
	if errors.Is(err, ErrNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read throttle: %w", err)
	}
	return row.Failures, row.BlockedUntil.UTC(), nil
}

// ResetThrottle forgets the failures counted against key.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	_, err := s.exec(ctx, "reset throttle", `DELETE FROM throttles WHERE throttle_key = ?`, key)
	return err
}
