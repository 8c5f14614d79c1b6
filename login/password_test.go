package login

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

func TestLoginReusesPasswordSession(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	e.addAuthRequest("ar-1", url.Values{})
	e.addAuthRequest("ar-2", url.Values{"login_hint": {"bob"}})
	b := e.browser()
	first := b.get("/login?auth_request=ar-1")
	c1 := b.cookie

	second := b.get("/login?auth_request=ar-2")
	if len(second.cookies) != 0 {
		t.Errorf("second GET set cookies %v, want none (session reused)", second.cookies)
	}
	if got, want := csrfToken(t, second.body), csrfToken(t, first.body); got != want {
		t.Errorf("got csrf %q, want the reused session's %q", got, want)
	}
	if !strings.Contains(second.body, `value="bob"`) {
		t.Errorf("login_hint of ar-2 not prefilled")
	}
	ls, err := b.session()
	if err != nil || ls.AuthRequestID != "ar-2" {
		t.Fatalf("got session %+v, %v; want AuthRequestID ar-2", ls, err)
	}

	// Past the password, /login starts over with a new session.
	p := b.post("/login", url.Values{"csrf_token": {ls.CSRFToken}, "username": {"alice"}, "password": {"pw-alice-1"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST /login: got %d, want 303", p.status)
	}
	c2 := b.cookie
	b.get("/login")
	if b.cookie == c1 || b.cookie == c2 {
		t.Errorf("GET /login in the totp state kept cookie; want a new session")
	}
	if _, err := e.store.GetLoginSession(context.Background(), sessionID(c2)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("replaced totp-state session: got %v, want ErrNotFound", err)
	}
}

func TestLoginUnknownAuthRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login?auth_request=nope")
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, html.EscapeString(en("login.bad_auth_request"))) {
		t.Errorf("got %d %q, want 400 with %q", p.status, p.body, en("login.bad_auth_request"))
	}
	if b.cookie != "" {
		t.Errorf("got a session cookie for an unknown request, want none")
	}
}

func TestPasswordFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	bob := e.addUser("bob", "pw-bob-1")
	if err := e.store.SetUserDisabled(context.Background(), bob.ID, true); err != nil {
		t.Fatal(err)
	}

	var bodies []string
	for _, tc := range []struct {
		name, username, password string
	}{
		{"wrong password", "alice", "pw-alice-2"},
		{"unknown user", "mallory", "pw-alice-1"},
		{"disabled user, right password", "bob", "pw-bob-1"},
		{"username in another case", "ALICE", "pw-alice-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			p := b.passwordStep(tc.username, tc.password)
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("got status %d, want 422", p.status)
			}
			if got := fieldError(p.body, "password"); got != en("login.bad_credentials") {
				t.Errorf("got message %q, want %q", got, en("login.bad_credentials"))
			}
			if len(p.cookies) != 0 {
				t.Errorf("got cookies %v, want none", p.cookies)
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StatePassword {
				t.Errorf("got session %+v, %v; want it still in state password", ls, err)
			}
			if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Current: got %v, want ErrNotFound", err)
			}
			// Everything but the echoed username and the CSRF token must
			// be the same page.
			body := strings.ReplaceAll(p.body, csrfToken(t, p.body), "CSRF")
			body = strings.ReplaceAll(body, `value="`+tc.username+`"`, `value="USER"`)
			bodies = append(bodies, body)
		})
	}
	for i := 1; i < len(bodies); i++ {
		if bodies[i] != bodies[0] {
			t.Errorf("failure page %d differs from page 0:\n%s\n---\n%s", i, bodies[i], bodies[0])
		}
	}
}

func TestPasswordEmptyFields(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, username, password string
		wantUser, wantPass       string
	}{
		{"no username", "", "x", "Enter your username.", ""},
		{"no password", "alice", "", "", "Enter your password."},
		{"blank username", "   ", "", "Enter your username.", "Enter your password."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.browser().passwordStep(tc.username, tc.password)
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("got status %d, want 422", p.status)
			}
			if got := fieldError(p.body, "username"); got != tc.wantUser {
				t.Errorf("got username error %q, want %q", got, tc.wantUser)
			}
			if got := fieldError(p.body, "password"); got != tc.wantPass {
				t.Errorf("got password error %q, want %q", got, tc.wantPass)
			}
		})
	}
}

func TestPasswordFormRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the browser to post with and the form's token.
		setup      func(e *env) (*browser, string)
		wantStatus int
		wantMsg    string
	}{
		{"csrf token missing", func(e *env) (*browser, string) {
			b := e.browser()
			b.get("/login")
			return b, ""
		}, http.StatusForbidden, en("login.bad_csrf")},
		{"csrf token wrong", func(e *env) (*browser, string) {
			b := e.browser()
			p := b.get("/login")
			tok := csrfToken(e.t, p.body)
			return b, forge(tok)
		}, http.StatusForbidden, en("login.bad_csrf")},
		{"csrf token of another session", func(e *env) (*browser, string) {
			other := csrfToken(e.t, e.browser().get("/login").body)
			b := e.browser()
			b.get("/login")
			return b, other
		}, http.StatusForbidden, en("login.bad_csrf")},
		{"no cookie", func(e *env) (*browser, string) {
			tok := csrfToken(e.t, e.browser().get("/login").body)
			return e.browser(), tok
		}, http.StatusBadRequest, en("login.no_session")},
		{"cookie naming no session", func(e *env) (*browser, string) {
			b := e.browser()
			tok := csrfToken(e.t, b.get("/login").body)
			b.cookie = strings.Repeat("A", 43)
			return b, tok
		}, http.StatusBadRequest, en("login.no_session")},
		{"session expired", func(e *env) (*browser, string) {
			b := e.browser()
			tok := csrfToken(e.t, b.get("/login").body)
			e.clock.Add(stepLifetime + time.Second)
			return b, tok
		}, http.StatusBadRequest, en("login.no_session")},
		{"session past the password step", func(e *env) (*browser, string) {
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			ls, err := b.session()
			if err != nil {
				e.t.Fatal(err)
			}
			return b, ls.CSRFToken
		}, http.StatusForbidden, en("login.wrong_step")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUser("alice", "pw-alice-1")
			b, token := tc.setup(e)
			cookie := b.cookie
			before, beforeErr := b.session()

			p := b.post("/login", url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {"pw-alice-1"}})
			if p.status != tc.wantStatus {
				t.Errorf("got status %d, want %d", p.status, tc.wantStatus)
			}
			if !strings.Contains(p.body, html.EscapeString(tc.wantMsg)) {
				t.Errorf("page lacks %q:\n%s", tc.wantMsg, p.body)
			}
			if b.cookie != cookie || len(p.cookies) != 0 {
				t.Errorf("got cookies %v, want none", p.cookies)
			}
			after, afterErr := b.session()
			if (beforeErr == nil) != (afterErr == nil) || before.State != after.State || before.UserID != after.UserID {
				t.Errorf("session changed: before %+v (%v), after %+v (%v)", before, beforeErr, after, afterErr)
			}
		})
	}
}

// accountDelays[n] is how long a username stays blocked after n wrong
// passwords under DefaultAccountThrottle: not at all for the first four,
// 1 s after the fifth, doubling, and 15 minutes once doubling passes it
// (from the 15th, so also from the 20th, where the lock begins).
var accountDelays = []time.Duration{
	0, 0, 0, 0, 0,
	time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
	32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second,
	15 * time.Minute, 15 * time.Minute, 15 * time.Minute, 15 * time.Minute, 15 * time.Minute,
	15 * time.Minute, 15 * time.Minute,
}

// addr returns the i-th of many client addresses.
func addr(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1) }

// attempt posts username and password from a new browser at ip.
func (e *env) attempt(ip, username, password string) page {
	e.t.Helper()
	b := e.browser()
	b.ip = ip
	return b.passwordStep(username, password)
}

// failPasswords makes n wrong-password attempts on username, each from
// its own address, waiting out the back-off of accountDelays between them,
// so that the n-th failure has just been counted when it returns.
func (e *env) failPasswords(username string, n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		e.clock.Add(accountDelays[i-1])
		if p := e.attempt(addr(i), username, "nope"); p.status != http.StatusUnprocessableEntity {
			e.t.Fatalf("wrong password %d: got status %d, want 422; body:\n%s", i, p.status, p.body)
		}
	}
}

