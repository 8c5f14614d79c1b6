package consent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
	"github.com/twostep/twostep/templates"
)

// t0 is where the fake clock starts.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 0, time.UTC)

// fakeSessions reports the browser's login: nobody, a user, or a failure.
type fakeSessions struct {
	login *storage.LoginSession
	err   error
}

func (f *fakeSessions) Current(*http.Request) (storage.LoginSession, error) {
	if f.err != nil {
		return storage.LoginSession{}, f.err
	}
	if f.login == nil {
		return storage.LoginSession{}, fmt.Errorf("current login: %w", storage.ErrNotFound)
	}
	return *f.login, nil
}

const (
	userID    = "sub-alice"
	csrfToken = "csrf-token-of-alice"
	clientID  = "app"
)

// fakeAudit collects the audit events the handler records.
type fakeAudit struct {
	events []storage.AuditEvent
}

func (f *fakeAudit) record(r *http.Request, ev storage.AuditEvent) {
	if r == nil {
		panic("audit event without a request")
	}
	f.events = append(f.events, ev)
}

type env struct {
	t        *testing.T
	store    *storage.Store
	clock    *storagetest.Clock
	sessions *fakeSessions
	audit    *fakeAudit
	mux      *http.ServeMux
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := storagetest.NewClock(t0)
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatalf("parse templates: %v", err)
	}
	e := &env{t: t, store: store, clock: clock, sessions: &fakeSessions{}, audit: &fakeAudit{}, mux: http.NewServeMux()}
	New(store, pages, slog.New(slog.DiscardHandler), e.sessions, e.audit.record).Routes(e.mux)
	ctx := context.Background()
	if err := store.CreateUser(ctx, storage.User{ID: userID, Username: "alice", PasswordHash: "unused"}); err != nil {
		t.Fatal(err)
	}
	e.addClient(clientID, "Example App")
	return e
}

func (e *env) addClient(id, name string) {
	e.t.Helper()
	err := e.store.CreateClient(context.Background(), &storage.Client{
		ID: id, Name: name, RedirectURIs: []string{"https://app.example.com/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "profile", "email", "groups", "offline_access"}, Public: true, RequirePKCE: true,
	})
	if err != nil {
		e.t.Fatalf("create client: %v", err)
	}
}

func (e *env) signIn() {
	e.sessions.login = &storage.LoginSession{
		ID: "login", State: storage.StateDone, UserID: userID, CSRFToken: csrfToken,
		PasswordAt: e.clock.Now(), AuthTime: e.clock.Now(), AMR: []string{"pwd", "otp", "mfa"},
	}
}

// addAuthRequest keeps an authorization request of client for scope, as
// the authorization endpoint does.
func (e *env) addAuthRequest(id, client, scope string) {
	e.t.Helper()
	err := e.store.CreateAuthRequest(context.Background(), storage.AuthRequest{
		ID: id, ClientID: client, RequestedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(30 * time.Minute),
		Form: url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {scope}, "state": {"state-123456"}},
	})
	if err != nil {
		e.t.Fatalf("create auth request: %v", err)
	}
}

func (e *env) show(id string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/consent?auth_request="+url.QueryEscape(id), nil))
	return rec
}

func (e *env) decide(id, csrf, decision string) *httptest.ResponseRecorder {
	form := url.Values{"auth_request": {id}, "csrf_token": {csrf}, "decision": {decision}}
	r := httptest.NewRequest(http.MethodPost, "/consent", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	return rec
}

// recorded returns the decision kept on the request and the user's grant
// (nil when there is none).
func (e *env) recorded(id string) (storage.AuthRequest, []string) {
	e.t.Helper()
	ctx := context.Background()
	ar, err := e.store.GetAuthRequest(ctx, id)
	if err != nil {
		e.t.Fatalf("GetAuthRequest: %v", err)
	}
	g, err := e.store.GetGrant(ctx, userID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return ar, nil
	}
	if err != nil {
		e.t.Fatalf("GetGrant: %v", err)
	}
	return ar, g.Scopes
}

// wantEvents checks that exactly want were audited.
func (e *env) wantEvents(t *testing.T, want []storage.AuditEvent) {
	t.Helper()
	if !slices.Equal(e.audit.events, want) {
		t.Errorf("audit events:\n got %+v\nwant %+v", e.audit.events, want)
	}
	for _, ev := range e.audit.events {
		if strings.Contains(fmt.Sprint(ev), csrfToken) {
			t.Errorf("audit event %+v carries the CSRF token", ev)
		}
	}
}

func wantPage(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status: got %d, want %d\n%s", rec.Code, status, rec.Body)
	}
	if loc := rec.Header().Get("Location"); loc != "" {
		t.Errorf("got a redirect to %q, want a page", loc)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type: got %q, want an HTML page", ct)
	}
}

