package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/twostep/twostep/storage"
)

var throttleTests = []test{
	{"Throttles/Hit", testThrottleHit},
}

var expiryTests = []test{
	{"DeleteExpired", testDeleteExpired},
}

func testThrottleHit(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const window = time.Minute
	steps := []struct {
		at   time.Duration // after t0
		key  string
		want int
	}{
		{0, "login:alice", 1},
		{10 * time.Second, "login:alice", 2},
		{20 * time.Second, "login:alice", 3},
		{20 * time.Second, "login:bob", 1},
		{window, "login:alice", 4}, // the window is [t0, t0+window]
		{window + time.Second, "login:alice", 1},
		{window + 2*time.Second, "login:alice", 2},
		{window + 20*time.Second, "login:bob", 2},
		{window + 21*time.Second, "login:bob", 1},
		{3 * window, "login:alice", 1},
	}
	for _, st := range steps {
		clk.Set(t0.Add(st.at))
		got, err := s.Hit(ctx, st.key, window)
		if err != nil {
			t.Fatalf("hit %s at +%v: %v", st.key, st.at, err)
		}
		if got != st.want {
			t.Errorf("hit %s at +%v: got %d, want %d", st.key, st.at, got, st.want)
		}
	}
	if err := s.ResetThrottle(ctx, "login:alice"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if got, err := s.Hit(ctx, "login:alice", window); err != nil || got != 1 {
		t.Errorf("hit after reset: got %d, %v, want 1", got, err)
	}
	if err := s.ResetThrottle(ctx, "unknown"); err != nil {
		t.Errorf("reset an unknown key: got %v, want nil", err)
	}
}

func testDeleteExpired(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	createUser(t, s, "id-alice", "alice")
	const maxWindow = 30 * time.Minute

	// At t0: rows that expire at t0+1h (gone at t0+2h) and at t0+3h (kept).
	for _, d := range []time.Duration{time.Hour, 3 * time.Hour} {
		name := d.String()
		req := newRequest(clk, "client-1", "request-"+name, "id-alice")
		req.Session.(*openid.DefaultSession).ExpiresAt[fosite.AccessToken] = clk.Now().Add(d)
		if err := s.CreateAccessTokenSession(ctx, "access-"+name, req); err != nil {
			t.Fatal(err)
		}
		ls := storage.LoginSession{ID: "login-" + name, State: storage.StateDone, CSRFToken: "c", ExpiresAt: clk.Now().Add(d)}
		if err := s.CreateLoginSession(ctx, ls); err != nil {
			t.Fatal(err)
		}
		ar := newAuthRequest(clk, "auth-"+name)
		ar.ExpiresAt = clk.Now().Add(d)
		if err := s.CreateAuthRequest(ctx, ar); err != nil {
			t.Fatal(err)
		}
	}
	// A refresh token whose session sets no expiry lives on.
	noExpiry := newRequest(clk, "client-1", "request-no-expiry", "id-alice")
	delete(noExpiry.Session.(*openid.DefaultSession).ExpiresAt, fosite.RefreshToken)
	if err := s.CreateRefreshTokenSession(ctx, "refresh-no-expiry", "", noExpiry); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hit(ctx, "old", time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	if _, err := s.Hit(ctx, "new", time.Minute); err != nil {
		t.Fatal(err)
	}

	n, err := s.DeleteExpired(ctx, maxWindow)
	if err != nil {
		t.Fatalf("delete expired: %v", err)
	}
	if n != 4 {
		t.Errorf("delete expired: got %d rows, want 4 (token, login session, auth request, throttle)", n)
	}
	tests := []struct {
		name string
		get  func(suffix string) error
	}{
		{"access token", func(x string) error { _, err := s.GetAccessTokenSession(ctx, "access-"+x, newSession()); return err }},
		{"login session", func(x string) error { _, err := s.GetLoginSession(ctx, "login-"+x); return err }},
		{"auth request", func(x string) error { _, err := s.GetAuthRequest(ctx, "auth-"+x); return err }},
	}
	for _, tc := range tests {
		if err := tc.get((3 * time.Hour).String()); err != nil {
			t.Errorf("get unexpired %s: got %v, want nil", tc.name, err)
		}
	}
	if _, err := s.GetRefreshTokenSession(ctx, "refresh-no-expiry", newSession()); err != nil {
		t.Errorf("get refresh token without expiry: got %v, want nil", err)
	}
	// The expired throttle window is gone, so "old" starts over; "new" counts on.
	for _, tc := range []struct {
		key  string
		want int
	}{{"old", 1}, {"new", 2}} {
		if got, err := s.Hit(ctx, tc.key, time.Hour); err != nil || got != tc.want {
			t.Errorf("hit %s after delete expired: got %d, %v, want %d", tc.key, got, err, tc.want)
		}
	}
	if _, err := s.GetUser(ctx, "id-alice"); err != nil {
		t.Errorf("get user after delete expired: got %v, want nil", err)
	}
	if n, err := s.DeleteExpired(ctx, maxWindow); err != nil || n != 0 {
		t.Errorf("delete expired again: got %d, %v, want 0", n, err)
	}
}
