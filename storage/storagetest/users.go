package storagetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

var userTests = []test{
	{"Users/CreateGet", testUserCreateGet},
	{"Users/Errors", testUserErrors},
	{"Users/BadBytesNotFound", testBadBytesNotFound},
	{"Users/List", testUserList},
	{"Users/Disable", testUserDisable},
	{"Users/SetPasswordHash", testUserSetPasswordHash},
	{"Users/TOTP", testUserTOTP},
	{"Users/TOTPSealedAtRest", testUserTOTPSealed},
	{"Users/CodeFailures", testUserCodeFailures},
}

// createUser stores a user with the given ID and username.
func createUser(t *testing.T, s *storage.Store, id, username string) storage.User {
	t.Helper()
	u := storage.User{
		ID:            id,
		Username:      username,
		Email:         username + "@example.com",
		EmailVerified: true,
		Name:          "Name of " + username,
		Groups:        []string{"staff", "admins"},
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
	}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user %q: %v", username, err)
	}
	return u
}

// checkUser compares a stored user with what was created; created is when.
func checkUser(t *testing.T, got, want storage.User, created time.Time) {
	t.Helper()
	if got.ID != want.ID || got.Username != want.Username || got.Email != want.Email ||
		got.EmailVerified != want.EmailVerified || got.Name != want.Name || got.PasswordHash != want.PasswordHash ||
		!slices.Equal(got.Groups, want.Groups) || got.Disabled != want.Disabled || got.HasTOTP() {
		t.Errorf("got user %+v, want %+v", got, want)
	}
	if !sameTime(got.CreatedAt, created) {
		t.Errorf("got created at %v, want %v in UTC", got.CreatedAt, created)
	}
}

func testUserCreateGet(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	alice := createUser(t, s, "id-alice", "alice")
	bare := storage.User{ID: "id-bare", Username: "bare", PasswordHash: "h", CreatedAt: t0.Add(-time.Hour)}
	if err := s.CreateUser(ctx, bare); err != nil {
		t.Fatalf("create user without optional fields: %v", err)
	}
	tests := []struct {
		name    string
		get     func() (storage.User, error)
		want    storage.User
		created time.Time
	}{
		{"by ID", func() (storage.User, error) { return s.GetUser(ctx, "id-alice") }, alice, clk.Now()},
		{"by username", func() (storage.User, error) { return s.GetUserByUsername(ctx, "alice") }, alice, clk.Now()},
		{"given created at, no groups", func() (storage.User, error) { return s.GetUser(ctx, "id-bare") }, bare, bare.CreatedAt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get()
			if err != nil {
				t.Fatalf("get user: %v", err)
			}
			checkUser(t, got, tc.want, tc.created)
		})
	}
}

