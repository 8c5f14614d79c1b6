package storagetest

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var loginSessionTests = []test{
	{"LoginSessions/CreateGet", testLoginSessionCreateGet},
	{"LoginSessions/Expiry", testLoginSessionExpiry},
	{"LoginSessions/Advance", testLoginSessionAdvance},
	{"LoginSessions/AdvanceRefused", testLoginSessionAdvanceRefused},
	{"LoginSessions/PendingTOTPSecret", testPendingTOTPSecret},
	{"LoginSessions/SetAuthRequestDelete", testLoginSessionSetAuthRequestDelete},
	{"LoginSessions/CodeFailures", testLoginSessionCodeFailures},
}

var authRequestTests = []test{
	{"AuthRequests/CreateGet", testAuthRequestCreateGet},
	{"AuthRequests/Decide", testAuthRequestDecide},
	{"AuthRequests/Delete", testAuthRequestDelete},
	{"AuthRequests/Expiry", testAuthRequestExpiry},
}

// checkLoginSession compares two login sessions, times to the microsecond.
func checkLoginSession(t *testing.T, got, want storage.LoginSession) {
	t.Helper()
	if got.ID != want.ID || got.State != want.State || got.UserID != want.UserID || got.AuthRequestID != want.AuthRequestID ||
		got.CSRFToken != want.CSRFToken || got.PendingTOTPSecret != want.PendingTOTPSecret || !slices.Equal(got.AMR, want.AMR) ||
		got.ACR != want.ACR || got.FailedCodes != want.FailedCodes {
		t.Errorf("got login session %+v, want %+v", got, want)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"password at", got.PasswordAt, want.PasswordAt},
		{"auth time", got.AuthTime, want.AuthTime},
		{"created at", got.CreatedAt, want.CreatedAt},
		{"expires at", got.ExpiresAt, want.ExpiresAt},
	} {
		if f.want.IsZero() && !f.got.IsZero() || !f.want.IsZero() && !sameTime(f.got, f.want) {
			t.Errorf("login session %q: got %s %v, want %v in UTC", want.ID, f.name, f.got, f.want)
		}
	}
}

func testLoginSessionCreateGet(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	now := clk.Now()
	tests := []struct {
		name string
		ls   storage.LoginSession
		want storage.LoginSession // zero: ls, with CreatedAt from the clock
	}{
		{"fresh", storage.LoginSession{
			ID: "login-1", State: storage.StatePassword, CSRFToken: "csrf-1", ExpiresAt: now.Add(time.Hour),
		}, storage.LoginSession{}},
		{"done, every field", storage.LoginSession{
			ID: "login-2", State: storage.StateDone, UserID: "id-alice", AuthRequestID: "auth-1", CSRFToken: "csrf-2",
			PasswordAt: now.Add(-2 * time.Minute), AuthTime: now.Add(-time.Minute), AMR: []string{"pwd", "otp"},
			ACR: "urn:twostep:acr:recovery-code", CreatedAt: now.Add(-3 * time.Minute), ExpiresAt: now.Add(12 * time.Hour),
		}, storage.LoginSession{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateLoginSession(ctx, tc.ls); err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err := s.GetLoginSession(ctx, tc.ls.ID)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			want := tc.ls
			if want.CreatedAt.IsZero() {
				want.CreatedAt = now
			}
			checkLoginSession(t, got, want)
		})
	}
	if err := s.CreateLoginSession(ctx, tests[0].ls); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("create with a taken ID: got %v, want storage.ErrAlreadyExists", err)
	}
	if _, err := s.GetLoginSession(ctx, "unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get unknown: got %v, want storage.ErrNotFound", err)
	}
}

func testLoginSessionExpiry(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createLoginSession(t, s, clk, "login-1", storage.StatePassword, "")
	expires := t0.Add(time.Hour)
	tests := []struct {
		at      time.Time
		wantErr error
	}{
		{expires.Add(-time.Microsecond), nil},
		{expires, storage.ErrNotFound},
		{expires.Add(time.Second), storage.ErrNotFound},
	}
	for _, tc := range tests {
		clk.Set(tc.at)
		_, err := s.GetLoginSession(ctx, "login-1")
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("get at expiry%+v: got %v, want %v", tc.at.Sub(expires), err, tc.wantErr)
		}
	}
}

