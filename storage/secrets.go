package storage

import (
	"context"
	"encoding/binary"
	"fmt"
)

// sealedColumns are the columns that hold sealed values, with the prefix of
// the associated data each row's value is bound to (prefix + row ID).
var sealedColumns = []struct{ table, column, aad string }{
	{"users", "totp_secret", "totp:"},
	{"login_sessions", "pending_totp_secret", "pending-totp:"},
	{"signing_keys", "private_key", "signing-key:"},
}

// ResealSecrets re-encrypts every sealed value that an older key sealed
// under the newest key, in one transaction, and returns how many it
// rewrote. Afterwards the older keys can be dropped from the ring. A value
// no configured key opens fails the whole run and changes nothing.
func (s *Store) ResealSecrets(ctx context.Context) (int, error) {
	total := 0
	err := s.inTx(ctx, func(ctx context.Context) error {
		for _, c := range sealedColumns {
			var rows []struct {
				ID     string `db:"id"`
				Sealed []byte `db:"sealed"`
			}
			if err := s.sel(ctx, "read sealed values", &rows,
				`SELECT id, `+c.column+` AS sealed FROM `+c.table+` WHERE `+c.column+` IS NOT NULL`); err != nil {
				return err
			}
			for _, r := range rows {
				if len(r.Sealed) >= 4 && binary.BigEndian.Uint32(r.Sealed) == s.sealVersion {
					continue
				}
				plain, err := s.open(r.Sealed, c.aad+r.ID)
				if err != nil {
					return fmt.Errorf("%s.%s of %q: %w", c.table, c.column, r.ID, err)
				}
				sealed, err := s.seal(plain, c.aad+r.ID)
				if err != nil {
					return err
				}
				if _, err := s.exec(ctx, "reseal value",
					`UPDATE `+c.table+` SET `+c.column+` = ? WHERE id = ?`, sealed, r.ID); err != nil {
					return err
				}
				total++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reseal secrets: %w", err)
	}
	return total, nil
}
