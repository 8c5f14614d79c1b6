package storage

import (
	"context"
	"time"
)

// Hit counts one attempt against key in a fixed window and returns the
// count in the current window, including this one. A window older than
// `window` starts over. It is one upsert, so concurrent attempts on every
// instance are all counted.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int, error) {
	now := utc(s.now())
	var hits int
	err := s.get(ctx, "throttle", &hits,
		`INSERT INTO throttles (throttle_key, hits, window_start) VALUES (?, 1, ?)
		 ON CONFLICT (throttle_key) DO UPDATE SET
		   hits = CASE WHEN throttles.window_start < ? THEN 1 ELSE throttles.hits + 1 END,
		   window_start = CASE WHEN throttles.window_start < ? THEN excluded.window_start ELSE throttles.window_start END
		 RETURNING hits`,
		key, now, now.Add(-window), now.Add(-window))
	return hits, err
}

// ResetThrottle forgets the attempts counted against key.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	_, err := s.exec(ctx, "reset throttle", `DELETE FROM throttles WHERE throttle_key = ?`, key)
	return err
}
