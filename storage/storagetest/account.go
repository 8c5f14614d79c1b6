package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

// accountTests cover what the account page, invitations, registration and
// password reset need: one-time account tokens and the user, login session
// and grant methods built for them.
var accountTests = []test{
	{"Account/TokenCreateGet", testAccountTokenCreateGet},
	{"Account/TokenExpiry", testAccountTokenExpiry},
	{"Account/TokenStoredAsGiven", testAccountTokenStoredAsGiven},
	{"Account/CreateUserWithToken", testCreateUserWithToken},
	{"Account/CreateUserWithTokenConcurrent", testCreateUserWithTokenConcurrent},
	{"Account/VerifyEmailWithToken", testVerifyEmailWithToken},
	{"Account/ResetPasswordWithToken", testResetPasswordWithToken},
	{"Account/SetPasswordHashKeepsSession", testSetPasswordHashKeepsSession},
	{"Account/UpdateProfile", testUpdateProfile},
	{"Account/UsersByEmail", testUsersByEmail},
	{"Account/ReplaceTOTP", testReplaceTOTP},
	{"Account/ListLoginSessions", testListUserLoginSessions},
	{"Account/DeleteLoginSessionBySID", testDeleteUserLoginSessionBySID},
	{"Account/ListGrants", testListGrants},
	{"Account/RevokeGrant", testRevokeGrant},
	{"Account/DeleteExpiredTokens", testDeleteExpiredAccountTokens},
}

// tokenID hashes a link's secret the way callers do before they store or
// look up an account token.
func tokenID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// createAccountToken stores a token for purpose, of userID (if any), whose
// link's secret is secret, that expires in an hour.
func createAccountToken(t *testing.T, s *storage.Store, clk *Clock, secret, purpose, userID, email string) storage.AccountToken {
	t.Helper()
	tok := storage.AccountToken{
		ID:        tokenID(secret),
		Purpose:   purpose,
		UserID:    userID,
		Email:     email,
		ExpiresAt: clk.Now().Add(time.Hour),
	}
	if err := s.CreateAccountToken(context.Background(), tok); err != nil {
		t.Fatalf("create account token %q: %v", secret, err)
	}
	tok.CreatedAt = clk.Now()
	return tok
}

// tokenUnspent reports whether the token can still be used: GetAccountToken
// finds it.
func tokenUnspent(t *testing.T, s *storage.Store, tok storage.AccountToken) bool {
	t.Helper()
	_, err := s.GetAccountToken(context.Background(), tok.Purpose, tok.ID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get account token: %v", err)
	}
	return err == nil
}

// accountTokenIDs returns the id column of every account_tokens row,
// sorted, straight from the database.
func accountTokenIDs(t *testing.T, s *storage.Store) []string {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(), `SELECT id FROM account_tokens`)
	if err != nil {
		t.Fatalf("read account token IDs: %v", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("read account token IDs: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read account token IDs: %v", err)
	}
	slices.Sort(ids)
	return ids
}

// countRows runs a SELECT COUNT(*) written with ? placeholders straight
// against the database.
func countRows(t *testing.T, s *storage.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), rebind(s, query), args...).Scan(&n); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return n
}

// checkAccountToken compares two account tokens, times to the microsecond.
func checkAccountToken(t *testing.T, got, want storage.AccountToken) {
	t.Helper()
	if got.ID != want.ID || got.Purpose != want.Purpose || got.UserID != want.UserID || got.Email != want.Email ||
		got.Username != want.Username || !slices.Equal(got.Groups, want.Groups) {
		t.Errorf("got account token %+v, want %+v", got, want)
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("got created at %v, expires at %v, want %v, %v in UTC", got.CreatedAt, got.ExpiresAt, want.CreatedAt, want.ExpiresAt)
	}
}