func TestPasswordBackoffPerUsername(t *testing.T) {
	for _, tc := range []struct {
		failures int
		// wantRetry is the Retry-After of the next attempt, in seconds;
		// zero means it is let through.
		wantRetry int
		wantMsg   string
	}{
		{4, 0, ""},
		{5, 1, "Too many attempts. Wait 1 second, then try again."},
		{6, 2, "Too many attempts. Wait 2 seconds, then try again."},
		{7, 4, "Too many attempts. Wait 4 seconds, then try again."},
		{10, 32, "Too many attempts. Wait 32 seconds, then try again."},
		{11, 64, "Too many attempts. Wait 2 minutes, then try again."},
		{14, 512, "Too many attempts. Wait 9 minutes, then try again."},
		{15, 900, "Too many attempts. Wait 15 minutes, then try again."},
		{19, 900, "Too many attempts. Wait 15 minutes, then try again."},
		{20, 900, "Too many attempts. Wait 15 minutes, then try again."},
		{21, 900, "Too many attempts. Wait 15 minutes, then try again."},
	} {
		t.Run(fmt.Sprintf("after %d failures", tc.failures), func(t *testing.T) {
			e := newEnv(t)
			e.addUser("alice", "pw-alice-1")
			e.failPasswords("alice", tc.failures)
			e.audit.take()

			// The right password, from an address never seen before.
			p := e.attempt("203.0.113.1", "alice", "pw-alice-1")
			if tc.wantRetry == 0 {
				if p.status != http.StatusSeeOther {
					t.Fatalf("got status %d, want 303 (not blocked)", p.status)
				}
				return
			}
			if p.status != http.StatusTooManyRequests {
				t.Fatalf("got status %d, want 429", p.status)
			}
			if got, want := p.header.Get("Retry-After"), strconv.Itoa(tc.wantRetry); got != want {
				t.Errorf("got Retry-After %q, want %q", got, want)
			}
			if got := formError(p.body); got != tc.wantMsg {
				t.Errorf("got message %q, want %q", got, tc.wantMsg)
			}
			if got := fieldError(p.body, "password"); got != "" {
				t.Errorf("got password error %q, want none: the password was not checked", got)
			}
			if n := e.audit.count("login.password", "throttled"); n != 1 {
				t.Errorf("got %d throttled events, want 1", n)
			}
			// A blocked attempt is not counted: the block does not grow.
			if n, _, err := e.store.ThrottleFailures(context.Background(), usernameKey("alice")); err != nil || n != tc.failures {
				t.Errorf("got %d failures counted, %v; want %d", n, err, tc.failures)
			}

			e.clock.Add(time.Duration(tc.wantRetry)*time.Second - time.Millisecond)
			if p := e.attempt("203.0.113.1", "alice", "pw-alice-1"); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "1" {
				t.Errorf("1 ms before the block ends: got %d (Retry-After %q), want 429 (Retry-After 1)", p.status, p.header.Get("Retry-After"))
			}
			e.clock.Add(time.Millisecond)
			if p := e.attempt("203.0.113.1", "alice", "pw-alice-1"); p.status != http.StatusSeeOther {
				t.Fatalf("when the block ends: got status %d, want 303", p.status)
			}
			// The right password cleared the count: five free attempts again.
			e.failPasswords("alice", 5)
			if p := e.attempt("203.0.113.1", "alice", "pw-alice-1"); p.status != http.StatusTooManyRequests {
				t.Errorf("6th attempt after a reset: got status %d, want 429", p.status)
			}
		})
	}
}

func TestPasswordBackoffRetryAfterRoundsUp(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	e.failPasswords("alice", 6) // blocked for 2 s
	for _, tc := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "2"},
		{600 * time.Millisecond, "2"}, // 1.4 s left
		{500 * time.Millisecond, "1"}, // 0.9 s left
		{800 * time.Millisecond, "1"}, // 0.1 s left
	} {
		e.clock.Add(tc.advance)
		p := e.attempt("203.0.113.1", "alice", "pw-alice-1")
		if got := p.header.Get("Retry-After"); p.status != http.StatusTooManyRequests || got != tc.want {
			t.Errorf("after %v more: got %d, Retry-After %q; want 429, %q", tc.advance, p.status, got, tc.want)
		}
	}
}