func testLoginSessionAdvance(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	first := createLoginSession(t, s, clk, "login-1", storage.StatePassword, "")
	clk.Add(time.Minute)
	now := clk.Now()
	next := storage.LoginSession{
		ID: "login-2", State: storage.StateTOTP, UserID: "id-alice", CSRFToken: "csrf-2",
		PasswordAt: now, AMR: []string{"pwd"}, ExpiresAt: now.Add(10 * time.Minute),
	}
	if err := s.AdvanceLoginSession(ctx, "login-1", storage.StatePassword, next); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if _, err := s.GetLoginSession(ctx, "login-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get by the old ID: got %v, want storage.ErrNotFound", err)
	}
	got, err := s.GetLoginSession(ctx, "login-2")
	if err != nil {
		t.Fatalf("get by the new ID: %v", err)
	}
	// The auth request and creation time stay with the session.
	want := next
	want.AuthRequestID, want.CreatedAt = first.AuthRequestID, t0
	checkLoginSession(t, got, want)

	if err := s.AdvanceLoginSession(ctx, "login-1", storage.StatePassword, next); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("advance by the old ID again: got %v, want storage.ErrConflict", err)
	}
	done := storage.LoginSession{
		ID: "login-3", State: storage.StateDone, UserID: "id-alice", CSRFToken: "csrf-3",
		PasswordAt: now, AuthTime: now.Add(time.Second), AMR: []string{"pwd", "otp"}, ACR: "urn:twostep:acr:totp",
		ExpiresAt: now.Add(12 * time.Hour),
	}
	if err := s.AdvanceLoginSession(ctx, "login-2", storage.StateTOTP, done); err != nil {
		t.Fatalf("advance to done: %v", err)
	}
	want = done
	want.AuthRequestID, want.CreatedAt = first.AuthRequestID, t0
	if got, err := s.GetLoginSession(ctx, "login-3"); err != nil {
		t.Errorf("get done session: %v", err)
	} else {
		checkLoginSession(t, got, want)
	}
}

// testLoginSessionAdvanceRefused checks that a refused advance changes
// nothing: the session still answers to its old ID, unchanged.
func testLoginSessionAdvanceRefused(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createLoginSession(t, s, clk, "taken", storage.StatePassword, "")
	tests := []struct {
		name    string
		oldID   string
		from    string
		expire  bool // move the clock past the session's expiry first
		newID   string
		wantErr error
	}{
		{"wrong from-state", "login-a", storage.StateTOTP, false, "next-a", storage.ErrConflict},
		{"unknown old ID", "unknown", storage.StatePassword, false, "next-b", storage.ErrConflict},
		{"new ID taken", "login-c", storage.StatePassword, false, "taken", storage.ErrAlreadyExists},
		{"expired", "login-d", storage.StatePassword, true, "next-d", storage.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Set(t0)
			var before storage.LoginSession
			if tc.oldID != "unknown" {
				before = createLoginSession(t, s, clk, tc.oldID, storage.StatePassword, "")
				before.CreatedAt = t0
			}
			if tc.expire {
				clk.Add(2 * time.Hour)
			}
			next := storage.LoginSession{ID: tc.newID, State: storage.StateTOTP, UserID: "id-mallory", CSRFToken: "x", ExpiresAt: clk.Now().Add(time.Hour)}
			if err := s.AdvanceLoginSession(ctx, tc.oldID, tc.from, next); !errors.Is(err, tc.wantErr) {
				t.Errorf("advance: got %v, want %v", err, tc.wantErr)
			}
			if tc.newID != "taken" {
				clk.Set(t0)
				if _, err := s.GetLoginSession(ctx, tc.newID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("get by the new ID: got %v, want storage.ErrNotFound", err)
				}
			}
			if tc.oldID == "unknown" {
				return
			}
			clk.Set(t0)
			got, err := s.GetLoginSession(ctx, tc.oldID)
			if err != nil {
				t.Fatalf("get by the old ID: got %v, want the unchanged session", err)
			}
			checkLoginSession(t, got, before)
		})
	}
}