func TestShow(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid email")
	rec := e.show("req-1")
	wantPage(t, rec, http.StatusOK)
	body := rec.Body.String()
	for _, want := range []string{
		"Allow Example App?",
		scope(t, "openid"),
		scope(t, "email"),
		`name="auth_request" value="req-1"`,
		`name="csrf_token" value="` + csrfToken + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q:\n%s", want, body)
		}
	}
	for _, notAsked := range []string{scope(t, "groups"), scope(t, "profile"), scope(t, "offline_access")} {
		if strings.Contains(body, notAsked) {
			t.Errorf("consent page lists %q, which was not asked for", notAsked)
		}
	}
	if ar, grant := e.recorded("req-1"); ar.Consent != "" || grant != nil {
		t.Errorf("showing the page recorded consent %q, grant %v; want nothing", ar.Consent, grant)
	}
	e.wantEvents(t, nil)
	if xfo := rec.Header().Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("X-Frame-Options: got %q, want DENY (the page must not be framed)", xfo)
	}
}

// TestShowLanguage: the page follows the request's ui_locales, else the
// browser's Accept-Language.
func TestShowLanguage(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-en", clientID, "openid email")
	if err := e.store.CreateAuthRequest(context.Background(), storage.AuthRequest{
		ID: "req-fr", ClientID: clientID, RequestedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(30 * time.Minute),
		Form: url.Values{"client_id": {clientID}, "scope": {"openid email"}, "ui_locales": {"fr"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, accept string
		want       []string
	}{
		{"req-fr", "de", []string{`<html lang="fr">`, "Autoriser Example App\u00a0?", "Voir votre adresse e-mail"}},
		{"req-en", "de-DE", []string{`<html lang="de">`, "Example App Zugriff erlauben?", "Ihre E-Mail-Adresse sehen"}},
		{"req-en", "", []string{`<html lang="en">`, "Allow Example App?", "See your email address"}},
	} {
		r := httptest.NewRequest(http.MethodGet, "/consent?auth_request="+tc.id, nil)
		r.Header.Set("Accept-Language", tc.accept)
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, r)
		wantPage(t, rec, http.StatusOK)
		for _, want := range tc.want {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("%s with Accept-Language %q: page lacks %q:\n%s", tc.id, tc.accept, want, rec.Body)
			}
		}
	}
}

// scope is how the English consent page describes s.
func scope(t *testing.T, s string) string {
	t.Helper()
	text, ok := describeScope(templates.English, s)
	if !ok {
		t.Fatalf("no description of scope %q", s)
	}
	return text
}

func TestShowClientName(t *testing.T) {
	tests := []struct {
		name, clientName, want, notWant string
	}{
		{"name is escaped", `<script>alert(1)</script>`, "&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)"},
		{"no name shows the ID", "", "Allow nameless?", "Allow ?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.signIn()
			id := "nameless"
			if tc.clientName != "" {
				id = "named"
			}
			e.addClient(id, tc.clientName)
			e.addAuthRequest("req-1", id, "openid")
			rec := e.show("req-1")
			wantPage(t, rec, http.StatusOK)
			if body := rec.Body.String(); !strings.Contains(body, tc.want) || strings.Contains(body, tc.notWant) {
				t.Errorf("page: want %q and not %q in\n%s", tc.want, tc.notWant, body)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name         string
		csrf         string
		decision     string
		wantStatus   int
		wantConsent  string
		wantGrant    []string
		wantRedirect bool
		wantEvent    string // audited, with the scopes asked for
	}{
		{"allow", csrfToken, "allow", http.StatusSeeOther, storage.ConsentGranted, []string{"openid", "email"}, true, "consent.granted"},
		{"deny", csrfToken, "deny", http.StatusSeeOther, storage.ConsentDenied, nil, true, "consent.denied"},
		{"anything but allow denies", csrfToken, "maybe", http.StatusSeeOther, storage.ConsentDenied, nil, true, "consent.denied"},
		{"wrong CSRF token", "csrf-token-of-mallory", "allow", http.StatusForbidden, "", nil, false, ""},
		{"no CSRF token", "", "allow", http.StatusForbidden, "", nil, false, ""},
		{"CSRF token of another case", strings.ToUpper(csrfToken), "allow", http.StatusForbidden, "", nil, false, ""},
		{"CSRF token truncated", csrfToken[:len(csrfToken)-1], "allow", http.StatusForbidden, "", nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.signIn()
			e.addAuthRequest("req-1", clientID, "openid email")
			rec := e.decide("req-1", tc.csrf, tc.decision)
			if tc.wantRedirect {
				if rec.Code != tc.wantStatus {
					t.Errorf("status: got %d, want %d", rec.Code, tc.wantStatus)
				}
				if loc, want := rec.Header().Get("Location"), "/oauth2/auth?auth_request=req-1"; loc != want {
					t.Errorf("Location: got %q, want %q", loc, want)
				}
			} else {
				wantPage(t, rec, tc.wantStatus)
			}
			ar, grant := e.recorded("req-1")
			if ar.Consent != tc.wantConsent {
				t.Errorf("recorded consent: got %q, want %q", ar.Consent, tc.wantConsent)
			}
			if tc.wantConsent != "" && ar.ConsentUserID != userID {
				t.Errorf("consent recorded for %q, want %q", ar.ConsentUserID, userID)
			}
			if !slices.Equal(sortedCopy(grant), sortedCopy(tc.wantGrant)) {
				t.Errorf("grant: got %v, want %v", grant, tc.wantGrant)
			}
			var want []storage.AuditEvent
			if tc.wantEvent != "" {
				want = []storage.AuditEvent{{Event: tc.wantEvent, Outcome: "success", UserID: userID, ClientID: clientID, Detail: "openid email"}}
			}
			e.wantEvents(t, want)
		})
	}
}

// TestDecideCSRFTokenInQuery: the CSRF token counts only in the posted
// form, never in the URL, where it would leak into logs and Referer.
func TestDecideCSRFTokenInQuery(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid email")
	form := url.Values{"auth_request": {"req-1"}, "decision": {"allow"}}
	r := httptest.NewRequest(http.MethodPost, "/consent?csrf_token="+url.QueryEscape(csrfToken), strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	wantPage(t, rec, http.StatusForbidden)
	if ar, grant := e.recorded("req-1"); ar.Consent != "" || grant != nil {
		t.Errorf("recorded consent %q, grant %v; want nothing", ar.Consent, grant)
	}
	e.wantEvents(t, nil)
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestDecideAddsToGrant: allowing more scopes keeps those allowed before.
func TestDecideAddsToGrant(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	if err := e.store.SaveGrant(context.Background(), userID, clientID, []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	e.addAuthRequest("req-1", clientID, "openid email")
	if rec := e.decide("req-1", csrfToken, "allow"); rec.Code != http.StatusSeeOther {
		t.Fatalf("allow: got %d, want 303", rec.Code)
	}
	if _, grant := e.recorded("req-1"); !slices.Equal(sortedCopy(grant), []string{"email", "openid", "profile"}) {
		t.Errorf("grant: got %v, want email openid profile", grant)
	}
	// The event says what this decision granted.
	e.wantEvents(t, []storage.AuditEvent{
		{Event: "consent.granted", Outcome: "success", UserID: userID, ClientID: clientID, Detail: "openid email"},
	})
}

// TestDecideWithoutAudit: the audit function may be nil.
func TestDecideWithoutAudit(t *testing.T) {
	e := newEnv(t)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	New(e.store, pages, slog.New(slog.DiscardHandler), e.sessions, nil).Routes(e.mux)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid")
	if rec := e.decide("req-1", csrfToken, "allow"); rec.Code != http.StatusSeeOther {
		t.Fatalf("allow: got %d, want 303", rec.Code)
	}
	if ar, grant := e.recorded("req-1"); ar.Consent != storage.ConsentGranted || !slices.Equal(grant, []string{"openid"}) {
		t.Errorf("got consent %q, grant %v; want granted, [openid]", ar.Consent, grant)
	}
}

// TestDecideOnce: a request's decision is made once; a second post (the
// back button, a double click) must not change what the first recorded.
func TestDecideOnce(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid email")
	if rec := e.decide("req-1", csrfToken, "deny"); rec.Code != http.StatusSeeOther {
		t.Fatalf("deny: got %d, want 303", rec.Code)
	}
	e.decide("req-1", csrfToken, "allow")
	ar, grant := e.recorded("req-1")
	if ar.Consent != storage.ConsentDenied {
		t.Errorf("consent after deny then allow: got %q, want %q", ar.Consent, storage.ConsentDenied)
	}
	if grant != nil {
		t.Errorf("grant after deny then allow: got %v, want none (the request stays denied)", grant)
	}
	// One decision, one event.
	e.wantEvents(t, []storage.AuditEvent{
		{Event: "consent.denied", Outcome: "success", UserID: userID, ClientID: clientID, Detail: "openid email"},
	})
}

// TestConsentRefused: no completed login, or no such request, shows an
// error page and records nothing.
func TestConsentRefused(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(e *env)
		id         string
		wantStatus int
	}{
		{"no login", func(*env) {}, "req-1", http.StatusForbidden},
		{"unknown request", func(e *env) { e.signIn() }, "req-unknown", http.StatusBadRequest},
		{"no request", func(e *env) { e.signIn() }, "", http.StatusBadRequest},
		{"expired request", func(e *env) {
			e.signIn()
			e.clock.Add(30*time.Minute + time.Second)
		}, "req-1", http.StatusBadRequest},
		{"session lookup fails", func(e *env) { e.sessions.err = errors.New("boom") }, "req-1", http.StatusInternalServerError},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				e := newEnv(t)
				e.addAuthRequest("req-1", clientID, "openid email")
				tc.setup(e)
				var rec *httptest.ResponseRecorder
				if method == http.MethodGet {
					rec = e.show(tc.id)
				} else {
					rec = e.decide(tc.id, csrfToken, "allow")
				}
				wantPage(t, rec, tc.wantStatus)
				if strings.Contains(rec.Body.String(), csrfToken) {
					t.Errorf("error page shows the CSRF token")
				}
				g, err := e.store.GetGrant(context.Background(), userID, clientID)
				if !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("grant after a refused request: got %v, %v; want none", g.Scopes, err)
				}
				e.clock.Set(t0) // read the request back, even the expired one
				if ar, err := e.store.GetAuthRequest(context.Background(), "req-1"); err != nil || ar.Consent != "" {
					t.Errorf("request after a refused request: got consent %q, %v; want none recorded", ar.Consent, err)
				}
				e.wantEvents(t, nil)
			})
		}
	}
}

