package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/twostep/twostep/storage"
)

var recoveryCodeTests = []test{
	{"RecoveryCodes/ReplaceUse", testRecoveryCodeReplaceUse},
	{"RecoveryCodes/WithTOTP", testRecoveryCodesWithTOTP},
}

// testRecoveryCodeReplaceUse walks a user's recovery codes through use,
// reuse, replacement and a failed replacement.
func testRecoveryCodeReplaceUse(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 0 {
		t.Errorf("codes left before any: got %d, %v, want 0", n, err)
	}
	replace := func(hashes ...string) func() (int, error) {
		return func() (int, error) {
			if err := s.ReplaceRecoveryCodes(ctx, "id-alice", hashes); err != nil {
				return 0, err
			}
			return s.RecoveryCodesLeft(ctx, "id-alice")
		}
	}
	use := func(user, hash string) func() (int, error) {
		return func() (int, error) { return s.UseRecoveryCode(ctx, user, hash) }
	}
	left := func() (int, error) { return s.RecoveryCodesLeft(ctx, "id-alice") }
	steps := []struct {
		name    string
		op      func() (int, error)
		want    int // codes remaining
		wantErr error
	}{
		{"store three", replace("hash-1", "hash-2", "hash-3"), 3, nil},
		{"use one", use("id-alice", "hash-1"), 2, nil},
		{"use it again", use("id-alice", "hash-1"), 0, storage.ErrNotFound},
		{"use an unknown code", use("id-alice", "hash-9"), 0, storage.ErrNotFound},
		{"use another user's code", use("id-bob", "hash-2"), 0, storage.ErrNotFound},
		{"another user's attempt spent nothing", left, 2, nil},
		{"use a second", use("id-alice", "hash-3"), 1, nil},
		{"replace voids the old ones", replace("hash-4", "hash-5"), 2, nil},
		{"an old unused code", use("id-alice", "hash-2"), 0, storage.ErrNotFound},
		{"a new code", use("id-alice", "hash-4"), 1, nil},
		{"a failed replace changes nothing", replace("hash-6", "hash-6"), 0, storage.ErrAlreadyExists},
		{"the codes before it still work", use("id-alice", "hash-5"), 0, nil},
		{"the code it tried to add does not", use("id-alice", "hash-6"), 0, storage.ErrNotFound},
		{"replace with none", replace(), 0, nil},
	}
	for _, st := range steps {
		got, err := st.op()
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if got != st.want {
			t.Errorf("%s: got %d codes remaining, want %d", st.name, got, st.want)
		}
	}
	if n, err := s.RecoveryCodesLeft(ctx, "id-bob"); err != nil || n != 0 {
		t.Errorf("another user's codes left: got %d, %v, want 0", n, err)
	}
	// Replacing deletes the spent codes too, not only the unused ones.
	var rows int
	query := rebind(s, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?`)
	if err := s.DB().QueryRowContext(ctx, query, "id-alice").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("after replacing with none: got %d rows, %v, want 0", rows, err)
	}
}

// testRecoveryCodesWithTOTP checks how recovery codes follow the
// authenticator: stored when it is confirmed, kept when a second
// confirmation is refused, voided when it is reset, and a used code clears
// the count of wrong codes.
func testRecoveryCodesWithTOTP(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	if err := s.ConfirmTOTP(ctx, "id-alice", "JBSWY3DPEHPK3PXP", 10, []string{"hash-1", "hash-2", "hash-3"}); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 3 {
		t.Errorf("codes left after confirming: got %d, %v, want 3", n, err)
	}
	err := s.ConfirmTOTP(ctx, "id-alice", "OTHERSECRET23456", 20, []string{"hash-9"})
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("confirm again: got %v, want storage.ErrConflict", err)
	}
	if _, err := s.UseRecoveryCode(ctx, "id-alice", "hash-9"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("use a code of the refused confirmation: got %v, want storage.ErrNotFound", err)
	}

	for want := 1; want <= 2; want++ {
		if n, err := s.CountCodeFailure(ctx, "id-alice", 5); err != nil || n != want {
			t.Fatalf("count a code failure: got %d, %v, want %d", n, err, want)
		}
	}
	if n, err := s.UseRecoveryCode(ctx, "id-alice", "hash-2"); err != nil || n != 2 {
		t.Errorf("use a code: got %d remaining, %v, want 2", n, err)
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.FailedCodes != 0 {
		t.Errorf("after a recovery code: got %d failed codes, %v, want 0", u.FailedCodes, err)
	}

	if err := s.ResetTOTP(ctx, "id-alice"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 0 {
		t.Errorf("codes left after reset: got %d, %v, want 0", n, err)
	}
	if _, err := s.UseRecoveryCode(ctx, "id-alice", "hash-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("use a code after reset: got %v, want storage.ErrNotFound", err)
	}
}