func testPendingTOTPSecret(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const secret = "PENDINGSECRETABCDEFGHIJKLMNOPQRS"
	createLoginSession(t, s, clk, "login-1", storage.StatePassword, "")
	if err := s.SetPendingTOTPSecret(ctx, "login-1", secret); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("set in the password state: got %v, want storage.ErrConflict", err)
	}
	if err := s.SetPendingTOTPSecret(ctx, "unknown", secret); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("set on an unknown session: got %v, want storage.ErrConflict", err)
	}
	totp := storage.LoginSession{ID: "login-2", State: storage.StateTOTP, UserID: "id-alice", CSRFToken: "c", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := s.AdvanceLoginSession(ctx, "login-1", storage.StatePassword, totp); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPendingTOTPSecret(ctx, "login-2", secret); err != nil {
		t.Fatalf("set in the TOTP state: %v", err)
	}
	if got, err := s.GetLoginSession(ctx, "login-2"); err != nil || got.PendingTOTPSecret != secret {
		t.Errorf("get: got pending secret %q, %v, want %q", got.PendingTOTPSecret, err, secret)
	}
	raw := rawColumn(t, s, "login_sessions", "pending_totp_secret", "id", "login-2")
	if len(raw) == 0 || bytes.Contains(raw, []byte(secret)) {
		t.Errorf("the pending secret is not sealed at rest: %q", raw)
	}
	done := storage.LoginSession{ID: "login-3", State: storage.StateDone, UserID: "id-alice", CSRFToken: "c", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := s.AdvanceLoginSession(ctx, "login-2", storage.StateTOTP, done); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetLoginSession(ctx, "login-3"); err != nil || got.PendingTOTPSecret != "" {
		t.Errorf("after advancing: got pending secret %q, %v, want none", got.PendingTOTPSecret, err)
	}
	// The account page enrols a replacement authenticator in a completed
	// session.
	if err := s.SetPendingTOTPSecret(ctx, "login-3", secret); err != nil {
		t.Errorf("set in the done state: %v", err)
	}
	if got, err := s.GetLoginSession(ctx, "login-3"); err != nil || got.PendingTOTPSecret != secret {
		t.Errorf("get in the done state: got pending secret %q, %v, want %q", got.PendingTOTPSecret, err, secret)
	}
}

func testLoginSessionSetAuthRequestDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createLoginSession(t, s, clk, "login-1", storage.StateDone, "id-alice")
	if err := s.SetLoginSessionAuthRequest(ctx, "login-1", "auth-2"); err != nil {
		t.Fatalf("set auth request: %v", err)
	}
	if got, err := s.GetLoginSession(ctx, "login-1"); err != nil || got.AuthRequestID != "auth-2" {
		t.Errorf("get: got auth request %q, %v, want auth-2", got.AuthRequestID, err)
	}
	if err := s.SetLoginSessionAuthRequest(ctx, "unknown", "auth-2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("set auth request of an unknown session: got %v, want storage.ErrNotFound", err)
	}
	createLoginSession(t, s, clk, "login-2", storage.StateDone, "id-alice")
	if err := s.DeleteLoginSession(ctx, "login-1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.GetLoginSession(ctx, "login-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get after delete: got %v, want storage.ErrNotFound", err)
	}
	if err := s.DeleteLoginSession(ctx, "login-1"); err != nil {
		t.Errorf("delete again: got %v, want nil", err)
	}
	if _, err := s.GetLoginSession(ctx, "login-2"); err != nil {
		t.Errorf("get another session: got %v, want nil", err)
	}
}

// testLoginSessionCodeFailures checks the per-login cap on wrong codes:
// counted only in the TOTP state, refused at the cap, cleared when the
// session advances.
func testLoginSessionCodeFailures(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const max = 3
	createLoginSession(t, s, clk, "login-totp", storage.StateTOTP, "id-alice")
	createLoginSession(t, s, clk, "login-password", storage.StatePassword, "")
	createLoginSession(t, s, clk, "login-done", storage.StateDone, "id-alice")
	steps := []struct {
		name       string
		id         string
		wantErr    error
		wantFailed int // the session's FailedCodes afterwards
	}{
		{"first", "login-totp", nil, 1},
		{"second", "login-totp", nil, 2},
		{"third reaches the cap", "login-totp", nil, 3},
		{"spent at the cap", "login-totp", storage.ErrConflict, 3},
		{"password state", "login-password", storage.ErrConflict, 0},
		{"done state", "login-done", storage.ErrConflict, 0},
	}
	for _, st := range steps {
		err := s.CountSessionCodeFailure(ctx, st.id, max)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if ls, err := s.GetLoginSession(ctx, st.id); err != nil || ls.FailedCodes != st.wantFailed {
			t.Errorf("%s: got %d failed codes, %v, want %d", st.name, ls.FailedCodes, err, st.wantFailed)
		}
	}
	if err := s.CountSessionCodeFailure(ctx, "unknown", max); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("unknown session: got %v, want storage.ErrConflict", err)
	}

	// Advancing starts the next step with a clean count, even from a
	// session whose count was left high.
	execRaw(t, s, `UPDATE login_sessions SET failed_codes = 7 WHERE id = ?`, "login-password")
	next := storage.LoginSession{ID: "login-next", State: storage.StateTOTP, UserID: "id-bob", CSRFToken: "c", ExpiresAt: clk.Now().Add(time.Hour)}
	if err := s.AdvanceLoginSession(ctx, "login-password", storage.StatePassword, next); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if ls, err := s.GetLoginSession(ctx, "login-next"); err != nil || ls.FailedCodes != 0 {
		t.Errorf("after advancing: got %d failed codes, %v, want 0", ls.FailedCodes, err)
	}
	if err := s.CountSessionCodeFailure(ctx, "login-next", max); err != nil {
		t.Errorf("count after advancing: got %v, want nil", err)
	}

	// An expired session counts nothing.
	clk.Add(time.Hour)
	if err := s.CountSessionCodeFailure(ctx, "login-next", max); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("expired session: got %v, want storage.ErrConflict", err)
	}
}

