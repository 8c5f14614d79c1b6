package storage

import (
	"context"
	"database/sql"
	"time"
)

// SigningKey is a private key that signs ID tokens. PrivateKey is PKCS #8
// DER, in the clear here and sealed in the database.
type SigningKey struct {
	ID         string
	Algorithm  string
	PrivateKey []byte
	CreatedAt  time.Time
	// RetiredAt is when the key stopped signing (a newer key of the same
	// algorithm took over); zero while it is the newest of its algorithm.
	RetiredAt time.Time
}

// CreateSigningKey stores k and retires the keys of its algorithm before
// it, in one transaction, so exactly one key per algorithm signs.
func (s *Store) CreateSigningKey(ctx context.Context, k SigningKey) error {
	sealed, err := s.seal(k.PrivateKey, "signing-key:"+k.ID)
	if err != nil {
		return err
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, "retire signing keys",
			`UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND algorithm = ?`,
			utc(k.CreatedAt), k.Algorithm); err != nil {
			return err
		}
		_, err := s.exec(ctx, "create signing key",
			`INSERT INTO signing_keys (id, algorithm, private_key, created_at) VALUES (?, ?, ?, ?)`,
			k.ID, k.Algorithm, sealed, utc(k.CreatedAt))
		return err
	})
}

// ListSigningKeys returns the keys retired after `since` or not retired,
// newest first.
func (s *Store) ListSigningKeys(ctx context.Context, since time.Time) ([]SigningKey, error) {
	var rows []struct {
		ID         string       `db:"id"`
		Algorithm  string       `db:"algorithm"`
		PrivateKey []byte       `db:"private_key"`
		CreatedAt  time.Time    `db:"created_at"`
		RetiredAt  sql.NullTime `db:"retired_at"`
	}
	if err := s.sel(ctx, "list signing keys", &rows,
		`SELECT id, algorithm, private_key, created_at, retired_at FROM signing_keys
		 WHERE retired_at IS NULL OR retired_at > ? ORDER BY created_at DESC, id DESC`, utc(since)); err != nil {
		return nil, err
	}
	keys := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		der, err := s.open(r.PrivateKey, "signing-key:"+r.ID)
		if err != nil {
			return nil, err
		}
		k := SigningKey{ID: r.ID, Algorithm: r.Algorithm, PrivateKey: der, CreatedAt: r.CreatedAt.UTC()}
		if r.RetiredAt.Valid {
			k.RetiredAt = r.RetiredAt.Time.UTC()
		}
		keys = append(keys, k)
	}
	return keys, nil
}
