package login

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

func TestCodeSessionSpent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		enrol bool
	}{
		{"confirmed authenticator", false},
		{"enrolment", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addAuthRequest("ar-1", url.Values{})
			var secret string
			if tc.enrol {
				e.addUser("alice", "pw-alice-1")
			} else {
				_, secret = e.addEnrolledUser("alice", "pw-alice-1")
			}
			b := e.browser()
			b.ar = "ar-1"
			b.mustPass("alice", "pw-alice-1")
			p := b.get("/login/totp")
			if tc.enrol {
				secret = parseEnrolment(t, p.body).uri.Query().Get("secret")
			}
			csrf := csrfToken(t, p.body)
			post := func(code string) page {
				return b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {code}})
			}
			for i := 1; i <= 4; i++ {
				p := post(wrongCode(t, secret, e.clock.Now()))
				if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != en("totp.bad_code") {
					t.Fatalf("wrong code %d: got %d %q, want 422 %q", i, p.status, fieldError(p.body, "code"), en("totp.bad_code"))
				}
			}
			spent := []struct {
				name string
				do   func() page
			}{
				{"5th wrong code", func() page { return post(wrongCode(t, secret, e.clock.Now())) }},
				{"6th attempt, right code", func() page { return post(codeAt(t, secret, e.clock.Now())) }},
				{"GET /login/totp", func() page { return b.get("/login/totp") }},
			}
			for _, s := range spent {
				p := s.do()
				if p.status != http.StatusTooManyRequests {
					t.Errorf("%s: got status %d, want 429", s.name, p.status)
				}
				for _, want := range []string{html.EscapeString(en("totp.spent")), `href="/login?auth_request=ar-1"`} {
					if !strings.Contains(p.body, want) {
						t.Errorf("%s: page lacks %s:\n%s", s.name, want, p.body)
					}
				}
				if strings.Contains(p.body, `name="code"`) {
					t.Errorf("%s: page has a code field; want none", s.name)
				}
			}
			if got := briefEvents(e.audit.take()); !slices.Contains(got, "login.totp throttled id-alice") {
				t.Errorf("got events %q, want a login.totp throttled one", got)
			}
			u := e.user("id-alice")
			if u.HasTOTP() != !tc.enrol || u.TOTPLastStep != 0 {
				t.Errorf("got HasTOTP %v, last step %d; want %v, 0 (the right code was not checked)", u.HasTOTP(), u.TOTPLastStep, !tc.enrol)
			}
			if u.FailedCodes != 5 {
				t.Errorf("got %d failed codes on the account, want 5 (the refused attempt is not counted)", u.FailedCodes)
			}
			if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Current: got %v, want ErrNotFound", err)
			}

			// The limit is per login: with the password again, a right code
			// works, and resets the account's count.
			b2 := e.browser()
			b2.mustPass("alice", "pw-alice-1")
			if tc.enrol {
				secret = parseEnrolment(t, b2.get("/login/totp").body).uri.Query().Get("secret")
			}
			p = b2.codeStep(codeAt(t, secret, e.clock.Now()))
			if tc.enrol && p.status != http.StatusOK || !tc.enrol && !p.signedIn() {
				t.Errorf("new login: got %d to %q, want the recovery codes (enrolment) or 303 to %s", p.status, p.location(), accountPath)
			}
			if got := e.user("id-alice").FailedCodes; got != 0 {
				t.Errorf("after a right code: got %d failed codes, want 0", got)
			}
		})
	}
}

// failCodes gives n wrong codes for username, five per login, and returns
// the page of the last.
func (e *env) failCodes(username, password, secret string, n int) page {
	e.t.Helper()
	var p page
	for i := 0; i < n; {
		b := e.browser()
		b.mustPass(username, password)
		csrf := csrfToken(e.t, b.get("/login/totp").body)
		for j := 0; j < 5 && i < n; j, i = j+1, i+1 {
			p = b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {wrongCode(e.t, secret, e.clock.Now())}})
		}
	}
	return p
}

// lockAccount gives the 100 wrong codes that lock username's account.
func (e *env) lockAccount(username, password, secret string) page {
	e.t.Helper()
	return e.failCodes(username, password, secret, 100)
}