func testAccountTokenCreateGet(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	now := clk.Now()
	east := time.FixedZone("UTC+2", 2*60*60)
	invite := storage.AccountToken{
		ID: tokenID("invite-secret"), Purpose: storage.PurposeInvite, Email: "carol@example.com", Username: "carol",
		Groups: []string{"staff", "admins"}, CreatedAt: now.Add(-time.Minute).In(east), ExpiresAt: now.Add(72 * time.Hour).In(east),
	}
	reset := storage.AccountToken{
		ID: tokenID("reset-secret"), Purpose: storage.PurposeResetPassword, UserID: "id-alice", Email: "alice@example.com",
		ExpiresAt: now.Add(time.Hour),
	}
	for _, tok := range []storage.AccountToken{invite, reset} {
		if err := s.CreateAccountToken(ctx, tok); err != nil {
			t.Fatalf("create %s token: %v", tok.Purpose, err)
		}
	}
	tests := []struct {
		name string
		want storage.AccountToken
	}{
		{"every field, times not in UTC", invite},
		{"created now, no groups", storage.AccountToken{
			ID: reset.ID, Purpose: reset.Purpose, UserID: reset.UserID, Email: reset.Email, CreatedAt: now, ExpiresAt: reset.ExpiresAt,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetAccountToken(ctx, tc.want.Purpose, tc.want.ID)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			checkAccountToken(t, got, tc.want)
		})
	}

	errs := []struct {
		name    string
		op      func() error
		wantErr error // nil: any error
	}{
		{"get with the wrong purpose", func() error {
			_, err := s.GetAccountToken(ctx, storage.PurposeRegister, invite.ID)
			return err
		}, storage.ErrNotFound},
		{"get a reset token as an email verification", func() error {
			_, err := s.GetAccountToken(ctx, storage.PurposeVerifyEmail, reset.ID)
			return err
		}, storage.ErrNotFound},
		{"get an unknown ID", func() error {
			_, err := s.GetAccountToken(ctx, storage.PurposeInvite, tokenID("unknown"))
			return err
		}, storage.ErrNotFound},
		{"get by the secret, not its hash", func() error {
			_, err := s.GetAccountToken(ctx, storage.PurposeInvite, "invite-secret")
			return err
		}, storage.ErrNotFound},
		{"get by invalid UTF-8", func() error {
			_, err := s.GetAccountToken(ctx, storage.PurposeInvite, "\xff")
			return err
		}, storage.ErrNotFound},
		{"create with a taken ID", func() error {
			return s.CreateAccountToken(ctx, storage.AccountToken{ID: invite.ID, Purpose: storage.PurposeRegister, ExpiresAt: now.Add(time.Hour)})
		}, storage.ErrAlreadyExists},
		{"create with a group with a comma", func() error {
			return s.CreateAccountToken(ctx, storage.AccountToken{
				ID: tokenID("comma"), Purpose: storage.PurposeInvite, Groups: []string{"a,b"}, ExpiresAt: now.Add(time.Hour),
			})
		}, nil},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
	// The refused creates stored nothing and changed nothing.
	if got, want := accountTokenIDs(t, s), []string{invite.ID, reset.ID}; !sameSet(got, want) {
		t.Errorf("got token IDs %q, want %q", got, want)
	}
	if got, err := s.GetAccountToken(ctx, invite.Purpose, invite.ID); err != nil {
		t.Errorf("get after the refused creates: %v", err)
	} else {
		checkAccountToken(t, got, invite)
	}
}

func testAccountTokenExpiry(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	tok := createAccountToken(t, s, clk, "secret", storage.PurposeVerifyEmail, "id-alice", "alice@example.com")
	tests := []struct {
		at      time.Time
		wantErr error
	}{
		{tok.ExpiresAt.Add(-time.Microsecond), nil},
		{tok.ExpiresAt, storage.ErrNotFound},
		{tok.ExpiresAt.Add(time.Second), storage.ErrNotFound},
	}
	for _, tc := range tests {
		clk.Set(tc.at)
		_, err := s.GetAccountToken(ctx, tok.Purpose, tok.ID)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("get at expiry%+v: got %v, want %v", tc.at.Sub(tok.ExpiresAt), err, tc.wantErr)
		}
	}
}

// testAccountTokenStoredAsGiven: the caller hashes the link's secret; the
// store keeps the ID it is given, and the secret appears nowhere.
func testAccountTokenStoredAsGiven(t *testing.T, s *storage.Store, clk *Clock) {
	const secret = "link-secret-4f2a9c"
	tok := createAccountToken(t, s, clk, secret, storage.PurposeResetPassword, "id-alice", "alice@example.com")
	if got := accountTokenIDs(t, s); !slices.Equal(got, []string{tok.ID}) {
		t.Errorf("got stored IDs %q, want only %q", got, tok.ID)
	}
	for _, column := range []string{"id", "purpose", "user_id", "email", "username", "user_groups"} {
		if raw := rawColumn(t, s, "account_tokens", column, "id", tok.ID); bytes.Contains(raw, []byte(secret)) {
			t.Errorf("column %s holds the link's secret: %q", column, raw)
		}
	}
}

func testCreateUserWithToken(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	invite := createAccountToken(t, s, clk, "invite-1", storage.PurposeInvite, "", "carol@example.com")
	register := createAccountToken(t, s, clk, "register-1", storage.PurposeRegister, "", "erin@example.com")
	taken := createAccountToken(t, s, clk, "invite-2", storage.PurposeInvite, "", "frank@example.com")
	unknown := storage.AccountToken{ID: tokenID("unknown"), Purpose: storage.PurposeInvite}
	user := func(name string) storage.User {
		return storage.User{
			ID: "id-" + name, Username: name, Email: name + "@example.com", EmailVerified: true,
			Name: "Name of " + name, Groups: []string{"staff"}, PasswordHash: "hash-of-" + name,
		}
	}
	steps := []struct {
		name        string
		purpose     string
		tok         storage.AccountToken
		user        storage.User
		wantErr     error
		wantUsers   int  // how many users exist afterwards
		wantUnspent bool // the token can still be used afterwards
	}{
		{"invitation", storage.PurposeInvite, invite, user("carol"), nil, 2, false},
		{"invitation used again", storage.PurposeInvite, invite, user("dave"), storage.ErrNotFound, 2, false},
		{"registration as an invitation", storage.PurposeInvite, register, user("erin"), storage.ErrNotFound, 2, true},
		{"registration", storage.PurposeRegister, register, user("erin"), nil, 3, false},
		{"taken username", storage.PurposeInvite, taken,
			storage.User{ID: "id-alice-2", Username: "alice", PasswordHash: "h"}, storage.ErrAlreadyExists, 3, true},
		{"taken ID", storage.PurposeInvite, taken,
			storage.User{ID: "id-alice", Username: "alice-2", PasswordHash: "h"}, storage.ErrAlreadyExists, 3, true},
		{"retry with a free username", storage.PurposeInvite, taken, user("frank"), nil, 4, false},
		{"unknown token", storage.PurposeInvite, unknown, user("grace"), storage.ErrNotFound, 4, false},
	}
	for _, st := range steps {
		err := s.CreateUserWithToken(ctx, st.purpose, st.tok.ID, st.user)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if users, err := s.ListUsers(ctx); err != nil || len(users) != st.wantUsers {
			t.Errorf("%s: got %d users, %v, want %d", st.name, len(users), err, st.wantUsers)
		}
		if got := tokenUnspent(t, s, st.tok); got != st.wantUnspent {
			t.Errorf("%s: got token unspent %v, want %v", st.name, got, st.wantUnspent)
		}
		if st.wantErr != nil {
			continue
		}
		if got, err := s.GetUser(ctx, st.user.ID); err != nil {
			t.Errorf("%s: get the new user: %v", st.name, err)
		} else {
			checkUser(t, got, st.user, clk.Now())
		}
	}
	if _, err := s.GetUserByUsername(ctx, "dave"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get the user of a spent invitation: got %v, want storage.ErrNotFound", err)
	}

	late := createAccountToken(t, s, clk, "invite-3", storage.PurposeInvite, "", "heidi@example.com")
	clk.Set(late.ExpiresAt)
	if err := s.CreateUserWithToken(ctx, storage.PurposeInvite, late.ID, user("heidi")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired token: got %v, want storage.ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, "id-heidi"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("get the user of an expired invitation: got %v, want storage.ErrNotFound", err)
	}
}

