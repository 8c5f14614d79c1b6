package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

var concurrencyTests = []test{
	{"Concurrent/Once", testConcurrentOnce},
	{"Concurrent/ConfirmTOTPKeepsWinnersCodes", testConcurrentConfirmTOTP},
	{"Concurrent/UseRecoveryCode", testConcurrentUseRecoveryCode},
	{"Concurrent/CodeFailureCaps", testConcurrentCodeFailureCaps},
	{"Concurrent/ReserveAttempt", testConcurrentReserveAttempt},
	{"Concurrent/SaveGrant", testConcurrentSaveGrant},
}

// racers is how many goroutines race for what must happen once.
const racers = 8

// race runs op(i) for i in [0, racers) at once and returns the errors.
func race(op func(i int) error) []error {
	return raceN(racers, op)
}

// raceN runs op(i) for i in [0, n) at once and returns the errors.
func raceN(n int, op func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = op(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// testConcurrentOnce races callers of each operation that must succeed
// once: exactly one wins, every other gets the operation's "already done"
// error, never a database error.
func testConcurrentOnce(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	if err := s.ConfirmTOTP(ctx, "id-alice", "JBSWY3DPEHPK3PXP", 10, nil); err != nil {
		t.Fatal(err)
	}
	req := newRequest(clk, "client-1", "request-1", "id-alice")
	if err := s.CreateAuthorizeCodeSession(ctx, "code-1", req); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "refresh-1", "access-1", req); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"auth-1", "auth-2"} {
		if err := s.CreateAuthRequest(ctx, newAuthRequest(clk, id)); err != nil {
			t.Fatal(err)
		}
	}
	createLoginSession(t, s, clk, "login-1", storage.StatePassword, "")

	tests := []struct {
		name    string
		op      func(i int) error
		wantErr error // what the losers get
	}{
		{"InvalidateAuthorizeCodeSession", func(int) error {
			return s.InvalidateAuthorizeCodeSession(ctx, "code-1")
		}, fosite.ErrInvalidatedAuthorizeCode},
		{"RotateRefreshToken", func(int) error {
			return s.RotateRefreshToken(ctx, "request-1", "refresh-1")
		}, fosite.ErrInactiveToken},
		{"UseTOTPStep", func(int) error {
			return s.UseTOTPStep(ctx, "id-alice", 11)
		}, storage.ErrConflict},
		{"ConfirmTOTP", func(i int) error {
			return s.ConfirmTOTP(ctx, "id-bob", fmt.Sprintf("SECRET%02dABCDEFGHIJ", i), 10, nil)
		}, storage.ErrConflict},
		{"DecideAuthRequest", func(i int) error {
			return s.DecideAuthRequest(ctx, "auth-1", fmt.Sprintf("id-%d", i), storage.ConsentGranted)
		}, storage.ErrConflict},
		{"DeleteAuthRequest", func(int) error {
			return s.DeleteAuthRequest(ctx, "auth-2")
		}, storage.ErrNotFound},
		{"AdvanceLoginSession", func(i int) error {
			next := storage.LoginSession{
				ID: fmt.Sprintf("login-next-%d", i), State: storage.StateTOTP, UserID: "id-alice",
				CSRFToken: "c", ExpiresAt: clk.Now().Add(time.Hour),
			}
			return s.AdvanceLoginSession(ctx, "login-1", storage.StatePassword, next)
		}, storage.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wins := 0
			for i, err := range race(tc.op) {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, tc.wantErr):
					t.Errorf("racer %d: got %v, want nil or %v", i, err, tc.wantErr)
				}
			}
			if wins != 1 {
				t.Errorf("got %d winners, want exactly 1", wins)
			}
		})
	}
}