func testUserErrors(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	tests := []struct {
		name    string
		op      func() error
		wantErr error // nil: any error
	}{
		{"duplicate username", func() error {
			return s.CreateUser(ctx, storage.User{ID: "id-other", Username: "alice", PasswordHash: "h"})
		}, storage.ErrAlreadyExists},
		{"duplicate ID", func() error {
			return s.CreateUser(ctx, storage.User{ID: "id-alice", Username: "other", PasswordHash: "h"})
		}, storage.ErrAlreadyExists},
		{"group with a comma", func() error {
			return s.CreateUser(ctx, storage.User{ID: "id-comma", Username: "comma", PasswordHash: "h", Groups: []string{"a,b"}})
		}, nil},
		{"get unknown ID", func() error { _, err := s.GetUser(ctx, "id-nobody"); return err }, storage.ErrNotFound},
		{"get by username, not ID", func() error { _, err := s.GetUser(ctx, "alice"); return err }, storage.ErrNotFound},
		{"get unknown username", func() error { _, err := s.GetUserByUsername(ctx, "nobody"); return err }, storage.ErrNotFound},
		{"disable unknown", func() error { return s.SetUserDisabled(ctx, "id-nobody", true) }, storage.ErrNotFound},
		{"set password of unknown", func() error { return s.SetPasswordHash(ctx, "id-nobody", "h", "") }, storage.ErrNotFound},
		{"reset TOTP of unknown", func() error { return s.ResetTOTP(ctx, "id-nobody") }, storage.ErrNotFound},
		{"unlock unknown", func() error { return s.UnlockUser(ctx, "id-nobody") }, storage.ErrNotFound},
		{"count a code failure of unknown", func() error { _, err := s.CountCodeFailure(ctx, "id-nobody", 5); return err }, storage.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
	// The failed creates left nothing behind.
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 {
		t.Errorf("list users: got %d users, %v, want 1", len(users), err)
	}
}

func testUserList(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 0 {
		t.Fatalf("list users of an empty store: got %v, %v, want none", users, err)
	}
	var want []storage.User
	for _, name := range []string{"carol", "alice", "bob"} {
		want = append(want, createUser(t, s, "id-"+name, name))
	}
	slices.SortFunc(want, func(a, b storage.User) int { return strings.Compare(a.Username, b.Username) })
	got, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d users, want %d", len(got), len(want))
	}
	for i := range want {
		checkUser(t, got[i], want[i], clk.Now())
	}
}

// createLoginSession stores a login session of user in state.
func createLoginSession(t *testing.T, s *storage.Store, clk *Clock, id, state, userID string) storage.LoginSession {
	t.Helper()
	ls := storage.LoginSession{
		ID:            id,
		State:         state,
		UserID:        userID,
		AuthRequestID: "auth-request-1",
		CSRFToken:     "csrf-" + id,
		ExpiresAt:     clk.Now().Add(time.Hour),
	}
	if err := s.CreateLoginSession(context.Background(), ls); err != nil {
		t.Fatalf("create login session %q: %v", id, err)
	}
	return ls
}

func testUserDisable(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	createClient(t, s, "client-1")
	for _, u := range []string{"id-alice", "id-bob"} {
		createLoginSession(t, s, clk, "login-"+u, storage.StateDone, u)
		req := newRequest(clk, "client-1", "request-"+u, u)
		if err := s.CreateAuthorizeCodeSession(ctx, "code-"+u, req); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(ctx, "access-"+u, req); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(ctx, "refresh-"+u, "access-"+u, req); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.SetUserDisabled(ctx, "id-alice", true); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || !u.Disabled {
		t.Errorf("get disabled user: got disabled %v, %v, want true", u.Disabled, err)
	}
	for _, tc := range []struct {
		user           string
		wantSessionErr error
		wantErr        error // of the codes and tokens
	}{
		{"id-alice", storage.ErrNotFound, fosite.ErrNotFound},
		{"id-bob", nil, nil},
	} {
		_, err := s.GetLoginSession(ctx, "login-"+tc.user)
		if !errors.Is(err, tc.wantSessionErr) || (tc.wantSessionErr == nil && err != nil) {
			t.Errorf("get login session of %s: got %v, want %v", tc.user, err, tc.wantSessionErr)
		}
		for _, get := range []struct {
			name string
			get  func(context.Context, string, fosite.Session) (fosite.Requester, error)
		}{
			{"code", s.GetAuthorizeCodeSession},
			{"access", s.GetAccessTokenSession},
			{"refresh", s.GetRefreshTokenSession},
		} {
			_, err := get.get(ctx, get.name+"-"+tc.user, newSession())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("get %s of %s: got %v, want %v", get.name, tc.user, err, tc.wantErr)
			}
		}
	}

	if err := s.SetUserDisabled(ctx, "id-alice", false); err != nil {
		t.Fatalf("enable: %v", err)
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.Disabled {
		t.Errorf("get enabled user: got disabled %v, %v, want false", u.Disabled, err)
	}
}

func testUserSetPasswordHash(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	createLoginSession(t, s, clk, "login-alice", storage.StateDone, "id-alice")
	createLoginSession(t, s, clk, "login-bob", storage.StateDone, "id-bob")
	if err := s.SetPasswordHash(ctx, "id-alice", "new-hash", ""); err != nil {
		t.Fatalf("set password hash: %v", err)
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.PasswordHash != "new-hash" {
		t.Errorf("got password hash %q, %v, want %q", u.PasswordHash, err, "new-hash")
	}
	if u, err := s.GetUser(ctx, "id-bob"); err != nil || u.PasswordHash == "new-hash" {
		t.Errorf("got bob's password hash %q, %v, want it unchanged", u.PasswordHash, err)
	}
	if _, err := s.GetLoginSession(ctx, "login-alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get login session after a password change: got %v, want storage.ErrNotFound", err)
	}
	if _, err := s.GetLoginSession(ctx, "login-bob"); err != nil {
		t.Errorf("get another user's login session: got %v, want nil", err)
	}
}

func testUserTOTP(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	const secret = "JBSWY3DPEHPK3PXP"

	if err := s.UseTOTPStep(ctx, "id-alice", 1); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("use a step before enrolment: got %v, want storage.ErrConflict", err)
	}
	if err := s.ConfirmTOTP(ctx, "id-alice", secret, 100, nil); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	confirmedAt := clk.Now()
	clk.Add(time.Minute)
	if err := s.ConfirmTOTP(ctx, "id-alice", "OTHERSECRET23456", 200, nil); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("confirm twice: got %v, want storage.ErrConflict", err)
	}
	u, err := s.GetUser(ctx, "id-alice")
	if err != nil {
		t.Fatal(err)
	}
	if !u.HasTOTP() || u.TOTPSecret != secret || u.TOTPLastStep != 100 || !sameTime(u.TOTPConfirmedAt, confirmedAt) {
		t.Errorf("after confirming: got secret %q, last step %d, confirmed at %v, want %q, 100, %v",
			u.TOTPSecret, u.TOTPLastStep, u.TOTPConfirmedAt, secret, confirmedAt)
	}

	// The replay guard: only a step strictly later than every accepted one.
	steps := []struct {
		step    int64
		wantErr error
	}{
		{100, storage.ErrConflict}, // the step the confirming code used
		{99, storage.ErrConflict},
		{101, nil},
		{101, storage.ErrConflict},
		{150, nil},
		{120, storage.ErrConflict},
		{151, nil},
	}
	for _, st := range steps {
		err := s.UseTOTPStep(ctx, "id-alice", st.step)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("use step %d: got %v, want %v", st.step, err, st.wantErr)
		}
	}
	if u, _ := s.GetUser(ctx, "id-alice"); u.TOTPLastStep != 151 {
		t.Errorf("got last step %d, want 151", u.TOTPLastStep)
	}
	if err := s.UseTOTPStep(ctx, "id-nobody", 1000); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("use a step of an unknown user: got %v, want storage.ErrConflict", err)
	}

	createLoginSession(t, s, clk, "login-alice", storage.StateDone, "id-alice")
	if err := s.ResetTOTP(ctx, "id-alice"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	u, err = s.GetUser(ctx, "id-alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.HasTOTP() || u.TOTPSecret != "" || !u.TOTPConfirmedAt.IsZero() {
		t.Errorf("after reset: got secret %q, confirmed at %v, want none", u.TOTPSecret, u.TOTPConfirmedAt)
	}
	if raw := rawColumn(t, s, "users", "totp_secret", "id", "id-alice"); raw != nil {
		t.Errorf("after reset: got %d bytes in totp_secret, want NULL", len(raw))
	}
	if _, err := s.GetLoginSession(ctx, "login-alice"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get login session after reset: got %v, want storage.ErrNotFound", err)
	}
	if err := s.UseTOTPStep(ctx, "id-alice", 1000); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("use a step after reset: got %v, want storage.ErrConflict", err)
	}
	// A new authenticator can be confirmed, with its own first step.
	if err := s.ConfirmTOTP(ctx, "id-alice", "NEWSECRET2345678", 300, nil); err != nil {
		t.Fatalf("confirm after reset: %v", err)
	}
	if u, _ := s.GetUser(ctx, "id-alice"); u.TOTPSecret != "NEWSECRET2345678" || u.TOTPLastStep != 300 {
		t.Errorf("after re-enrolment: got secret %q, last step %d, want NEWSECRET2345678, 300", u.TOTPSecret, u.TOTPLastStep)
	}
}