// testCreateUserWithTokenConcurrent races 10 sign-ups through one
// invitation, each with its own username: exactly one account is created.
func testCreateUserWithTokenConcurrent(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	tok := createAccountToken(t, s, clk, "invite", storage.PurposeInvite, "", "carol@example.com")
	name := func(i int) string { return fmt.Sprintf("user-%d", i) }
	warmPool(t, s, 10)
	winner := -1
	for i, err := range raceN(10, func(i int) error {
		return s.CreateUserWithToken(ctx, storage.PurposeInvite, tok.ID,
			storage.User{ID: "id-" + name(i), Username: name(i), PasswordHash: "h"})
	}) {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both created a user", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("racer %d: got %v, want nil or storage.ErrNotFound", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("got no winner, want one")
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Username != name(winner) {
		t.Errorf("got users %+v, %v, want only the winner's %s", users, err, name(winner))
	}
	if tokenUnspent(t, s, tok) {
		t.Error("got the token unspent after the race, want it spent")
	}
}

// warmPool opens up to n pooled connections (as many as the pool allows)
// and leaves them idle, so that racers start their transactions together
// rather than one after another behind the set-up of new connections.
func warmPool(t *testing.T, s *storage.Store, n int) {
	t.Helper()
	n = min(n, s.DB().Stats().MaxOpenConnections)
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := s.DB().Conn(context.Background())
		if err != nil {
			t.Fatalf("open a pooled connection: %v", err)
		}
		conns = append(conns, c)
	}
}

func testVerifyEmailWithToken(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "dave"} {
		createUser(t, s, "id-"+name, name)
		if err := s.UpdateProfile(ctx, "id-"+name, "Name of "+name, name+"@new.example"); err != nil {
			t.Fatal(err)
		}
	}
	verify := createAccountToken(t, s, clk, "verify-alice", storage.PurposeVerifyEmail, "id-alice", "alice@new.example")
	reset := createAccountToken(t, s, clk, "reset-alice", storage.PurposeResetPassword, "id-alice", "alice@new.example")
	// bob changed his address again after the link was sent.
	stale := createAccountToken(t, s, clk, "verify-bob", storage.PurposeVerifyEmail, "id-bob", "bob@new.example")
	if err := s.UpdateProfile(ctx, "id-bob", "Name of bob", "bob@newer.example"); err != nil {
		t.Fatal(err)
	}
	late := createAccountToken(t, s, clk, "verify-dave", storage.PurposeVerifyEmail, "id-dave", "dave@new.example")
	unknown := storage.AccountToken{ID: tokenID("unknown"), Purpose: storage.PurposeVerifyEmail}

	steps := []struct {
		name         string
		tok          storage.AccountToken
		at           time.Time // when; zero: now
		wantErr      error
		user         string
		wantVerified bool
		wantUnspent  bool
	}{
		{"a reset token", reset, time.Time{}, storage.ErrNotFound, "id-alice", false, true},
		{"unknown token", unknown, time.Time{}, storage.ErrNotFound, "id-alice", false, false},
		{"verify", verify, time.Time{}, nil, "id-alice", true, false},
		{"verify again", verify, time.Time{}, storage.ErrNotFound, "id-alice", true, false},
		{"address changed since", stale, time.Time{}, storage.ErrNotFound, "id-bob", false, true},
		{"expired", late, late.ExpiresAt, storage.ErrNotFound, "id-dave", false, false},
	}
	for _, st := range steps {
		if !st.at.IsZero() {
			clk.Set(st.at)
		}
		err := s.VerifyEmailWithToken(ctx, st.tok.ID)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		if u, err := s.GetUser(ctx, st.user); err != nil || u.EmailVerified != st.wantVerified {
			t.Errorf("%s: got email verified %v, %v, want %v", st.name, u.EmailVerified, err, st.wantVerified)
		}
		if got := tokenUnspent(t, s, st.tok); got != st.wantUnspent {
			t.Errorf("%s: got token unspent %v, want %v", st.name, got, st.wantUnspent)
		}
	}
	if u, err := s.GetUser(ctx, "id-bob"); err != nil || u.Email != "bob@newer.example" {
		t.Errorf("got bob's address %q, %v, want bob@newer.example", u.Email, err)
	}
}

