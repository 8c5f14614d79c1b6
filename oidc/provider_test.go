package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
	"github.com/twostep/twostep/templates"
)

// testIssuer is the issuer of every test provider.
const testIssuer = "https://id.example.com"

// The registered client most tests use, and where it may send browsers.
const (
	appID       = "app"
	appSecret   = "app-secret-0123456789abcdef0123456789"
	appRedirect = "https://app.example.com/cb"
	appLogout   = "https://app.example.com/signed-out"
)

// testTOTPSecret makes a user count as enrolled; no code is ever computed
// from it here.
const testTOTPSecret = "JBSWY3DPEHPK3PXP"

// newFakeClock returns the clock of the store, the key set and the
// provider. It starts at the wall clock, truncated to the second, rather
// than at a constant: fosite stamps an authorization request's requested_at
// and checks auth_time with time.Now, not with Config.Now, so a login time
// from a clock far from the wall clock would be refused as "in the future"
// or pass prompt=login by accident. The clock only moves when a test moves
// it.
func newFakeClock() *storagetest.Clock {
	return storagetest.NewClock(time.Now().UTC().Truncate(time.Second))
}

// fakeSessions is the browser's login as the login package would report
// it: nobody until signIn.
type fakeSessions struct {
	mu      sync.Mutex
	login   *storage.LoginSession
	logouts int
}

var _ Sessions = (*fakeSessions)(nil)

func (f *fakeSessions) Current(*http.Request) (storage.LoginSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.login == nil {
		return storage.LoginSession{}, fmt.Errorf("current login: %w", storage.ErrNotFound)
	}
	return *f.login, nil
}

func (f *fakeSessions) Logout(http.ResponseWriter, *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logouts++
	f.login = nil
	return nil
}

// signIn makes userID the browser's user, with password and TOTP code
// checked at authTime.
func (f *fakeSessions) signIn(userID string, authTime time.Time) {
	f.signInWith(userID, authTime, storage.ACRTOTP, []string{"pwd", "otp", "mfa"})
}

// signInWith makes userID the browser's user, whose login ended at
// authTime with acr and amr.
func (f *fakeSessions) signInWith(userID string, authTime time.Time, acr string, amr []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.login = &storage.LoginSession{
		ID: "login-" + userID, State: storage.StateDone, UserID: userID, CSRFToken: csrfTokenOf(userID),
		PasswordAt: authTime, AuthTime: authTime, AMR: amr, ACR: acr, SID: sidOf(userID),
	}
}

// signOut leaves the browser without a login.
func (f *fakeSessions) signOut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.login = nil
}

// sidOf is the sid of userID's login session.
func sidOf(userID string) string { return "sid-of-" + userID }

// csrfTokenOf is the CSRF token of userID's login session.
func csrfTokenOf(userID string) string { return "csrf-token-of-" + userID }

func (f *fakeSessions) logoutCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logouts
}

// fakeAudit collects the audit events the provider records.
type fakeAudit struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

