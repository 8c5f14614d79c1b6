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
	{"Concurrent/Hit", testConcurrentHit},
	{"Concurrent/SaveGrant", testConcurrentSaveGrant},
}

// racers is how many goroutines race for what must happen once.
const racers = 8

// race runs op(i) for i in [0, racers) at once and returns the errors.
func race(op func(i int) error) []error {
	errs := make([]error, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range racers {
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
	if err := s.ConfirmTOTP(ctx, "id-alice", "JBSWY3DPEHPK3PXP", 10); err != nil {
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
			return s.ConfirmTOTP(ctx, "id-bob", fmt.Sprintf("SECRET%02dABCDEFGHIJ", i), 10)
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

// testConcurrentHit checks that concurrent attempts are all counted.
func testConcurrentHit(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	counts := make([]int, racers)
	errs := race(func(i int) error {
		var err error
		counts[i], err = s.Hit(ctx, "login:alice", time.Minute)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("got counts %v, want 1 to %d, each once", counts, racers)
		}
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