// TestStoreUnavailable: with the database gone the page says "try again"
// (503), not that the request expired.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid")
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	wantPage(t, e.show("req-1"), http.StatusServiceUnavailable)
	wantPage(t, e.decide("req-1", csrfToken, "allow"), http.StatusServiceUnavailable)
	e.wantEvents(t, nil)
}

// TestDecideOversizedBody: cmd/twostep bounds every request body with
// http.MaxBytesReader; a decision past the bound is refused and records
// nothing.
func TestDecideOversizedBody(t *testing.T) {
	const limit = 4 << 10
	e := newEnv(t)
	e.signIn()
	e.addAuthRequest("req-1", clientID, "openid email")
	form := url.Values{"auth_request": {"req-1"}, "csrf_token": {csrfToken}, "decision": {"allow"}, "pad": {strings.Repeat("x", limit)}}
	r := httptest.NewRequest(http.MethodPost, "/consent", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(rec, r.Body, limit)
	e.mux.ServeHTTP(rec, r)
	wantPage(t, rec, http.StatusBadRequest)
	if ar, grant := e.recorded("req-1"); ar.Consent != "" || grant != nil {
		t.Errorf("recorded consent %q, grant %v; want nothing", ar.Consent, grant)
	}
	e.wantEvents(t, nil)
}