func testResetPasswordWithToken(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	alice := createUser(t, s, "id-alice", "alice")
	bob := createUser(t, s, "id-bob", "bob")
	for _, u := range []string{"id-alice", "id-bob"} {
		createLoginSession(t, s, clk, "login-done-"+u, storage.StateDone, u)
		createLoginSession(t, s, clk, "login-totp-"+u, storage.StateTOTP, u)
		createDevice(t, s, clk, "device-"+u, u)
	}
	first := createAccountToken(t, s, clk, "reset-alice-1", storage.PurposeResetPassword, "id-alice", "alice@example.com")
	second := createAccountToken(t, s, clk, "reset-alice-2", storage.PurposeResetPassword, "id-alice", "alice@example.com")
	verify := createAccountToken(t, s, clk, "verify-alice", storage.PurposeVerifyEmail, "id-alice", "alice@example.com")
	bobs := createAccountToken(t, s, clk, "reset-bob", storage.PurposeResetPassword, "id-bob", "bob@example.com")

	// state checks a user's password hash, and how many login sessions
	// (in any state) and remembered devices they have.
	state := func(step, userID, wantHash string, wantSessions, wantDevices int) {
		t.Helper()
		if u, err := s.GetUser(ctx, userID); err != nil || u.PasswordHash != wantHash {
			t.Errorf("%s: got %s's password hash %q, %v, want %q", step, userID, u.PasswordHash, err, wantHash)
		}
		if n := countRows(t, s, `SELECT COUNT(*) FROM login_sessions WHERE user_id = ?`, userID); n != wantSessions {
			t.Errorf("%s: got %d login sessions of %s, want %d", step, n, userID, wantSessions)
		}
		if ds, err := s.ListDevices(ctx, userID); err != nil || len(ds) != wantDevices {
			t.Errorf("%s: got %d devices of %s, %v, want %d", step, len(ds), userID, err, wantDevices)
		}
	}
	// unspent checks which of first, second, verify and bobs can still be
	// used.
	unspent := func(step string, want ...bool) {
		t.Helper()
		for i, tok := range []storage.AccountToken{first, second, verify, bobs} {
			if got := tokenUnspent(t, s, tok); got != want[i] {
				t.Errorf("%s: got %s token %d of %s unspent %v, want %v", step, tok.Purpose, i, tok.UserID, got, want[i])
			}
		}
	}

	if err := s.ResetPasswordWithToken(ctx, bobs.ID, "id-alice", "hash-by-bob"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another user's token: got %v, want storage.ErrNotFound", err)
	}
	state("another user's token", "id-alice", alice.PasswordHash, 2, 1)
	unspent("another user's token", true, true, true, true)

	if err := s.ResetPasswordWithToken(ctx, verify.ID, "id-alice", "hash-by-verify"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an email verification token: got %v, want storage.ErrNotFound", err)
	}
	state("an email verification token", "id-alice", alice.PasswordHash, 2, 1)

	if err := s.ResetPasswordWithToken(ctx, first.ID, "id-alice", "new-hash"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	state("reset", "id-alice", "new-hash", 0, 0)
	state("reset, another user", "id-bob", bob.PasswordHash, 2, 1)
	unspent("reset", false, false, true, true)
	// The other reset link is gone from the table, not only spent.
	if got, want := accountTokenIDs(t, s), []string{first.ID, verify.ID, bobs.ID}; !sameSet(got, want) {
		t.Errorf("after reset: got token IDs %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name string
		tok  storage.AccountToken
	}{{"the spent token", first}, {"the voided token", second}, {"an unknown token", storage.AccountToken{ID: tokenID("unknown")}}} {
		if err := s.ResetPasswordWithToken(ctx, tc.tok.ID, "id-alice", "hash-again"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: got %v, want storage.ErrNotFound", tc.name, err)
		}
	}
	state("after the refused resets", "id-alice", "new-hash", 0, 0)
}

func testSetPasswordHashKeepsSession(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob")
	createLoginSession(t, s, clk, "login-bob", storage.StateDone, "id-bob")
	createDevice(t, s, clk, "device-bob", "id-bob")
	steps := []struct {
		name, keep, hash string
		wantIDs          []string // the login sessions left, of both users
	}{
		{"keep one", "login-2", "hash-2", []string{"login-2", "login-bob"}},
		{"keep another user's", "login-bob", "hash-3", []string{"login-bob"}},
		{"keep none", "", "hash-4", []string{"login-bob"}},
	}
	for _, st := range steps {
		// alice starts each step with two completed logins, one half-way
		// and a remembered device.
		if err := s.DeleteUserLoginSessions(ctx, "id-alice"); err != nil {
			t.Fatal(err)
		}
		createLoginSession(t, s, clk, "login-1", storage.StateDone, "id-alice")
		createLoginSession(t, s, clk, "login-2", storage.StateDone, "id-alice")
		createLoginSession(t, s, clk, "login-totp", storage.StateTOTP, "id-alice")
		createDevice(t, s, clk, "device-alice", "id-alice")

		if err := s.SetPasswordHash(ctx, "id-alice", st.hash, st.keep); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if u, err := s.GetUser(ctx, "id-alice"); err != nil || u.PasswordHash != st.hash {
			t.Errorf("%s: got password hash %q, %v, want %q", st.name, u.PasswordHash, err, st.hash)
		}
		for _, id := range []string{"login-1", "login-2", "login-totp", "login-bob"} {
			_, err := s.GetLoginSession(ctx, id)
			if want := slices.Contains(st.wantIDs, id); (err == nil) != want || (err != nil && !errors.Is(err, storage.ErrNotFound)) {
				t.Errorf("%s: get login session %s: got %v, want it kept %v", st.name, id, err, want)
			}
		}
		if ds, err := s.ListDevices(ctx, "id-alice"); err != nil || len(ds) != 0 {
			t.Errorf("%s: got %d devices, %v, want none", st.name, len(ds), err)
		}
	}
	if ds, err := s.ListDevices(ctx, "id-bob"); err != nil || len(ds) != 1 {
		t.Errorf("got %d devices of another user, %v, want 1", len(ds), err)
	}
}

func testUpdateProfile(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	createUser(t, s, "id-alice", "alice") // verified alice@example.com
	bob := createUser(t, s, "id-bob", "bob")
	steps := []struct {
		name, newName, email string
		wantVerified         bool
	}{
		{"new name, same address", "Alice Liddell", "alice@example.com", true},
		{"nothing new", "Alice Liddell", "alice@example.com", true},
		{"same address in other case", "Alice Liddell", "Alice@Example.com", true},
		{"new address", "Alice Liddell", "alice@wonderland.example", false},
		{"same address, still unverified", "Alice L.", "alice@wonderland.example", false},
		{"neither name nor address", "", "", false},
	}
	for _, st := range steps {
		if err := s.UpdateProfile(ctx, "id-alice", st.newName, st.email); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		u, err := s.GetUser(ctx, "id-alice")
		if err != nil || u.Name != st.newName || u.Email != st.email || u.EmailVerified != st.wantVerified {
			t.Errorf("%s: got name %q, email %q, verified %v, %v, want %q, %q, %v",
				st.name, u.Name, u.Email, u.EmailVerified, err, st.newName, st.email, st.wantVerified)
		}
	}
	if err := s.UpdateProfile(ctx, "id-nobody", "Nobody", "nobody@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("update an unknown user: got %v, want storage.ErrNotFound", err)
	}
	if got, err := s.GetUser(ctx, "id-bob"); err != nil {
		t.Errorf("get another user: %v", err)
	} else {
		checkUser(t, got, bob, t0)
	}
}

func testUsersByEmail(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	for _, u := range []struct{ name, email string }{
		{"carol", "Shared@Example.com"},
		{"alice", "shared@example.com"},
		{"bob", "SHARED@EXAMPLE.COM"},
		{"dave", "other@example.com"},
		{"erin", "shared@example.com.evil"},
		{"frank", ""},
	} {
		createUser(t, s, "id-"+u.name, u.name)
		if err := s.UpdateProfile(ctx, "id-"+u.name, "Name of "+u.name, u.email); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		email string
		want  []string // username email
	}{
		{"shared@example.com", []string{"alice shared@example.com", "bob SHARED@EXAMPLE.COM", "carol Shared@Example.com"}},
		{"sHaReD@eXaMpLe.CoM", []string{"alice shared@example.com", "bob SHARED@EXAMPLE.COM", "carol Shared@Example.com"}},
		{"other@example.com", []string{"dave other@example.com"}},
		{"nobody@example.com", nil},
		{"shared", nil},
		{"%@example.com", nil},
		{"_hared@example.com", nil},
		{"", nil}, // frank has no address, not the empty one
	}
	for _, tc := range tests {
		t.Run(tc.email, func(t *testing.T) {
			users, err := s.UsersByEmail(ctx, tc.email)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.Username+" "+u.Email)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func testReplaceTOTP(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const oldSecret, newSecret, bobSecret = "OLDSECRETABCDEFG", "NEWSECRETHIJKLMN234567ABCDEFGHIJ", "BOBSECRETOPQRSTU"
	createUser(t, s, "id-alice", "alice")
	createUser(t, s, "id-bob", "bob") // no authenticator
	if err := s.ConfirmTOTP(ctx, "id-alice", oldSecret, 100, []string{"recovery-hash"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"id-alice", "id-bob"} {
		if _, err := s.CountCodeFailure(ctx, u, 5); err != nil {
			t.Fatal(err)
		}
	}
	for _, ls := range []struct{ id, user, secret string }{
		{"login-alice", "id-alice", newSecret},
		{"login-alice-2", "id-alice", "OTHERPENDINGABCD"},
		{"login-bob", "id-bob", bobSecret},
	} {
		createLoginSession(t, s, clk, ls.id, storage.StateDone, ls.user)
		if err := s.SetPendingTOTPSecret(ctx, ls.id, ls.secret); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute)
	pending := func(step string, want map[string]string) {
		t.Helper()
		for id, w := range want {
			if ls, err := s.GetLoginSession(ctx, id); err != nil || ls.PendingTOTPSecret != w {
				t.Errorf("%s: got %s's pending secret %q, %v, want %q", step, id, ls.PendingTOTPSecret, err, w)
			}
		}
	}

	// Without a confirmed authenticator, nothing changes.
	for _, user := range []string{"id-bob", "id-nobody"} {
		if err := s.ReplaceTOTP(ctx, user, "login-bob", bobSecret, 500); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("replace the authenticator of %s: got %v, want storage.ErrConflict", user, err)
		}
	}
	if u, err := s.GetUser(ctx, "id-bob"); err != nil || u.HasTOTP() || u.TOTPLastStep != 0 || u.FailedCodes != 1 || !u.TOTPConfirmedAt.IsZero() {
		t.Errorf("after the refused replace: got secret %q, last step %d, %d failed codes, confirmed at %v, %v, want none, 0, 1, zero",
			u.TOTPSecret, u.TOTPLastStep, u.FailedCodes, u.TOTPConfirmedAt, err)
	}
	if raw := rawColumn(t, s, "users", "totp_secret", "id", "id-bob"); raw != nil {
		t.Errorf("after the refused replace: got %d bytes in totp_secret, want NULL", len(raw))
	}
	pending("after the refused replace", map[string]string{"login-bob": bobSecret})

	createDevice(t, s, clk, "device-alice", "id-alice")
	createDevice(t, s, clk, "device-bob", "id-bob")
	if err := s.ReplaceTOTP(ctx, "id-alice", "login-alice", newSecret, 200); err != nil {
		t.Fatalf("replace: %v", err)
	}
	// Devices were remembered on the old authenticator's word.
	for user, want := range map[string]int{"id-alice": 0, "id-bob": 1} {
		if ds, err := s.ListDevices(ctx, user); err != nil || len(ds) != want {
			t.Errorf("after replace: got %d devices of %s, %v, want %d", len(ds), user, err, want)
		}
	}
	u, err := s.GetUser(ctx, "id-alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.TOTPSecret != newSecret || u.TOTPLastStep != 200 || u.FailedCodes != 0 || !sameTime(u.TOTPConfirmedAt, clk.Now()) {
		t.Errorf("after replace: got secret %q, last step %d, %d failed codes, confirmed at %v, want %q, 200, 0, %v",
			u.TOTPSecret, u.TOTPLastStep, u.FailedCodes, u.TOTPConfirmedAt, newSecret, clk.Now())
	}
	raw := rawColumn(t, s, "users", "totp_secret", "id", "id-alice")
	if len(raw) <= len(newSecret) || bytes.Contains(raw, []byte(newSecret)) || bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(newSecret[:16]))) {
		t.Errorf("after replace: got totp_secret %q, want the secret sealed", raw)
	}
	pending("after replace", map[string]string{"login-alice": "", "login-alice-2": "OTHERPENDINGABCD", "login-bob": bobSecret})
	if n, err := s.RecoveryCodesLeft(ctx, "id-alice"); err != nil || n != 1 {
		t.Errorf("after replace: got %d recovery codes, %v, want 1", n, err)
	}
	for _, st := range []struct {
		step    int64
		wantErr error
	}{{200, storage.ErrConflict}, {201, nil}} {
		if err := s.UseTOTPStep(ctx, "id-alice", st.step); !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("after replace, use step %d: got %v, want %v", st.step, err, st.wantErr)
		}
	}

	// The session named must be the user's: another user's keeps its
	// pending secret.
	if err := s.ReplaceTOTP(ctx, "id-alice", "login-bob", oldSecret, 300); err != nil {
		t.Fatalf("replace naming another user's session: %v", err)
	}
	pending("after replace naming another user's session", map[string]string{"login-bob": bobSecret})
}

func testListUserLoginSessions(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	now := clk.Now()
	a511 := strings.Repeat("a", 511)
	type session struct {
		ls                storage.LoginSession
		wantIP, wantAgent string
	}
	done := func(id, userID string, authAgo time.Duration, ip, agent string) storage.LoginSession {
		return storage.LoginSession{
			ID: id, State: storage.StateDone, UserID: userID, CSRFToken: "csrf-" + id, PasswordAt: now.Add(-authAgo),
			AuthTime: now.Add(-authAgo), AMR: []string{"pwd", "otp"}, ACR: storage.ACRTOTP, SID: "sid-" + id,
			IP: ip, UserAgent: agent, ExpiresAt: now.Add(time.Hour),
		}
	}
	sessions := []session{
		{done("login-old", "id-alice", 3*time.Hour, "192.0.2.1", "Firefox/128.0"), "192.0.2.1", "Firefox/128.0"},
		{done("login-new", "id-alice", time.Minute, "2001:db8::1", "curl/8.5.0"), "2001:db8::1", "curl/8.5.0"},
		{done("login-long", "id-alice", time.Hour, strings.Repeat("1", 300), a511+"bc"), strings.Repeat("1", 256), a511 + "b"},
		{done("login-rune", "id-alice", 90*time.Minute, "", a511+"é"), "", a511},
		{done("login-bad", "id-alice", 2*time.Hour, "\xff192.0.2.9", "Mozilla/5.0 \xff\xfe(X11)"), "\uFFFD192.0.2.9", "Mozilla/5.0 \uFFFD(X11)"},
	}
	unfinished := storage.LoginSession{ID: "login-totp", State: storage.StateTOTP, UserID: "id-alice", CSRFToken: "c", ExpiresAt: now.Add(time.Hour)}
	expired := done("login-expired", "id-alice", 30*time.Second, "192.0.2.2", "x")
	expired.ExpiresAt = now
	others := done("login-bob", "id-bob", 2*time.Minute, "192.0.2.3", "y")
	for _, ls := range []storage.LoginSession{sessions[0].ls, sessions[1].ls, sessions[2].ls, sessions[3].ls, sessions[4].ls, unfinished, expired, others} {
		if err := s.CreateLoginSession(ctx, ls); err != nil {
			t.Fatalf("create login session %s: %v", ls.ID, err)
		}
	}

	got, err := s.ListUserLoginSessions(ctx, "id-alice")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	wantOrder := []int{1, 2, 3, 4, 0} // newest auth time first
	if len(got) != len(wantOrder) {
		var ids []string
		for _, ls := range got {
			ids = append(ids, ls.ID)
		}
		t.Fatalf("got sessions %q, want login-new, login-long, login-rune, login-bad, login-old", ids)
	}
	for i, w := range wantOrder {
		want := sessions[w]
		want.ls.CreatedAt = now
		checkLoginSession(t, got[i], want.ls)
		if got[i].SID != want.ls.SID || got[i].IP != want.wantIP || got[i].UserAgent != want.wantAgent {
			t.Errorf("session %d: got sid %q, IP %q, user agent %q, want %q, %q, %q",
				i, got[i].SID, got[i].IP, got[i].UserAgent, want.ls.SID, want.wantIP, want.wantAgent)
		}
	}
	// GetLoginSession reads the same bounded values.
	if ls, err := s.GetLoginSession(ctx, "login-bad"); err != nil || ls.IP != "\uFFFD192.0.2.9" || ls.UserAgent != "Mozilla/5.0 \uFFFD(X11)" {
		t.Errorf("get: got IP %q, user agent %q, %v, want %q, %q", ls.IP, ls.UserAgent, err, "\uFFFD192.0.2.9", "Mozilla/5.0 \uFFFD(X11)")
	}
	if got, err := s.ListUserLoginSessions(ctx, "id-bob"); err != nil || len(got) != 1 || got[0].ID != "login-bob" {
		t.Errorf("list another user's: got %+v, %v, want login-bob", got, err)
	}
	if got, err := s.ListUserLoginSessions(ctx, "id-nobody"); err != nil || len(got) != 0 {
		t.Errorf("list a user without sessions: got %+v, %v, want none", got, err)
	}
	clk.Set(sessions[0].ls.ExpiresAt)
	if got, err := s.ListUserLoginSessions(ctx, "id-alice"); err != nil || len(got) != 0 {
		t.Errorf("list after every session expired: got %d sessions, %v, want none", len(got), err)
	}
}

func testDeleteUserLoginSessionBySID(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	for _, ls := range []struct{ id, state, user, sid string }{
		{"login-1", storage.StateDone, "id-alice", "sid-1"},
		{"login-2", storage.StateDone, "id-alice", "sid-2"},
		{"login-no-sid", storage.StateDone, "id-alice", ""},
		{"login-totp", storage.StateTOTP, "id-alice", "sid-totp"},
		{"login-bob", storage.StateDone, "id-bob", "sid-bob"},
	} {
		err := s.CreateLoginSession(ctx, storage.LoginSession{
			ID: ls.id, State: ls.state, UserID: ls.user, CSRFToken: "c", SID: ls.sid, ExpiresAt: clk.Now().Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name     string
		sid      string
		wantErr  error
		wantLeft []string
	}{
		{"another user's", "sid-bob", storage.ErrNotFound, []string{"login-1", "login-2", "login-no-sid", "login-totp", "login-bob"}},
		{"unknown", "sid-unknown", storage.ErrNotFound, []string{"login-1", "login-2", "login-no-sid", "login-totp", "login-bob"}},
		{"empty", "", storage.ErrNotFound, []string{"login-1", "login-2", "login-no-sid", "login-totp", "login-bob"}},
		{"unfinished login", "sid-totp", storage.ErrNotFound, []string{"login-1", "login-2", "login-no-sid", "login-totp", "login-bob"}},
		{"own", "sid-1", nil, []string{"login-2", "login-no-sid", "login-totp", "login-bob"}},
		{"own again", "sid-1", storage.ErrNotFound, []string{"login-2", "login-no-sid", "login-totp", "login-bob"}},
	}
	for _, st := range steps {
		err := s.DeleteUserLoginSessionBySID(ctx, "id-alice", st.sid)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
		for _, id := range []string{"login-1", "login-2", "login-no-sid", "login-totp", "login-bob"} {
			_, err := s.GetLoginSession(ctx, id)
			if want := slices.Contains(st.wantLeft, id); (err == nil) != want || (err != nil && !errors.Is(err, storage.ErrNotFound)) {
				t.Errorf("%s: get login session %s: got %v, want it kept %v", st.name, id, err, want)
			}
		}
	}
}

func testListGrants(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	var want []storage.Grant
	for _, g := range []storage.Grant{
		{UserID: "id-alice", ClientID: "client-2", Scopes: []string{"openid", "email"}},
		{UserID: "id-alice", ClientID: "client-1", Scopes: []string{"openid", "profile"}},
		{UserID: "id-bob", ClientID: "client-1", Scopes: []string{"openid"}},
		{UserID: "id-alice", ClientID: "client-3", Scopes: []string{"openid"}},
	} {
		if err := s.SaveGrant(ctx, g.UserID, g.ClientID, g.Scopes); err != nil {
			t.Fatal(err)
		}
		g.CreatedAt, g.UpdatedAt = clk.Now(), clk.Now()
		if g.UserID == "id-alice" {
			want = append(want, g)
		}
		clk.Add(time.Minute)
	}
	slices.SortFunc(want, func(a, b storage.Grant) int { return strings.Compare(a.ClientID, b.ClientID) })
	got, err := s.ListGrants(ctx, "id-alice")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d grants %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.UserID != w.UserID || g.ClientID != w.ClientID || !sameSet(g.Scopes, w.Scopes) ||
			!sameTime(g.CreatedAt, w.CreatedAt) || !sameTime(g.UpdatedAt, w.UpdatedAt) {
			t.Errorf("grant %d: got %+v, want %+v", i, g, w)
		}
	}
	if got, err := s.ListGrants(ctx, "id-nobody"); err != nil || len(got) != 0 {
		t.Errorf("list a user without grants: got %+v, %v, want none", got, err)
	}
}

func testRevokeGrant(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	createClient(t, s, "client-2")
	// Every kind of code and token, for each user and client; carol never
	// consented to client-1 (say, it skips consent) yet holds its tokens.
	pairs := []struct{ user, client string }{
		{"id-alice", "client-1"}, {"id-alice", "client-2"}, {"id-bob", "client-1"}, {"id-carol", "client-1"},
	}
	sig := func(kind, user, client string) string { return kind + "-" + user + "-" + client }
	kinds := append(fositeKinds(s), fositeKind{
		name:   "code",
		create: s.CreateAuthorizeCodeSession,
		get:    s.GetAuthorizeCodeSession,
	})
	for _, p := range pairs {
		req := newRequest(clk, p.client, "request-"+p.user+"-"+p.client, p.user)
		for _, k := range kinds {
			if err := k.create(ctx, sig(k.name, p.user, p.client), req); err != nil {
				t.Fatalf("create %s: %v", k.name, err)
			}
		}
	}
	for _, p := range pairs[:3] {
		if err := s.SaveGrant(ctx, p.user, p.client, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name, user, client string
		wantErr            error
	}{
		{"a user without a grant", "id-carol", "client-1", storage.ErrNotFound},
		{"a client without a grant", "id-alice", "client-3", storage.ErrNotFound},
		{"revoke", "id-alice", "client-1", nil},
		{"revoke again", "id-alice", "client-1", storage.ErrNotFound},
	}
	for _, st := range steps {
		err := s.RevokeGrant(ctx, st.user, st.client)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.wantErr)
		}
	}

	for _, p := range pairs {
		revoked := p.user == "id-alice" && p.client == "client-1"
		for _, k := range kinds {
			_, err := k.get(ctx, sig(k.name, p.user, p.client), newSession())
			switch {
			case revoked && !errors.Is(err, fosite.ErrNotFound):
				t.Errorf("get %s of %s for %s: got %v, want fosite.ErrNotFound", k.name, p.user, p.client, err)
			case !revoked && err != nil:
				t.Errorf("get %s of %s for %s: got %v, want nil", k.name, p.user, p.client, err)
			}
		}
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM oauth2_sessions WHERE subject = ? AND client_id = ?`, "id-alice", "client-1"); n != 0 {
		t.Errorf("got %d rows of the revoked grant's codes and tokens, want 0", n)
	}
	if n := countRows(t, s, `SELECT COUNT(*) FROM oauth2_sessions`); n != 3*len(kinds) {
		t.Errorf("got %d rows of codes and tokens, want %d", n, 3*len(kinds))
	}
	for _, tc := range []struct {
		user, client string
		wantErr      error
	}{
		{"id-alice", "client-1", storage.ErrNotFound},
		{"id-alice", "client-2", nil},
		{"id-bob", "client-1", nil},
	} {
		if _, err := s.GetGrant(ctx, tc.user, tc.client); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("get grant of %s for %s: got %v, want %v", tc.user, tc.client, err, tc.wantErr)
		}
	}
}

func testDeleteExpiredAccountTokens(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	tokens := map[string]storage.AccountToken{}
	for _, tc := range []struct {
		name  string
		life  time.Duration
		spend bool
	}{
		{"live", 3 * time.Hour, false},
		{"live, spent", 3 * time.Hour, true},
		{"expired", time.Hour, false},
		{"expired, spent", time.Hour, true},
	} {
		tok := storage.AccountToken{ID: tokenID(tc.name), Purpose: storage.PurposeInvite, ExpiresAt: clk.Now().Add(tc.life)}
		if err := s.CreateAccountToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if tc.spend {
			user := storage.User{ID: "id-" + tokenID(tc.name)[:8], Username: tokenID(tc.name)[:8], PasswordHash: "h"}
			if err := s.CreateUserWithToken(ctx, storage.PurposeInvite, tok.ID, user); err != nil {
				t.Fatal(err)
			}
		}
		tokens[tc.name] = tok
	}
	clk.Add(2 * time.Hour)

	n, err := s.DeleteExpired(ctx, time.Hour)
	if err != nil || n != 2 {
		t.Errorf("delete expired: got %d rows, %v, want 2", n, err)
	}
	if got, want := accountTokenIDs(t, s), []string{tokens["live"].ID, tokens["live, spent"].ID}; !sameSet(got, want) {
		t.Errorf("got token IDs %q, want %q", got, want)
	}
	if !tokenUnspent(t, s, tokens["live"]) {
		t.Error("got the live token unusable after delete expired, want it usable")
	}
	if n, err := s.DeleteExpired(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("delete expired again: got %d, %v, want 0", n, err)
	}
}
