package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var throttleTests = []test{
	{"Throttles/Reserve", testThrottleReserve},
	{"Throttles/RefundReset", testThrottleRefundReset},
}

// backoff is the delay the throttle tests use: two free failures, then a
// block one minute longer for each failure after them.
func backoff(failures int) time.Duration {
	if failures <= 2 {
		return 0
	}
	return time.Duration(failures-2) * time.Minute
}

// checkThrottle compares what ThrottleFailures reports for key; a zero
// wantUntil means no row at all.
func checkThrottle(t *testing.T, s *storage.Store, step, key string, wantFailures int, wantUntil time.Time) {
	t.Helper()
	n, until, err := s.ThrottleFailures(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: throttle failures of %s: %v", step, key, err)
	}
	if n != wantFailures || (wantUntil.IsZero() && !until.IsZero()) || (!wantUntil.IsZero() && !sameTime(until, wantUntil)) {
		t.Errorf("%s: got %d failures of %s blocked until %v, want %d until %v", step, n, key, until, wantFailures, wantUntil)
	}
}

func testThrottleReserve(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	const forget = time.Hour
	// Each step is one ReserveAttempt at t0+at. The third failure blocks
	// for a minute, the fourth for two, the fifth for three; a block ends
	// at its deadline, and failures whose block ended more than forget ago
	// count from zero again.
	third := 2 * time.Second
	fourth := third + time.Minute
	fifth := fourth + 2*time.Minute + 30*time.Second
	fifthEnds := fifth + 3*time.Minute
	steps := []struct {
		name         string
		at           time.Duration
		key          string
		wantOK       bool
		wantUntil    time.Duration // returned when refused, after t0
		wantFailures int
		wantBlocked  time.Duration // the row's blocked until, after t0
	}{
		{"first failure is free", 0, "login:alice", true, 0, 1, 0},
		{"second failure is free", time.Second, "login:alice", true, 0, 2, time.Second},
		{"third failure is allowed and blocks", third, "login:alice", true, 0, 3, third + time.Minute},
		{"blocked", 30 * time.Second, "login:alice", false, third + time.Minute, 3, third + time.Minute},
		{"blocked until the last microsecond", third + time.Minute - time.Microsecond, "login:alice", false, third + time.Minute, 3, third + time.Minute},
		{"another key is not blocked", third + time.Minute - time.Microsecond, "login:bob", true, 0, 1, third + time.Minute - time.Microsecond},
		{"the block ends at its deadline", fourth, "login:alice", true, 0, 4, fourth + 2*time.Minute},
		{"blocked longer", fourth + time.Minute, "login:alice", false, fourth + 2*time.Minute, 4, fourth + 2*time.Minute},
		{"fifth failure", fifth, "login:alice", true, 0, 5, fifthEnds},
		{"remembered until forget has passed", fifthEnds + forget, "login:alice", true, 0, 6, fifthEnds + forget + 4*time.Minute},
		{"forgotten after forget", fifthEnds + 4*time.Minute + 2*forget + time.Microsecond, "login:alice", true, 0, 1, fifthEnds + 4*time.Minute + 2*forget + time.Microsecond},
	}
	for _, st := range steps {
		clk.Set(t0.Add(st.at))
		ok, until, err := s.ReserveAttempt(ctx, st.key, backoff, forget)
		if err != nil {
			t.Fatalf("%s: reserve: %v", st.name, err)
		}
		if ok != st.wantOK {
			t.Errorf("%s: got ok %v, want %v", st.name, ok, st.wantOK)
		}
		switch {
		case st.wantOK && !until.IsZero():
			t.Errorf("%s: got blocked until %v, want the zero time", st.name, until)
		case !st.wantOK && !sameTime(until, t0.Add(st.wantUntil)):
			t.Errorf("%s: got blocked until %v, want %v", st.name, until, t0.Add(st.wantUntil))
		}
		checkThrottle(t, s, st.name, st.key, st.wantFailures, t0.Add(st.wantBlocked))
	}
}

func testThrottleRefundReset(t *testing.T, s *storage.Store, _ *Clock) {
	const forget = time.Hour
	blockEnds := t0.Add(time.Minute) // backoff(3)
	steps := []struct {
		name         string
		op           func() (bool, error) // ok is false for anything but a reserve refused
		wantOK       bool
		key          string
		wantFailures int
		wantBlocked  time.Time // zero: no row
	}{
		{"refund an unknown key", refund(s, "login:alice"), true, "login:alice", 0, time.Time{}},
		{"reset an unknown key", reset(s, "login:alice"), true, "login:alice", 0, time.Time{}},
		{"failure 1", reserve(s, "login:alice", forget), true, "login:alice", 1, t0},
		{"failure 2", reserve(s, "login:alice", forget), true, "login:alice", 2, t0},
		{"refund gives one back", refund(s, "login:alice"), true, "login:alice", 1, t0},
		{"failure 2 again", reserve(s, "login:alice", forget), true, "login:alice", 2, t0},
		{"failure 3 blocks", reserve(s, "login:alice", forget), true, "login:alice", 3, blockEnds},
		{"a refund leaves the block", refund(s, "login:alice"), true, "login:alice", 2, blockEnds},
		{"still blocked", reserve(s, "login:alice", forget), false, "login:alice", 2, blockEnds},
		{"refund 2", refund(s, "login:alice"), true, "login:alice", 1, blockEnds},
		{"refund 3", refund(s, "login:alice"), true, "login:alice", 0, blockEnds},
		{"no count below zero", refund(s, "login:alice"), true, "login:alice", 0, blockEnds},
		{"bob's failure", reserve(s, "login:bob", forget), true, "login:bob", 1, t0},
		{"reset lifts the block", reset(s, "login:alice"), true, "login:alice", 0, time.Time{}},
		{"allowed after reset", reserve(s, "login:alice", forget), true, "login:alice", 1, t0},
		{"reset leaves other keys", reset(s, "login:alice"), true, "login:bob", 1, t0},
	}
	for _, st := range steps {
		ok, err := st.op()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if ok != st.wantOK {
			t.Errorf("%s: got ok %v, want %v", st.name, ok, st.wantOK)
		}
		checkThrottle(t, s, st.name, st.key, st.wantFailures, st.wantBlocked)
	}
}

func reserve(s *storage.Store, key string, forget time.Duration) func() (bool, error) {
	return func() (bool, error) {
		ok, _, err := s.ReserveAttempt(context.Background(), key, backoff, forget)
		return ok, err
	}
}

func refund(s *storage.Store, key string) func() (bool, error) {
	return func() (bool, error) { return true, s.RefundAttempt(context.Background(), key) }
}

func reset(s *storage.Store, key string) func() (bool, error) {
	return func() (bool, error) { return true, s.ResetThrottle(context.Background(), key) }
}
