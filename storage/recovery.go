package storage

import (
	"context"
	"fmt"
)

// ReplaceRecoveryCodes makes hashes the user's recovery codes, voiding the
// ones before, in one transaction. Only hashes are stored: the codes are
// shown to the user once.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, "delete recovery codes", `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		now := utc(s.now())
		for _, h := range hashes {
			if _, err := s.exec(ctx, "create recovery code",
				`INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`, userID, h, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// UseRecoveryCode spends the user's unused recovery code with the given
// hash and resets their failed codes, in one transaction, and returns how
// many unused codes remain. Spending is one conditional update, so a code
// works once even under concurrent submissions; an unknown or spent code
// is ErrNotFound.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string) (remaining int, err error) {
	err = s.inTx(ctx, func(ctx context.Context) error {
		n, err := s.exec(ctx, "use recovery code",
			`UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`,
			utc(s.now()), userID, hash)
		if err := oneRow("use recovery code", n, err); err != nil {
			return err
		}
		if _, err := s.exec(ctx, "reset failed codes", `UPDATE users SET failed_codes = 0 WHERE id = ?`, userID); err != nil {
			return err
		}
		remaining, err = s.RecoveryCodesLeft(ctx, userID)
		return err
	})
	return remaining, err
}

// RecoveryCodesLeft returns how many unused recovery codes the user has.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.get(ctx, "count recovery codes", &n,
		`SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}