func (f *fakeAudit) record(r *http.Request, ev storage.AuditEvent) {
	if r == nil {
		panic("audit event without a request")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

// take returns the events recorded so far, and forgets them.
func (f *fakeAudit) take() []storage.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	evs := f.events
	f.events = nil
	return evs
}

// wantEvents checks that exactly want were recorded since the last take,
// in order, and that none carries any of secrets.
func (f *fakeAudit) wantEvents(t *testing.T, want []storage.AuditEvent, secrets ...string) {
	t.Helper()
	got := f.take()
	if !slices.Equal(got, want) {
		t.Errorf("audit events:\n got %+v\nwant %+v", got, want)
	}
	for _, ev := range got {
		for _, secret := range secrets {
			if secret == "" {
				continue
			}
			for _, v := range []string{ev.Event, ev.Outcome, ev.UserID, ev.ClientID, ev.IP, ev.UserAgent, ev.Detail} {
				if strings.Contains(v, secret) {
					t.Errorf("audit event %+v carries a secret %q", ev, secret)
				}
			}
		}
	}
}

// env is a provider over a fresh SQLite store, with its routes.
type env struct {
	t        *testing.T
	store    *storage.Store
	p        *Provider
	clock    *storagetest.Clock
	sessions *fakeSessions
	audit    *fakeAudit
	mux      *http.ServeMux
}

func testConfig(store *storage.Store, clock *storagetest.Clock, sessions Sessions, audit func(*http.Request, storage.AuditEvent), pages *templates.Pages) Config {
	return Config{
		Issuer: testIssuer, Store: store, Pages: pages, Logger: slog.New(slog.DiscardHandler),
		Sessions: sessions, HMACSecret: []byte("0123456789abcdef0123456789abcdef"),
		Audit: audit, Now: clock.Now,
	}
}

func parsePages(t *testing.T) *templates.Pages {
	t.Helper()
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatalf("parse templates: %v", err)
	}
	return pages
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := newFakeClock()
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	e := &env{t: t, store: store, clock: clock, sessions: &fakeSessions{}, audit: &fakeAudit{}}
	p, err := New(context.Background(), testConfig(store, clock, e.sessions, e.audit.record, parsePages(t)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	// The oidc part of cmd/twostep/routes.go.
	mux := http.NewServeMux()
	mux.Handle("GET /.well-known/openid-configuration", p.Discovery())
	mux.Handle("GET /.well-known/jwks.json", p.JWKS())
	mux.Handle("GET /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/auth", p.Authorize())
	mux.Handle("POST /oauth2/token", p.Token())
	mux.Handle("POST /oauth2/par", p.PushedAuthorize())
	mux.Handle("GET /userinfo", p.UserInfo())
	mux.Handle("POST /userinfo", p.UserInfo())
	mux.Handle("POST /oauth2/revoke", p.Revoke())
	mux.Handle("POST /oauth2/introspect", p.Introspect())
	mux.Handle("GET /oauth2/logout", p.Logout())
	mux.Handle("POST /oauth2/logout", p.Logout())
	e.mux = mux
	return e
}

// addUser creates an enabled user with a confirmed authenticator.
func (e *env) addUser(username string) storage.User {
	e.t.Helper()
	return e.addUserWith(username, func(*storage.User) {}, true)
}

func (e *env) addUserWith(username string, edit func(*storage.User), enrolled bool) storage.User {
	e.t.Helper()
	ctx := context.Background()
	u := storage.User{
		ID: "sub-" + username, Username: username, Email: username + "@example.com", EmailVerified: true,
		Name: "Name of " + username, Groups: []string{"staff", "admins"}, PasswordHash: "unused",
	}
	edit(&u)
	if err := e.store.CreateUser(ctx, u); err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	if enrolled {
		if err := e.store.ConfirmTOTP(ctx, u.ID, testTOTPSecret, 1, nil); err != nil {
			e.t.Fatalf("confirm totp: %v", err)
		}
	}
	if u.Disabled {
		if err := e.store.SetUserDisabled(ctx, u.ID, true); err != nil {
			e.t.Fatalf("disable user: %v", err)
		}
	}
	got, err := e.store.GetUser(ctx, u.ID)
	if err != nil {
		e.t.Fatalf("get user: %v", err)
	}
	return got
}

// appClient is a confidential client that must use PKCE and may use every
// grant and scope.
func appClient(id string) storage.Client {
	return storage.Client{
		ID: id, Name: "The App", RedirectURIs: []string{appRedirect}, PostLogoutRedirectURIs: []string{appLogout},
		GrantTypes:    []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes: []string{"code"}, Scopes: SupportedScopes, RequirePKCE: true,
	}
}

// addClient registers c; a non-empty secret makes it confidential.
func (e *env) addClient(c storage.Client, secret string) {
	e.t.Helper()
	if secret != "" {
		sum := sha256.Sum256([]byte(secret))
		c.SecretHash = sum[:]
	}
	if err := e.store.CreateClient(context.Background(), &c); err != nil {
		e.t.Fatalf("create client %q: %v", c.ID, err)
	}
}

// addApp registers the usual confidential client, with or without the
// consent step.
func (e *env) addApp(skipConsent bool) {
	e.t.Helper()
	c := appClient(appID)
	c.SkipConsent = skipConsent
	e.addClient(c, appSecret)
}

func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	return rec
}

func (e *env) get(target string) *httptest.ResponseRecorder {
	return e.serve(httptest.NewRequest(http.MethodGet, target, nil))
}

// credentials authenticate a client at the token, revocation and
// introspection endpoints: HTTP Basic (client_secret_basic), the form
// (client_secret_post), or only client_id for a public client.
type credentials struct {
	id, secret string
	post       bool
}

func basic(id, secret string) credentials  { return credentials{id: id, secret: secret} }
func inForm(id, secret string) credentials { return credentials{id: id, secret: secret, post: true} }
func publicClient(id string) credentials   { return credentials{id: id, post: true} }

// postForm posts form to path, authenticated with c.
func (e *env) postForm(path string, form url.Values, c credentials) *httptest.ResponseRecorder {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if c.post && c.id != "" {
		f.Set("client_id", c.id)
		if c.secret != "" {
			f.Set("client_secret", c.secret)
		}
	}
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(f.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !c.post && c.id != "" {
		r.SetBasicAuth(c.id, c.secret)
	}
	return e.serve(r)
}

func randomString(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// authRequest is an authorization request with its PKCE verifier.
type authRequest struct {
	params   url.Values
	verifier string
}

// newAuthRequest asks for a code for clientID with every scope, PKCE S256,
// a state and a nonce.
func newAuthRequest(t testing.TB, clientID string) authRequest {
	verifier := randomString(t) + randomString(t)
	sum := sha256.Sum256([]byte(verifier))
	return authRequest{verifier: verifier, params: url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {appRedirect},
		"response_type":         {"code"},
		"scope":                 {"openid profile email groups offline_access"},
		"state":                 {"state-" + randomString(t)},
		"nonce":                 {"nonce-" + randomString(t)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}}
}

// with returns a copy of the request with key set to value, or removed
// when value is empty.
func (a authRequest) with(key, value string) authRequest {
	p := url.Values{}
	for k, v := range a.params {
		p[k] = append([]string(nil), v...)
	}
	if value == "" {
		p.Del(key)
	} else {
		p.Set(key, value)
	}
	return authRequest{params: p, verifier: a.verifier}
}

func (a authRequest) url() string { return "/oauth2/auth?" + a.params.Encode() }

func (a authRequest) state() string { return a.params.Get("state") }

// redirect returns where rec sends the browser, failing the test when it
// is not a redirect.
func mustRedirect(t *testing.T, rec *httptest.ResponseRecorder) *url.URL {
	t.Helper()
	if rec.Code != http.StatusFound && rec.Code != http.StatusSeeOther {
		t.Fatalf("got status %d, want a redirect (302 or 303); body:\n%s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", rec.Header().Get("Location"), err)
	}
	return loc
}

// clientRedirect returns the parameters of a redirect to appRedirect, from
// wantErrorRedirect checks that rec sends the browser to the client with
// error=want, the request's state and no code.
func wantErrorRedirect(t *testing.T, rec *httptest.ResponseRecorder, ar authRequest, want string) {
	t.Helper()
	q := clientRedirect(t, rec)
	if q.Get("error") != want || q.Get("state") != ar.state() || q.Has("code") {
		t.Errorf("got %v, want error=%s with the state and no code", q, want)
	}
}

// its query and its fragment.
func clientRedirect(t *testing.T, rec *httptest.ResponseRecorder) url.Values {
	t.Helper()
	loc := mustRedirect(t, rec)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != appRedirect {
		t.Fatalf("redirect to %q, want %s", loc, appRedirect)
	}
	params := loc.Query()
	frag, err := url.ParseQuery(loc.Fragment)
	if err != nil {
		t.Fatalf("fragment of %q: %v", loc, err)
	}
	for k, v := range frag {
		params[k] = append(params[k], v...)
	}
	return params
}

// pendingID returns the auth_request of a redirect to step ("/login" or
// "/consent").
func pendingID(t *testing.T, rec *httptest.ResponseRecorder, step string) string {
	t.Helper()
	loc := mustRedirect(t, rec)
	if loc.Path != step {
		t.Fatalf("redirect to %q, want %s?auth_request=...", loc, step)
	}
	id := loc.Query().Get("auth_request")
	if id == "" {
		t.Fatalf("redirect to %q has no auth_request", loc)
	}
	return id
}

// code returns the code of a redirect to appRedirect, checking its state.
func codeFrom(t *testing.T, rec *httptest.ResponseRecorder, ar authRequest) string {
	t.Helper()
	q := clientRedirect(t, rec)
	if q.Get("error") != "" {
		t.Fatalf("got error %q (%s), want a code", q.Get("error"), q.Get("error_description"))
	}
	if got := q.Get("state"); got != ar.state() {
		t.Errorf("state: got %q, want %q", got, ar.state())
	}
	if q.Get("code") == "" {
		t.Fatalf("redirect %v has no code", q)
	}
	return q.Get("code")
}

// tokenResponse is the JSON of a token endpoint answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	Error        string `json:"error"`
}

func decodeToken(t *testing.T, rec *httptest.ResponseRecorder) tokenResponse {
	t.Helper()
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		t.Fatalf("token response %q: %v", rec.Body, err)
	}
	return tr
}

// exchange redeems a code at the token endpoint with ar's verifier.
func (e *env) exchange(t *testing.T, ar authRequest, code string, c credentials) (*httptest.ResponseRecorder, tokenResponse) {
	t.Helper()
	rec := e.postForm("/oauth2/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {appRedirect}, "code_verifier": {ar.verifier},
	}, c)
	return rec, decodeToken(t, rec)
}

