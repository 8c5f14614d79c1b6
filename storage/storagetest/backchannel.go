package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var backchannelTests = []test{
	{"Backchannel/SessionSID", testSessionSID},
	{"Backchannel/Queue", testBackchannelQueue},
	{"Backchannel/ClaimRetryDelete", testBackchannelClaimRetryDelete},
	{"Backchannel/SessionClientsExpire", testSessionClientsExpire},
	{"Backchannel/DeleteClient", testBackchannelDeleteClient},
	{"Backchannel/ConcurrentClaim", testBackchannelConcurrentClaim},
	{"Backchannel/ConcurrentQueue", testBackchannelConcurrentQueue},
}

// backchannelLease is how long a claim hides a logout in these tests.
const backchannelLease = time.Minute

// createBackchannelClient registers a client whose back-channel logout
// URI is uri ("" for none).
func createBackchannelClient(t *testing.T, s *storage.Store, id, uri string) {
	t.Helper()
	c := &storage.Client{
		ID: id, RedirectURIs: []string{"https://" + id + ".example/callback"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid"}, BackchannelLogoutURI: uri,
	}
	if err := s.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("create client %q: %v", id, err)
	}
}

// addSessionClient records that sid signed userID in to clientID, for an
// hour from the clock.
func addSessionClient(t *testing.T, s *storage.Store, clk *Clock, sid, clientID, userID string) {
	t.Helper()
	sc := storage.SessionClient{SID: sid, ClientID: clientID, UserID: userID, ExpiresAt: clk.Now().Add(time.Hour)}
	if err := s.AddSessionClient(context.Background(), sc); err != nil {
		t.Fatalf("add session client %s %s: %v", sid, clientID, err)
	}
}

// queue queues sid's logouts and checks how many.
func queue(t *testing.T, s *storage.Store, sid string, want int64) {
	t.Helper()
	n, err := s.QueueBackchannelLogouts(context.Background(), sid)
	if err != nil || n != want {
		t.Fatalf("queue logouts of %s: got %d, %v; want %d, nil", sid, n, err, want)
	}
}

// claim claims the due logouts and checks how many there were.
func claim(t *testing.T, s *storage.Store, want int) []storage.BackchannelLogout {
	t.Helper()
	got, err := s.ClaimBackchannelLogouts(context.Background(), 10, backchannelLease)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if len(got) != want {
		t.Fatalf("claim: got %d logouts %+v, want %d", len(got), got, want)
	}
	return got
}

// testSessionSID: the sid is kept as created and replaced as advanced.
func testSessionSID(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	now := clk.Now()
	ls := storage.LoginSession{ID: "login-1", State: storage.StateTOTP, UserID: "id-alice", CSRFToken: "c", ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateLoginSession(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetLoginSession(ctx, "login-1"); err != nil || got.SID != "" {
		t.Fatalf("get session before done: got sid %q, %v; want none", got.SID, err)
	}
	done := storage.LoginSession{ID: "login-2", State: storage.StateDone, UserID: "id-alice", CSRFToken: "c2",
		AuthTime: now, SID: "sid-1", ExpiresAt: now.Add(time.Hour)}
	if err := s.AdvanceLoginSession(ctx, "login-1", storage.StateTOTP, done); err != nil {
		t.Fatalf("advance: %v", err)
	}
	if got, err := s.GetLoginSession(ctx, "login-2"); err != nil || got.SID != "sid-1" {
		t.Errorf("get done session: got sid %q, %v; want sid-1", got.SID, err)
	}
	created := storage.LoginSession{ID: "login-3", State: storage.StateDone, UserID: "id-alice", CSRFToken: "c3",
		AuthTime: now, SID: "sid-3", ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateLoginSession(ctx, created); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetLoginSession(ctx, "login-3"); err != nil || got.SID != "sid-3" {
		t.Errorf("get created session: got sid %q, %v; want sid-3", got.SID, err)
	}
}

// testBackchannelQueue: a logout is queued for each client of the session
// that has a back-channel logout URI, once.
func testBackchannelQueue(t *testing.T, s *storage.Store, clk *Clock) {
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	createBackchannelClient(t, s, "rp-2", "https://rp-2.example/logout")
	createBackchannelClient(t, s, "plain", "")
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice")
	addSessionClient(t, s, clk, "sid-1", "plain", "id-alice")
	clk.Add(time.Second)
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice") // again: no second row
	addSessionClient(t, s, clk, "sid-2", "rp-2", "id-bob")

	queue(t, s, "sid-unknown", 0)
	clk.Add(time.Second)
	queued := clk.Now()
	queue(t, s, "sid-1", 1)
	queue(t, s, "sid-1", 0) // the session's clients are forgotten
	got := claim(t, s, 1)[0]
	want := storage.BackchannelLogout{
		ClientID: "rp-1", UserID: "id-alice", SID: "sid-1", URI: "https://rp-1.example/logout",
		Attempts: 1, NextAttemptAt: queued.Add(backchannelLease), CreatedAt: queued,
	}
	if got.ID == "" || got.ClientID != want.ClientID || got.UserID != want.UserID || got.SID != want.SID ||
		got.URI != want.URI || got.Attempts != want.Attempts || !sameTime(got.NextAttemptAt, want.NextAttemptAt) ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("claimed %+v, want %+v with an ID", got, want)
	}
	claim(t, s, 0) // leased

	// The other session's client is untouched, and queued on its own.
	queue(t, s, "sid-2", 1)
	if got := claim(t, s, 1)[0]; got.ClientID != "rp-2" || got.SID != "sid-2" || got.UserID != "id-bob" {
		t.Errorf("claimed %+v, want rp-2's logout of sid-2 for id-bob", got)
	}
}

// testBackchannelClaimRetryDelete walks one logout through a failed
// attempt, a retry, a lost lease and its delivery.
func testBackchannelClaimRetryDelete(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice")
	queue(t, s, "sid-1", 1)
	l := claim(t, s, 1)[0]
	if l.Attempts != 1 {
		t.Fatalf("first claim: got %d attempts, want 1", l.Attempts)
	}

	// The attempt failed: due again in 10 s, not before.
	if err := s.RetryBackchannelLogout(ctx, l.ID, 0, clk.Now()); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("retry with a stale attempt count: got %v, want storage.ErrConflict", err)
	}
	if err := s.RetryBackchannelLogout(ctx, l.ID, l.Attempts, clk.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("retry: %v", err)
	}
	clk.Add(10*time.Second - time.Microsecond)
	claim(t, s, 0)
	clk.Add(time.Microsecond)
	l2 := claim(t, s, 1)[0]
	if l2.ID != l.ID || l2.Attempts != 2 {
		t.Fatalf("second claim: got %+v, want %s with 2 attempts", l2, l.ID)
	}

	// The claimer went quiet: after the lease another claims it, and the
	// first can no longer reschedule it.
	clk.Add(backchannelLease)
	l3 := claim(t, s, 1)[0]
	if l3.Attempts != 3 {
		t.Fatalf("claim after the lease: got %d attempts, want 3", l3.Attempts)
	}
	if err := s.RetryBackchannelLogout(ctx, l.ID, l2.Attempts, clk.Now()); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("retry by the claimer whose lease ran out: got %v, want storage.ErrConflict", err)
	}

	// Delivered: gone for good.
	if err := s.DeleteBackchannelLogout(ctx, l.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := s.DeleteBackchannelLogout(ctx, l.ID); err != nil {
		t.Errorf("delete again: got %v, want nil", err)
	}
	clk.Add(24 * time.Hour)
	claim(t, s, 0)
	if err := s.RetryBackchannelLogout(ctx, l.ID, l3.Attempts, clk.Now()); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("retry a deleted logout: got %v, want storage.ErrConflict", err)
	}
}