// TestPasswordThrottleLooksAlike checks that the back-off treats a known
// username, an unknown one and a disabled account alike: same statuses,
// Retry-After and pages, attempt by attempt.
func TestPasswordThrottleLooksAlike(t *testing.T) {
	type seen struct {
		status int
		retry  string
		body   string
	}
	run := func(t *testing.T, username, password string) []seen {
		e := newEnv(t)
		e.addUser("alice", "pw-alice-1")
		bob := e.addUser("bob", "pw-bob-1")
		if err := e.store.SetUserDisabled(context.Background(), bob.ID, true); err != nil {
			t.Fatal(err)
		}
		var got []seen
		for i, wait := range []time.Duration{0, 0, 0, 0, 0, 0, time.Second, 0, 2 * time.Second} {
			e.clock.Add(wait)
			p := e.attempt(addr(i), username, password)
			body := strings.ReplaceAll(p.body, csrfToken(t, p.body), "CSRF")
			body = strings.ReplaceAll(body, `value="`+username+`"`, `value="USER"`)
			got = append(got, seen{p.status, p.header.Get("Retry-After"), body})
		}
		return got
	}
	want := run(t, "alice", "nope")
	wantStatus := []int{422, 422, 422, 422, 422, 429, 422, 429, 422}
	for i, s := range want {
		if s.status != wantStatus[i] {
			t.Errorf("alice, attempt %d: got status %d, want %d", i+1, s.status, wantStatus[i])
		}
	}
	for _, tc := range []struct {
		name, username, password string
	}{
		{"unknown user", "mallory", "nope"},
		{"disabled user, right password", "bob", "pw-bob-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, tc.username, tc.password)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("attempt %d: got %d (Retry-After %q), want %d (Retry-After %q) and the same page as alice's:\n%s\n---\n%s",
						i+1, got[i].status, got[i].retry, want[i].status, want[i].retry, got[i].body, want[i].body)
				}
			}
		})
	}
}

// ipDelay is how long an address stays blocked after n wrong passwords
// under DefaultIPThrottle: from the 20th on 1 s, doubling up to 15 min.
func ipDelay(n int) time.Duration {
	if n < 20 {
		return 0
	}
	d := time.Second
	for range n - 20 {
		d = min(2*d, 15*time.Minute)
	}
	return d
}

func TestPasswordBackoffPerIP(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	const ip = "203.0.113.7"
	// Each wrong password is for a different username, so only the
	// address is throttled.
	fail := func(i int) {
		t.Helper()
		if p := e.attempt(ip, fmt.Sprintf("user%03d", i), "nope"); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password %d: got status %d, want 422", i, p.status)
		}
	}
	for i := 1; i <= 20; i++ {
		fail(i)
	}
	for _, tc := range []struct {
		name, ip, username, password string
		wantStatus                   int
	}{
		{"same address, right password", ip, "alice", "pw-alice-1", http.StatusTooManyRequests},
		{"same address, new username", ip, "zed", "nope", http.StatusTooManyRequests},
		{"other address", "203.0.113.8", "alice", "pw-alice-1", http.StatusSeeOther},
	} {
		p := e.attempt(tc.ip, tc.username, tc.password)
		if p.status != tc.wantStatus {
			t.Errorf("%s after 20 failures: got status %d, want %d", tc.name, p.status, tc.wantStatus)
		}
		if tc.wantStatus == http.StatusTooManyRequests && p.header.Get("Retry-After") != "1" {
			t.Errorf("%s: got Retry-After %q, want 1", tc.name, p.header.Get("Retry-After"))
		}
	}
	// Wait out each back-off up to the 100th failure: then the address is
	// locked for 15 minutes.
	for i := 21; i <= 100; i++ {
		e.clock.Add(ipDelay(i - 1))
		fail(i)
	}
	p := e.attempt(ip, "alice", "pw-alice-1")
	if got := p.header.Get("Retry-After"); p.status != http.StatusTooManyRequests || got != "900" {
		t.Fatalf("after 100 failures: got %d, Retry-After %q; want 429, 900", p.status, got)
	}
	if got, want := formError(p.body), "Too many attempts. Wait 15 minutes, then try again."; got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
	e.clock.Add(15 * time.Minute)
	if p := e.attempt(ip, "alice", "pw-alice-1"); p.status != http.StatusSeeOther {
		t.Errorf("after the lock: got status %d, want 303", p.status)
	}
}

