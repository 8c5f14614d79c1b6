package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/twostep/twostep/storage"
)

var expiryTests = []test{
	{"DeleteExpired", testDeleteExpired},
}

func testDeleteExpired(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	createUser(t, s, "id-alice", "alice")
	const forget = 30 * time.Minute

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
		if err := s.CreateDevice(ctx, storage.Device{ID: "device-" + name, UserID: "id-alice", ExpiresAt: clk.Now().Add(d)}); err != nil {
			t.Fatal(err)
		}
	}
	// A refresh token whose session sets no expiry lives on.
	noExpiry := newRequest(clk, "client-1", "request-no-expiry", "id-alice")
	delete(noExpiry.Session.(*openid.DefaultSession).ExpiresAt, fosite.RefreshToken)
	if err := s.CreateRefreshTokenSession(ctx, "refresh-no-expiry", "", noExpiry); err != nil {
		t.Fatal(err)
	}
	// Throttles at t0 whose blocks end at t0 ("old": gone at t0+2h with
	// forget 30 min), exactly forget before t0+2h ("edge": kept) and after
	// it ("blocked"), and one at t0+2h ("new").
	for _, th := range []struct {
		key   string
		block time.Duration
	}{{"old", 0}, {"edge", 2*time.Hour - forget}, {"blocked", 100 * time.Minute}} {
		delay := func(int) time.Duration { return th.block }
		if ok, _, err := s.ReserveAttempt(ctx, th.key, delay, forget); err != nil || !ok {
			t.Fatalf("reserve %s: got %v, %v, want true, nil", th.key, ok, err)
		}
	}
	clk.Add(2 * time.Hour)
	if ok, _, err := s.ReserveAttempt(ctx, "new", backoff, forget); err != nil || !ok {
		t.Fatalf("reserve new: got %v, %v, want true, nil", ok, err)
	}

	n, err := s.DeleteExpired(ctx, forget)
	if err != nil {
		t.Fatalf("delete expired: %v", err)
	}
	if n != 5 {
		t.Errorf("delete expired: got %d rows, want 5 (token, login session, auth request, device, throttle)", n)
	}
	tests := []struct {
		name string
		get  func(suffix string) error
	}{
		{"access token", func(x string) error { _, err := s.GetAccessTokenSession(ctx, "access-"+x, newSession()); return err }},
		{"login session", func(x string) error { _, err := s.GetLoginSession(ctx, "login-"+x); return err }},
		{"auth request", func(x string) error { _, err := s.GetAuthRequest(ctx, "auth-"+x); return err }},
		{"device", func(x string) error { _, err := s.UseDevice(ctx, "device-"+x, "id-alice"); return err }},
	}
	for _, tc := range tests {
		if err := tc.get((3 * time.Hour).String()); err != nil {
			t.Errorf("get unexpired %s: got %v, want nil", tc.name, err)
		}
	}
	if _, err := s.GetRefreshTokenSession(ctx, "refresh-no-expiry", newSession()); err != nil {
		t.Errorf("get refresh token without expiry: got %v, want nil", err)
	}
	// The expired devices are gone from the table, not only hidden.
	var devices int
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM remembered_devices`).Scan(&devices); err != nil || devices != 1 {
		t.Errorf("got %d remembered devices, %v, want 1", devices, err)
	}
	for _, tc := range []struct {
		key  string
		want int
	}{{"old", 0}, {"edge", 1}, {"blocked", 1}, {"new", 1}} {
		if got, _, err := s.ThrottleFailures(ctx, tc.key); err != nil || got != tc.want {
			t.Errorf("throttle %s after delete expired: got %d failures, %v, want %d", tc.key, got, err, tc.want)
		}
	}
	if _, err := s.GetUser(ctx, "id-alice"); err != nil {
		t.Errorf("get user after delete expired: got %v, want nil", err)
	}
	if n, err := s.DeleteExpired(ctx, forget); err != nil || n != 0 {
		t.Errorf("delete expired again: got %d, %v, want 0", n, err)
	}
}