// tokensFor signs username in and runs the code flow for the app (which
// must skip consent) with the given scopes.
func (e *env) tokensFor(t *testing.T, userID, scope string) tokenResponse {
	t.Helper()
	e.sessions.signIn(userID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID).with("scope", scope)
	c := codeFrom(t, e.get(ar.url()), ar)
	rec, tr := e.exchange(t, ar, c, basic(appID, appSecret))
	if rec.Code != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("exchange: got %d %s, want 200 with an access token", rec.Code, rec.Body)
	}
	return tr
}

func TestNewRefusesBadConfig(t *testing.T) {
	clock := newFakeClock()
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	pages := parsePages(t)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"short HMAC secret", func(c *Config) { c.HMACSecret = make([]byte, 31) }, "HMAC secret"},
		{"no issuer", func(c *Config) { c.Issuer = "" }, "issuer"},
		{"issuer only a slash", func(c *Config) { c.Issuer = "/" }, "issuer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(store, clock, &fakeSessions{}, nil, pages)
			tc.edit(&cfg)
			p, err := New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: got %v, %v; want an error about %s", p, err, tc.want)
			}
		})
	}
	keys, err := store.ListSigningKeys(context.Background(), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("after refused configs: got %d signing keys, want none", len(keys))
	}
}