func TestIPv6BackoffPerPrefix(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	for i := 1; i <= 20; i++ {
		if p := e.attempt(fmt.Sprintf("2001:db8::%x", i), fmt.Sprintf("user%d", i), "nope"); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password %d: got status %d, want 422", i, p.status)
		}
	}
	for _, tc := range []struct {
		ip         string
		wantStatus int
	}{
		{"2001:db8::ffff:1", http.StatusTooManyRequests},
		{"2001:db8:0:1::1", http.StatusSeeOther},
	} {
		if p := e.attempt(tc.ip, "alice", "pw-alice-1"); p.status != tc.wantStatus {
			t.Errorf("from %s after 20 failures in 2001:db8::/64: got status %d, want %d", tc.ip, p.status, tc.wantStatus)
		}
	}
}

func TestBackoffPolicyFromConfig(t *testing.T) {
	// A policy small enough to tell the lock from the doubling:
	// blocks of 0, 1 s, 2 s, then 1 h after 1, 2, 3, 4 failures.
	policy := Backoff{After: 2, Base: time.Second, LockAfter: 4, Lock: time.Hour}
	steps := []struct {
		wait       time.Duration
		wantStatus int
		wantRetry  string
	}{
		{0, 422, ""},
		{0, 422, ""},
		{0, 429, "1"},
		{time.Second, 422, ""},
		{0, 429, "2"},
		{2 * time.Second, 422, ""},
		{0, 429, "3600"},
		{time.Hour - time.Second, 429, "1"},
		{time.Second, 422, ""},
		{0, 429, "3600"},
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		// username and ip of attempt i.
		username, ip func(i int) string
	}{
		{"account", func(c *Config) { c.AccountThrottle = policy },
			func(int) string { return "alice" }, addr},
		{"address", func(c *Config) { c.IPThrottle = policy },
			func(i int) string { return fmt.Sprintf("user%d", i) }, func(int) string { return "203.0.113.9" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.edit)
			for i, step := range steps {
				e.clock.Add(step.wait)
				p := e.attempt(tc.ip(i), tc.username(i), "nope")
				if got := p.header.Get("Retry-After"); p.status != step.wantStatus || got != step.wantRetry {
					t.Errorf("attempt %d: got %d, Retry-After %q; want %d, %q", i+1, p.status, got, step.wantStatus, step.wantRetry)
				}
			}
		})
	}
}

func TestRightPasswordClearsUsernameRefundsIP(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	const ip = "203.0.113.5"
	for range 4 {
		e.attempt(ip, "alice", "nope")
	}
	if p := e.attempt(ip, "alice", "pw-alice-1"); p.status != http.StatusSeeOther {
		t.Fatalf("right password: got status %d, want 303", p.status)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		key  string
		want int
	}{
		{usernameKey("alice"), 0},
		{ipKey(ip), 4},
	} {
		if got, _, err := e.store.ThrottleFailures(ctx, tc.key); err != nil || got != tc.want {
			t.Errorf("%s: got %d failures, %v; want %d", tc.key, got, err, tc.want)
		}
	}
}