// TestReplayCountsAsWrongCode checks that a replayed code is a wrong code
// for the limits: it can be the one that spends the login or locks the
// account.
func TestReplayCountsAsWrongCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		// account and session are the wrong codes given before the
		// replay: in earlier logins, and in the replay's own.
		account, session int
		wantStatus       int
		wantMsg          string
		wantEvent        string
	}{
		{"1st attempt", 0, 0, http.StatusUnprocessableEntity, en("totp.code_used"), ""},
		{"5th attempt of the login", 0, 4, http.StatusTooManyRequests, en("totp.spent"), ""},
		{"100th consecutive wrong code", 95, 4, http.StatusForbidden, en("login.account_locked"), "account.locked success id-alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, secret := e.addEnrolledUser("alice", "pw-alice-1")
			code := codeAt(t, secret, e.clock.Now())
			if p := e.browser().passwordAndCode(t, "alice", "pw-alice-1", code); !p.signedIn() {
				t.Fatalf("first use of the code: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
			}
			e.failCodes("alice", "pw-alice-1", secret, tc.account)
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			for range tc.session {
				b.post("/login/totp", url.Values{"csrf_token": {b.csrf()}, "code": {wrongCode(t, secret, e.clock.Now())}})
			}
			e.audit.take()
			p := b.post("/login/totp", url.Values{"csrf_token": {b.csrf()}, "code": {code}})
			if p.status != tc.wantStatus || !strings.Contains(p.body, html.EscapeString(tc.wantMsg)) {
				t.Errorf("got %d, want %d with %q:\n%s", p.status, tc.wantStatus, tc.wantMsg, p.body)
			}
			evs := briefEvents(e.audit.take())
			if evs[0] != "login.totp replayed id-alice" {
				t.Errorf("got events %q, want login.totp replayed first", evs)
			}
			if tc.wantEvent != "" && !slices.Contains(evs, tc.wantEvent) {
				t.Errorf("got events %q, want %q among them", evs, tc.wantEvent)
			}
			if got, want := e.user("id-alice").FailedCodes, tc.account+tc.session+1; got != want {
				t.Errorf("got %d failed codes, want %d", got, want)
			}
		})
	}
}

func TestAccountLockAfter100Codes(t *testing.T) {
	e := newEnv(t)
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")

	// 99 wrong codes, then a right one: only consecutive failures count.
	for range 19 {
		b := e.browser()
		b.mustPass("alice", "pw-alice-1")
		for range 5 {
			b.codeStep(wrongCode(t, secret, e.clock.Now()))
		}
	}
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	for range 4 {
		b.codeStep(wrongCode(t, secret, e.clock.Now()))
	}
	if got := e.user(alice.ID).FailedCodes; got != 99 {
		t.Fatalf("got %d failed codes, want 99", got)
	}
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Fatalf("right code after 99 wrong ones: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
	if got := e.user(alice.ID).FailedCodes; got != 0 {
		t.Fatalf("after a right code: got %d failed codes, want 0", got)
	}
	e.clock.Add(30 * time.Second)
	e.audit.take()

	p := e.lockAccount("alice", "pw-alice-1", secret)
	if p.status != http.StatusForbidden || !strings.Contains(p.body, html.EscapeString(en("login.account_locked"))) {
		t.Errorf("100th wrong code: got %d, want 403 with %q:\n%s", p.status, en("login.account_locked"), p.body)
	}
	if got := e.user(alice.ID).FailedCodes; got != 100 {
		t.Errorf("got %d failed codes, want 100", got)
	}
	evs := briefEvents(e.audit.take())
	for _, tc := range []struct {
		event string
		want  int
	}{
		{"login.totp failure id-alice", 100},
		{"account.locked success id-alice", 1},
		{"login.password success id-alice", 20},
	} {
		n := 0
		for _, ev := range evs {
			if ev == tc.event {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("got %d events %q, want %d", n, tc.event, tc.want)
		}
	}

	// A login still under way when the lock fell refuses even the right
	// code.
	b = e.browser()
	if err := e.store.UnlockUser(context.Background(), alice.ID); err != nil {
		t.Fatal(err)
	}
	b.mustPass("alice", "pw-alice-1")
	e.lockAccount("alice", "pw-alice-1", secret)
	lastStep := e.user(alice.ID).TOTPLastStep
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); p.status != http.StatusForbidden || !strings.Contains(p.body, html.EscapeString(en("login.account_locked"))) {
		t.Errorf("right code in a login begun before the lock: got %d, want 403 with %q", p.status, en("login.account_locked"))
	}
	if got := e.user(alice.ID).TOTPLastStep; got != lastStep {
		t.Errorf("got last step %d, want %d (the code was not checked)", got, lastStep)
	}
	if got := briefEvents(e.audit.take()); !slices.Contains(got, "login.totp locked id-alice") {
		t.Errorf("got events %q, want a login.totp locked one", got)
	}

	if err := Unlock(context.Background(), e.store, alice); err != nil {
		t.Fatal(err)
	}
	b = e.browser()
	b.mustPass("alice", "pw-alice-1")
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Errorf("after Unlock: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
}
