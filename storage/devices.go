package storage

import (
	"context"
	"time"
)

// Device is a browser a user chose to remember after a TOTP code: until it
// expires, that user's password logins from it skip the code. ID is the
// hash of the browser's cookie value, never the value itself.
type Device struct {
	ID         string    `db:"id"`
	UserID     string    `db:"user_id"`
	UserAgent  string    `db:"user_agent"`
	IP         string    `db:"ip"`
	CreatedAt  time.Time `db:"created_at"`
	LastUsedAt time.Time `db:"last_used_at"`
	ExpiresAt  time.Time `db:"expires_at"`
}

const deviceColumns = `id, user_id, user_agent, ip, created_at, last_used_at, expires_at`

func (d Device) utc() Device {
	d.CreatedAt, d.LastUsedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.LastUsedAt.UTC(), d.ExpiresAt.UTC()
	return d
}

// CreateDevice remembers d.
func (s *Store) CreateDevice(ctx context.Context, d Device) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.now()
	}
	_, err := s.exec(ctx, "create device",
		`INSERT INTO remembered_devices (id, user_id, user_agent, ip, created_at, last_used_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.UserID, d.UserAgent, d.IP, utc(d.CreatedAt), utc(d.CreatedAt), utc(d.ExpiresAt))
	return err
}

// UseDevice returns the unexpired device with the given ID if it belongs
// to userID, and records that it was used. Anything else is ErrNotFound.
func (s *Store) UseDevice(ctx context.Context, id, userID string) (Device, error) {
	now := utc(s.now())
	n, err := s.exec(ctx, "use device",
		`UPDATE remembered_devices SET last_used_at = ? WHERE id = ? AND user_id = ? AND expires_at > ?`,
		now, id, userID, now)
	if err := oneRow("use device", n, err); err != nil {
		return Device{}, err
	}
	var d Device
	if err := s.get(ctx, "get device", &d, `SELECT `+deviceColumns+` FROM remembered_devices WHERE id = ?`, id); err != nil {
		return Device{}, err
	}
	return d.utc(), nil
}

// ListDevices returns the user's unexpired remembered devices, newest
// first.
func (s *Store) ListDevices(ctx context.Context, userID string) ([]Device, error) {
	var ds []Device
	if err := s.sel(ctx, "list devices", &ds,
		`SELECT `+deviceColumns+` FROM remembered_devices WHERE user_id = ? AND expires_at > ?
		 ORDER BY created_at DESC, id`, userID, utc(s.now())); err != nil {
		return nil, err
	}
	for i := range ds {
		ds[i] = ds[i].utc()
	}
	return ds, nil
}

// DeleteDevice forgets one of the user's devices; a device that is not
// theirs is ErrNotFound.
func (s *Store) DeleteDevice(ctx context.Context, userID, id string) error {
	n, err := s.exec(ctx, "delete device", `DELETE FROM remembered_devices WHERE user_id = ? AND id = ?`, userID, id)
	return oneRow("delete device", n, err)
}

// DeleteUserDevices forgets every device of the user.
func (s *Store) DeleteUserDevices(ctx context.Context, userID string) error {
	_, err := s.exec(ctx, "delete devices", `DELETE FROM remembered_devices WHERE user_id = ?`, userID)
	return err
}