func testUserTOTPSealed(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	if err := s.ConfirmTOTP(ctx, "id-alice", secret, 1, nil); err != nil {
		t.Fatal(err)
	}
	raw := rawColumn(t, s, "users", "totp_secret", "id", "id-alice")
	if len(raw) <= len(secret) {
		t.Errorf("got %d sealed bytes, want more than the %d of the secret", len(raw), len(secret))
	}
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(secret[:16]))) {
		t.Errorf("the TOTP secret is in the clear in the database: %q", raw)
	}
	// A sealed secret is bound to its user: copied to another row, it
	// does not open.
	execRaw(t, s, `UPDATE users SET totp_secret = ? WHERE id = ?`, raw, "id-bob")
	if u, err := s.GetUser(ctx, "id-bob"); err == nil {
		t.Errorf("get user with another user's sealed secret: got secret %q, want an error", u.TOTPSecret)
	}
	if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.TOTPSecret != secret {
		t.Errorf("get user: got secret %q, %v, want %q", u.TOTPSecret, err, secret)
	}
}

// testUserCodeFailures walks one user through wrong codes, the lock at the
// limit, and each way the count is cleared.
func testUserCodeFailures(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	const max = 3
	fail := func(max int) func() (int, error) {
		return func() (int, error) { return s.CountCodeFailure(ctx, "id-alice", max) }
	}
	confirm := func() (int, error) { return 0, s.ConfirmTOTP(ctx, "id-alice", "JBSWY3DPEHPK3PXP", 10, nil) }
	useStep := func(step int64) func() (int, error) {
		return func() (int, error) { return 0, s.UseTOTPStep(ctx, "id-alice", step) }
	}
	unlock := func() (int, error) { return 0, s.UnlockUser(ctx, "id-alice") }
	steps := []struct {
		name       string
		op         func() (int, error)
		want       int // what CountCodeFailure returns
		wantErr    error
		wantFailed int // alice's FailedCodes afterwards
	}{
		{"first failure, while enrolling", fail(max), 1, nil, 1},
		{"second failure", fail(max), 2, nil, 2},
		{"confirming an authenticator clears the count", confirm, 0, nil, 0},
		{"failure 1", fail(max), 1, nil, 1},
		{"failure 2", fail(max), 2, nil, 2},
		{"failure 3 reaches the limit", fail(max), 3, nil, 3},
		{"locked at the limit", fail(max), 0, storage.ErrConflict, 3},
		{"locked under a lower limit", fail(2), 0, storage.ErrConflict, 3},
		{"a right code clears the count", useStep(11), 0, nil, 0},
		{"failure after the right code", fail(max), 1, nil, 1},
		{"a replayed code does not clear it", useStep(11), 0, storage.ErrConflict, 1},
		{"failure 2 again", fail(max), 2, nil, 2},
		{"failure 3 again", fail(max), 3, nil, 3},
		{"unlock clears the count", unlock, 0, nil, 0},
		{"failure after unlock", fail(max), 1, nil, 1},
	}
	for _, st := range steps {
		got, err := st.op()
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if got != st.want {
			t.Errorf("%s: got count %d, want %d", st.name, got, st.want)
		}
		if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.FailedCodes != st.wantFailed {
			t.Errorf("%s: got %d failed codes, %v, want %d", st.name, u.FailedCodes, err, st.wantFailed)
		}
	}
	if u, err := s.GetUser(ctx, "id-bob"); err != nil || u.FailedCodes != 0 {
		t.Errorf("another user: got %d failed codes, %v, want 0", u.FailedCodes, err)
	}
}

// testBadBytesNotFound: keys straight from a request may hold invalid
// UTF-8 or NUL bytes; looking them up finds nothing, on every database
// (PostgreSQL refuses such text rather than comparing it).
func testBadBytesNotFound(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	for _, key := range []string{"\xff", "a\x00b"} {
		if _, err := s.GetUserByUsername(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetUserByUsername(%q): got %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetAuthRequest(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAuthRequest(%q): got %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetLoginSession(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetLoginSession(%q): got %v, want ErrNotFound", key, err)
		}
	}
}