// TestPasswordBurst races many wrong passwords: each one is counted before
// it is checked, so no more are checked (and cost argon2id work) than the
// back-off lets through, however many arrive at once.
func TestPasswordBurst(t *testing.T) {
	for _, tc := range []struct {
		name         string
		attempts     int
		username, ip func(i int) string
		key          string
		maxChecked   int
	}{
		{"one username, many addresses", 20,
			func(int) string { return "alice" }, addr, usernameKey("alice"), 5},
		{"one address, many usernames", 40,
			func(i int) string { return fmt.Sprintf("user%d", i) }, func(int) string { return "203.0.113.3" }, ipKey("203.0.113.3"), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUser("alice", "pw-alice-1")
			browsers := make([]*browser, tc.attempts)
			forms := make([]url.Values, tc.attempts)
			for i := range browsers {
				browsers[i] = e.browser()
				browsers[i].ip = tc.ip(i)
				forms[i] = url.Values{
					"csrf_token": {csrfToken(t, browsers[i].get("/login").body)},
					"username":   {tc.username(i)}, "password": {"nope"},
				}
			}
			statuses := make([]int, tc.attempts)
			var start, done sync.WaitGroup
			start.Add(1)
			for i, b := range browsers {
				done.Add(1)
				go func() {
					defer done.Done()
					start.Wait()
					statuses[i] = b.post("/login", forms[i]).status
				}()
			}
			start.Done()
			done.Wait()

			checked, throttled := 0, 0
			for i, s := range statuses {
				switch s {
				case http.StatusUnprocessableEntity:
					checked++
				case http.StatusTooManyRequests:
					throttled++
				default:
					t.Errorf("attempt %d: got status %d, want 422 or 429", i, s)
				}
			}
			if checked < 1 || checked > tc.maxChecked {
				t.Errorf("got %d passwords checked, want 1 to %d", checked, tc.maxChecked)
			}
			if got := e.audit.count("login.password", "failure"); got != checked {
				t.Errorf("got %d failure events, want %d (one per 422)", got, checked)
			}
			if got := e.audit.count("login.password", "throttled"); got != throttled {
				t.Errorf("got %d throttled events, want %d (one per 429)", got, throttled)
			}
			if got, _, err := e.store.ThrottleFailures(context.Background(), tc.key); err != nil || got != checked {
				t.Errorf("got %d failures counted, %v; want %d", got, err, checked)
			}
		})
	}
}

func TestPasswordLockedAccount(t *testing.T) {
	e := newEnv(t)
	e.addAuthRequest("ar-1", url.Values{})
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	e.lockAccount("alice", "pw-alice-1", secret)
	e.audit.take()

	for _, tc := range []struct {
		name       string
		password   string
		wantStatus int
		wantMsg    func(body string) string
		want       string
		wantEvent  string
	}{
		// Only someone who knows the password learns of the lock.
		{"wrong password", "nope", http.StatusUnprocessableEntity,
			func(b string) string { return fieldError(b, "password") }, en("login.bad_credentials"), "login.password failure id-alice"},
		{"right password", "pw-alice-1", http.StatusForbidden, formError, en("login.account_locked"), "login.password locked id-alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			b.get("/login?auth_request=ar-1")
			p := b.passwordStep("alice", tc.password)
			if p.status != tc.wantStatus {
				t.Errorf("got status %d, want %d", p.status, tc.wantStatus)
			}
			if got := tc.wantMsg(p.body); got != tc.want {
				t.Errorf("got message %q, want %q", got, tc.want)
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StatePassword {
				t.Errorf("got session %+v, %v; want it still in state password", ls, err)
			}
			if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{tc.wantEvent}) {
				t.Errorf("got events %q, want %q", got, tc.wantEvent)
			}
		})
	}

	if err := Unlock(context.Background(), e.store, alice); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if got := e.user(alice.ID).FailedCodes; got != 0 {
		t.Errorf("after Unlock: got %d failed codes, want 0", got)
	}
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Errorf("right code after Unlock: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
}

func TestUnlockClearsUsernameBackoff(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", "pw-alice-1")
	e.failPasswords("alice", 20)
	if p := e.attempt("203.0.113.1", "alice", "pw-alice-1"); p.status != http.StatusTooManyRequests {
		t.Fatalf("after 20 failures: got status %d, want 429", p.status)
	}
	if err := Unlock(context.Background(), e.store, alice); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if p := e.attempt("203.0.113.1", "alice", "pw-alice-1"); p.status != http.StatusSeeOther {
		t.Errorf("after Unlock: got status %d, want 303", p.status)
	}
}