// testConcurrentConfirmTOTP checks that the recovery codes stored are
// those of the one confirmation that won, not of a loser.
func testConcurrentConfirmTOTP(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	secret := func(i int) string { return fmt.Sprintf("SECRET%02dABCDEFGHIJ", i) }
	codes := func(i int) []string { return []string{fmt.Sprintf("hash-%d-a", i), fmt.Sprintf("hash-%d-b", i)} }
	winner := -1
	for i, err := range race(func(i int) error {
		return s.ConfirmTOTP(ctx, "id-alice", secret(i), 10, codes(i))
	}) {
		switch {
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("racer %d: got %v, want nil or storage.ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("got no winner, want one")
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.TOTPSecret != secret(winner) {
		t.Errorf("got secret %q, %v, want the winner's %q", u.TOTPSecret, err, secret(winner))
	}
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 2 {
		t.Errorf("got %d recovery codes, %v, want the winner's 2", n, err)
	}
	for _, h := range codes(winner) {
		if _, err := s.UseRecoveryCode(ctx, "id-alice", h); err != nil {
			t.Errorf("use the winner's recovery code %s: got %v, want nil", h, err)
		}
	}
}

// testConcurrentUseRecoveryCode races 10 submissions of one recovery code:
// exactly one spends it.
func testConcurrentUseRecoveryCode(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	if err := s.ReplaceRecoveryCodes(ctx, "id-alice", []string{"hash-1", "hash-2", "hash-3"}); err != nil {
		t.Fatal(err)
	}
	remaining := make([]int, 10)
	wins := 0
	for i, err := range raceN(len(remaining), func(i int) error {
		var err error
		remaining[i], err = s.UseRecoveryCode(ctx, "id-alice", "hash-2")
		return err
	}) {
		switch {
		case err == nil:
			wins++
			if remaining[i] != 2 {
				t.Errorf("winner %d: got %d codes remaining, want 2", i, remaining[i])
			}
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("racer %d: got %v, want nil or storage.ErrNotFound", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("got %d winners, want exactly 1", wins)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 2 {
		t.Errorf("got %d codes left, %v, want 2", n, err)
	}
}

// testConcurrentCodeFailureCaps races more wrong codes than the cap
// allows: exactly the cap are counted, every other attempt is refused.
func testConcurrentCodeFailureCaps(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const attempts, max = 20, 5
	createUser(t, s, "id-alice", "alice")
	createLoginSession(t, s, clk, "login-1", storage.StateTOTP, "id-alice")
	counts := make([]int, attempts)
	tests := []struct {
		name       string
		op         func(i int) error
		wantCounts bool // the winners' counts are 1 to max, each once
		failed     func() (int, error)
	}{
		{"CountCodeFailure", func(i int) error {
			var err error
			counts[i], err = s.CountCodeFailure(ctx, "id-alice", max)
			return err
		}, true, func() (int, error) {
			u, err := s.GetUser(ctx, "id-alice")
			return u.FailedCodes, err
		}},
		{"CountSessionCodeFailure", func(i int) error {
			return s.CountSessionCodeFailure(ctx, "login-1", max)
		}, false, func() (int, error) {
			ls, err := s.GetLoginSession(ctx, "login-1")
			return ls.FailedCodes, err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var won []int
			for i, err := range raceN(attempts, tc.op) {
				switch {
				case err == nil:
					won = append(won, counts[i])
				case !errors.Is(err, storage.ErrConflict):
					t.Errorf("racer %d: got %v, want nil or storage.ErrConflict", i, err)
				}
			}
			if len(won) != max {
				t.Errorf("got %d attempts counted, want exactly %d", len(won), max)
			}
			if tc.wantCounts {
				slices.Sort(won)
				if !slices.Equal(won, []int{1, 2, 3, 4, 5}) {
					t.Errorf("got counts %v, want 1 to %d, each once", won, max)
				}
			}
			if n, err := tc.failed(); err != nil || n != max {
				t.Errorf("got %d failed codes, %v, want %d", n, err, max)
			}
		})
	}
}

// testConcurrentReserveAttempt races 30 attempts on one key whose back-off
// starts at the 5th failure. Attempt k is allowed while the key is not
// blocked; the 5th counted failure blocks it for an hour, and the clock
// does not move, so exactly 5 get through and every other one is told the
// block ends an hour from now.
func testConcurrentReserveAttempt(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const attempts, free = 30, 5
	delay := func(failures int) time.Duration {
		if failures < free {
			return 0
		}
		return time.Hour
	}
	blockEnds := clk.Now().Add(time.Hour)
	oks := make([]bool, attempts)
	untils := make([]time.Time, attempts)
	for i, err := range raceN(attempts, func(i int) error {
		var err error
		oks[i], untils[i], err = s.ReserveAttempt(ctx, "login:alice", delay, 24*time.Hour)
		return err
	}) {
		if err != nil {
			t.Errorf("racer %d: got %v, want nil", i, err)
		}
	}
	allowed := 0
	for i, ok := range oks {
		switch {
		case ok:
			allowed++
			if !untils[i].IsZero() {
				t.Errorf("allowed racer %d: got blocked until %v, want the zero time", i, untils[i])
			}
		case !sameTime(untils[i], blockEnds):
			t.Errorf("refused racer %d: got blocked until %v, want %v", i, untils[i], blockEnds)
		}
	}
	if allowed != free {
		t.Errorf("got %d attempts allowed, want exactly %d", allowed, free)
	}
	if n, until, err := s.ThrottleFailures(ctx, "login:alice"); err != nil || n != free || !sameTime(until, blockEnds) {
		t.Errorf("got %d failures blocked until %v, %v, want %d until %v", n, until, err, free, blockEnds)
	}
}

// testConcurrentSaveGrant checks that concurrent consents to different
// scopes are merged, none lost.
func testConcurrentSaveGrant(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	var want []string
	for i := range racers {
		want = append(want, fmt.Sprintf("scope-%d", i))
	}
	for i, err := range race(func(i int) error {
		return s.SaveGrant(ctx, "id-alice", "client-1", []string{"openid", want[i]})
	}) {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
	}
	g, err := s.GetGrant(ctx, "id-alice", "client-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]string{"openid"}, want...); !sameSet(g.Scopes, want) {
		t.Errorf("got scopes %q, want %q", g.Scopes, want)
	}
}