func newAuthRequest(clk *Clock, id string) storage.AuthRequest {
	return storage.AuthRequest{
		ID:       id,
		ClientID: "client-1",
		Form: url.Values{
			"client_id":     {"client-1"},
			"redirect_uri":  {"https://client-1.example/cb?a=1&b=2"},
			"scope":         {"openid profile"},
			"state":         {"s t&a=t+e%"},
			"claims":        {`{"id_token":{"email":null}}`},
			"prompt":        {"login", "consent"},
			"response_type": {"code"},
		},
		RequestedAt: clk.Now(),
		ExpiresAt:   clk.Now().Add(10 * time.Minute),
	}
}

func testAuthRequestCreateGet(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	want := newAuthRequest(clk, "auth-1")
	if err := s.CreateAuthRequest(ctx, want); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := s.GetAuthRequest(ctx, "auth-1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.ID != want.ID || got.ClientID != want.ClientID || got.Consent != "" || got.ConsentUserID != "" {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(got.Form, want.Form) {
		t.Errorf("got form %v, want %v", got.Form, want.Form)
	}
	if !sameTime(got.RequestedAt, want.RequestedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("got requested at %v, expires at %v, want %v, %v in UTC", got.RequestedAt, got.ExpiresAt, want.RequestedAt, want.ExpiresAt)
	}
	if err := s.CreateAuthRequest(ctx, want); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("create with a taken ID: got %v, want storage.ErrAlreadyExists", err)
	}
	if _, err := s.GetAuthRequest(ctx, "unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get unknown: got %v, want storage.ErrNotFound", err)
	}
}

func testAuthRequestDecide(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	for _, id := range []string{"auth-1", "auth-2"} {
		if err := s.CreateAuthRequest(ctx, newAuthRequest(clk, id)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		id, user string
		decision string
		wantErr  error
	}{
		{"grant", "auth-1", "id-alice", storage.ConsentGranted, nil},
		{"the same again", "auth-1", "id-alice", storage.ConsentGranted, storage.ErrConflict},
		{"change of mind", "auth-1", "id-alice", storage.ConsentDenied, storage.ErrConflict},
		{"another user", "auth-1", "id-mallory", storage.ConsentGranted, storage.ErrConflict},
		{"deny another request", "auth-2", "id-bob", storage.ConsentDenied, nil},
		{"unknown request", "unknown", "id-alice", storage.ConsentGranted, storage.ErrConflict},
	}
	for _, tc := range tests {
		err := s.DecideAuthRequest(ctx, tc.id, tc.user, tc.decision)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	for _, want := range []struct{ id, consent, user string }{
		{"auth-1", storage.ConsentGranted, "id-alice"},
		{"auth-2", storage.ConsentDenied, "id-bob"},
	} {
		got, err := s.GetAuthRequest(ctx, want.id)
		if err != nil || got.Consent != want.consent || got.ConsentUserID != want.user {
			t.Errorf("get %s: got consent %q by %q, %v, want %q by %q", want.id, got.Consent, got.ConsentUserID, err, want.consent, want.user)
		}
	}
	if err := s.CreateAuthRequest(ctx, newAuthRequest(clk, "auth-3")); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Minute)
	if err := s.DecideAuthRequest(ctx, "auth-3", "id-alice", storage.ConsentGranted); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("decide an expired request: got %v, want storage.ErrConflict", err)
	}
}

func testAuthRequestDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	for _, id := range []string{"auth-1", "auth-2"} {
		if err := s.CreateAuthRequest(ctx, newAuthRequest(clk, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteAuthRequest(ctx, "auth-1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := s.DeleteAuthRequest(ctx, "auth-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("delete twice: got %v, want storage.ErrNotFound", err)
	}
	if _, err := s.GetAuthRequest(ctx, "auth-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get after delete: got %v, want storage.ErrNotFound", err)
	}
	if _, err := s.GetAuthRequest(ctx, "auth-2"); err != nil {
		t.Errorf("get another request: got %v, want nil", err)
	}
}

func testAuthRequestExpiry(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if err := s.CreateAuthRequest(ctx, newAuthRequest(clk, "auth-1")); err != nil {
		t.Fatal(err)
	}
	expires := t0.Add(10 * time.Minute)
	tests := []struct {
		at      time.Time
		wantErr error
	}{
		{expires.Add(-time.Microsecond), nil},
		{expires, storage.ErrNotFound},
		{expires.Add(time.Hour), storage.ErrNotFound},
	}
	for _, tc := range tests {
		clk.Set(tc.at)
		_, err := s.GetAuthRequest(ctx, "auth-1")
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("get at expiry%+v: got %v, want %v", tc.at.Sub(expires), err, tc.wantErr)
		}
	}
}