// TestStoreUnavailable: with the database gone every endpoint says
// "try again" (503), not that the client, user or token is invalid.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	tr := e.tokensFor(t, u.ID, "openid")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	ar := newAuthRequest(t, appID)
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"authorize", httptest.NewRequest(http.MethodGet, ar.url(), nil)},
		{"authorize, kept request", httptest.NewRequest(http.MethodGet, "/oauth2/auth?auth_request=some-id", nil)},
		{"userinfo", userinfoGET(tr.AccessToken)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.serve(tc.req)
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("got %d, want 503\n%s", rec.Code, rec.Body)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("got a redirect to %q, want none", loc)
			}
		})
	}
	t.Run("token", func(t *testing.T) {
		rec := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic(appID, appSecret))
		if tr := decodeToken(t, rec); rec.Code != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
			t.Errorf("got %d %q, want 503 temporarily_unavailable", rec.Code, tr.Error)
		}
	})
}

// TestOversizedBody: cmd/twostep bounds every request body with
// http.MaxBytesReader; a body past the bound fails every endpoint closed:
// a 4xx, nothing issued, revoked, disclosed or ended, nothing audited.
func TestOversizedBody(t *testing.T) {
	const limit = 4 << 10
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	tr := e.tokensFor(t, u.ID, "openid offline_access")
	e.sessions.signIn(u.ID, e.clock.Now())
	e.audit.take()
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		e.mux.ServeHTTP(w, r)
	})
	pad := strings.Repeat("x", limit)
	tests := []struct {
		path       string
		form       url.Values
		basicAuth  bool
		wantStatus int
	}{
		{"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, true, http.StatusBadRequest},
		{"/oauth2/revoke", url.Values{"token": {tr.RefreshToken}}, true, http.StatusBadRequest},
		{"/oauth2/introspect", url.Values{"token": {tr.AccessToken}}, true, http.StatusBadRequest},
		{"/userinfo", url.Values{"access_token": {tr.AccessToken}}, false, http.StatusUnauthorized},
		{"/oauth2/logout", url.Values{"csrf_token": {csrfTokenOf(u.ID)}}, false, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			tc.form.Set("pad", pad)
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basicAuth {
				r.SetBasicAuth(appID, appSecret)
			}
			rec := httptest.NewRecorder()
			limited.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			for _, leaked := range []string{`"access_token"`, `"active":true`, `"sub"`} {
				if strings.Contains(rec.Body.String(), leaked) {
					t.Errorf("response carries %s: %s", leaked, rec.Body)
				}
			}
		})
	}
	if !e.active(t, tr.RefreshToken) {
		t.Error("an oversized revocation revoked the refresh token")
	}
	if n := e.sessions.logoutCount(); n != 0 {
		t.Errorf("an oversized logout called Logout %d times, want 0", n)
	}
	e.audit.wantEvents(t, nil)
}
