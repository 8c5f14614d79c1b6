package login

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
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
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, html.EscapeString(msgBadAuthRequest)) {
		t.Errorf("got %d %q, want 400 with %q", p.status, p.body, msgBadAuthRequest)
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
			if got := fieldError(p.body, "password"); got != msgBadCredentials {
				t.Errorf("got message %q, want %q", got, msgBadCredentials)
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
		}, http.StatusForbidden, msgBadCSRF},
		{"csrf token wrong", func(e *env) (*browser, string) {
			b := e.browser()
			p := b.get("/login")
			tok := csrfToken(e.t, p.body)
			return b, tok[:len(tok)-1] + "x"
		}, http.StatusForbidden, msgBadCSRF},
		{"csrf token of another session", func(e *env) (*browser, string) {
			other := csrfToken(e.t, e.browser().get("/login").body)
			b := e.browser()
			b.get("/login")
			return b, other
		}, http.StatusForbidden, msgBadCSRF},
		{"no cookie", func(e *env) (*browser, string) {
			tok := csrfToken(e.t, e.browser().get("/login").body)
			return e.browser(), tok
		}, http.StatusBadRequest, msgNoSession},
		{"cookie naming no session", func(e *env) (*browser, string) {
			b := e.browser()
			tok := csrfToken(e.t, b.get("/login").body)
			b.cookie = strings.Repeat("A", 43)
			return b, tok
		}, http.StatusBadRequest, msgNoSession},
		{"session expired", func(e *env) (*browser, string) {
			b := e.browser()
			tok := csrfToken(e.t, b.get("/login").body)
			e.clock.Add(stepLifetime + time.Second)
			return b, tok
		}, http.StatusBadRequest, msgNoSession},
		{"session past the password step", func(e *env) (*browser, string) {
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			ls, err := b.session()
			if err != nil {
				e.t.Fatal(err)
			}
			return b, ls.CSRFToken
		}, http.StatusForbidden, msgWrongStep},
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

func TestPasswordThrottle(t *testing.T) {
	for _, tc := range []struct {
		name string
		// attempt makes one failed attempt, number i.
		attempt  func(e *env, b *browser, i int) page
		attempts int
	}{
		{"same session, wrong password", func(e *env, b *browser, i int) page {
			return b.post("/login", url.Values{"csrf_token": {csrfToken(e.t, b.get("/login").body)}, "username": {"alice"}, "password": {"nope"}})
		}, maxPasswordsPerUsername},
		{"fresh session each time", func(e *env, _ *browser, i int) page {
			return e.browser().passwordStep("alice", "nope")
		}, maxPasswordsPerUsername},
		{"username in other cases", func(e *env, _ *browser, i int) page {
			return e.browser().passwordStep([]string{"ALICE", "Alice"}[i%2], "nope")
		}, maxPasswordsPerUsername},
		{"many usernames, one session", func(e *env, b *browser, i int) page {
			return b.post("/login", url.Values{"csrf_token": {csrfToken(e.t, b.get("/login").body)}, "username": {"user" + string(rune('a'+i))}, "password": {"nope"}})
		}, maxPasswordsPerSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUser("alice", "pw-alice-1")
			b := e.browser()
			b.get("/login")
			for i := range tc.attempts {
				if p := tc.attempt(e, b, i); p.status != http.StatusUnprocessableEntity {
					t.Fatalf("attempt %d: got status %d, want 422", i+1, p.status)
				}
			}
			p := b.post("/login", url.Values{"csrf_token": {csrfToken(t, b.get("/login").body)}, "username": {"alice"}, "password": {"pw-alice-1"}})
			if p.status != http.StatusTooManyRequests {
				t.Fatalf("right password after %d failures: got status %d, want 429", tc.attempts, p.status)
			}
			if got := formError(p.body); got != msgTooMany {
				t.Errorf("got message %q, want %q", got, msgTooMany)
			}
			if p.header.Get("Retry-After") == "" {
				t.Errorf("got no Retry-After header, want one")
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StatePassword {
				t.Errorf("got session %+v, %v; want it still in state password", ls, err)
			}

			// A new window lets the right password through.
			e.clock.Add(throttleWindow + time.Second)
			e.browser().mustPass("alice", "pw-alice-1")
		})
	}
}

func TestUnknownUserThrottledAlike(t *testing.T) {
	e := newEnv(t)
	var statuses []int
	for range maxPasswordsPerUsername + 1 {
		statuses = append(statuses, e.browser().passwordStep("mallory", "nope").status)
	}
	if got := statuses[len(statuses)-1]; got != http.StatusTooManyRequests {
		t.Errorf("attempt %d for an unknown user: got status %d, want 429", len(statuses), got)
	}
	for i, s := range statuses[:len(statuses)-1] {
		if s != http.StatusUnprocessableEntity {
			t.Errorf("attempt %d: got status %d, want 422", i+1, s)
		}
	}
}