// testSessionClientsExpire: the record of a session's clients goes with
// the session's expiry, so a later logout queues nothing.
func testSessionClientsExpire(t *testing.T, s *storage.Store, clk *Clock) {
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	addSessionClient(t, s, clk, "sid-old", "rp-1", "id-alice") // expires in an hour
	clk.Add(90 * time.Minute)
	addSessionClient(t, s, clk, "sid-new", "rp-1", "id-alice")
	n, err := s.DeleteExpired(context.Background(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("delete expired: got %d, %v; want 1 (the old session's client), nil", n, err)
	}
	queue(t, s, "sid-old", 0)
	queue(t, s, "sid-new", 1)
}

// testBackchannelDeleteClient: a removed client is told nothing more.
func testBackchannelDeleteClient(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	createBackchannelClient(t, s, "rp-2", "https://rp-2.example/logout")
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice")
	addSessionClient(t, s, clk, "sid-2", "rp-1", "id-alice")
	addSessionClient(t, s, clk, "sid-2", "rp-2", "id-alice")
	queue(t, s, "sid-1", 1)
	if err := s.DeleteClient(ctx, "rp-1"); err != nil {
		t.Fatal(err)
	}
	claim(t, s, 0)
	queue(t, s, "sid-2", 1)
	if got := claim(t, s, 1)[0]; got.ClientID != "rp-2" {
		t.Errorf("claimed %+v, want rp-2's logout", got)
	}
}

// testBackchannelConcurrentClaim: instances claiming at once deliver each
// logout once.
func testBackchannelConcurrentClaim(t *testing.T, s *storage.Store, clk *Clock) {
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	createBackchannelClient(t, s, "rp-2", "https://rp-2.example/logout")
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice")
	addSessionClient(t, s, clk, "sid-1", "rp-2", "id-alice")
	queue(t, s, "sid-1", 2)
	claimed := make([][]storage.BackchannelLogout, racers)
	errs := race(func(i int) error {
		var err error
		claimed[i], err = s.ClaimBackchannelLogouts(context.Background(), 10, backchannelLease)
		return err
	})
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("claimer %d: %v", i, err)
		}
		for _, l := range claimed[i] {
			seen[l.ClientID]++
			if l.Attempts != 1 {
				t.Errorf("claimer %d got %s with %d attempts, want 1", i, l.ClientID, l.Attempts)
			}
		}
	}
	if seen["rp-1"] != 1 || seen["rp-2"] != 1 || len(seen) != 2 {
		t.Errorf("claims per client: got %v, want rp-1 and rp-2 once each", seen)
	}
}

// testBackchannelConcurrentQueue: two logouts of one session at once
// queue its logouts once.
func testBackchannelConcurrentQueue(t *testing.T, s *storage.Store, clk *Clock) {
	createBackchannelClient(t, s, "rp-1", "https://rp-1.example/logout")
	createBackchannelClient(t, s, "rp-2", "https://rp-2.example/logout")
	addSessionClient(t, s, clk, "sid-1", "rp-1", "id-alice")
	addSessionClient(t, s, clk, "sid-1", "rp-2", "id-alice")
	queued := make([]int64, racers)
	errs := race(func(i int) error {
		var err error
		queued[i], err = s.QueueBackchannelLogouts(context.Background(), "sid-1")
		return err
	})
	var total int64
	for i, err := range errs {
		if err != nil {
			t.Errorf("queuer %d: %v", i, err)
		}
		total += queued[i]
	}
	if total != 2 {
		t.Errorf("queued in all: got %d (%v), want 2", total, queued)
	}
	claim(t, s, 2)
}
