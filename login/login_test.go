package login

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
	"github.com/twostep/twostep/templates"
)

// t0 is 10 s into an RFC 6238 time step, so ±30 s stays in the
// neighbouring steps.
var t0 = time.Date(2025, 3, 14, 9, 0, 10, 0, time.UTC)

// lockedBuffer collects log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t      *testing.T
	store  *storage.Store
	h      *Handler
	mux    *http.ServeMux
	clock  *storagetest.Clock // shared by the Store and the Handler
	hasher *Hasher
	logs   *lockedBuffer
	audit  *auditLog
}

// auditLog is the Handler's Audit function in tests: it keeps the events.
type auditLog struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

func (a *auditLog) record(_ *http.Request, ev storage.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
}

// take returns the events recorded since the last take.
func (a *auditLog) take() []storage.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	evs := a.events
	a.events = nil
	return evs
}

// count returns how many of the events recorded since the last take are
// event with outcome.
func (a *auditLog) count(event, outcome string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ev := range a.events {
		if ev.Event == event && ev.Outcome == outcome {
			n++
		}
	}
	return n
}

// en is the catalogue's English text for key: the language of the
// pages when the browser asks for none.
func en(key string) string { return templates.English.T(key) }

// testParams keep argon2id cheap in tests; the defaults are exercised in
// hasher_test.go and measured in BenchmarkHash.
var testParams = Params{Memory: 64, Time: 1, Threads: 1}

func newEnv(t *testing.T, edit ...func(*Config)) *env {
	t.Helper()
	clock := storagetest.NewClock(t0)
	st := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		t.Fatalf("parse templates: %v", err)
	}
	logs := &lockedBuffer{}
	audit := &auditLog{}
	cfg := Config{
		Store:  st,
		Pages:  pages,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hasher: NewHasher(testParams),
		Now:    clock.Now,
		Audit:  audit.record,
	}
	for _, f := range edit {
		f(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	return &env{t: t, store: st, h: h, mux: mux, clock: clock, hasher: cfg.Hasher, logs: logs, audit: audit}
}

// addUser creates an enabled user without an authenticator.
func (e *env) addUser(username, password string) storage.User {
	e.t.Helper()
	hash, err := e.hasher.Hash(password)
	if err != nil {
		e.t.Fatalf("hash: %v", err)
	}
	u := storage.User{ID: "id-" + username, Username: username, PasswordHash: hash}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	return u
}

// addEnrolledUser creates a user whose authenticator is already confirmed,
// without recovery codes, and returns its secret.
func (e *env) addEnrolledUser(username, password string) (storage.User, string) {
	e.t.Helper()
	u := e.addUser(username, password)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "test", AccountName: username})
	if err != nil {
		e.t.Fatalf("generate secret: %v", err)
	}
	if err := e.store.ConfirmTOTP(context.Background(), u.ID, key.Secret(), 0, nil); err != nil {
		e.t.Fatalf("confirm totp: %v", err)
	}
	return u, key.Secret()
}

// enrol signs a new user in for the first time through the pages and
// returns their TOTP secret and the recovery codes the codes page showed.
func (e *env) enrol(username, password string) (secret string, codes []string) {
	e.t.Helper()
	u := e.addUser(username, password)
	b := e.browser()
	b.mustPass(username, password)
	secret = parseEnrolment(e.t, b.get("/login/totp").body).uri.Query().Get("secret")
	p := b.codeStep(codeAt(e.t, secret, e.clock.Now()))
	if p.status != http.StatusOK {
		e.t.Fatalf("enrolment of %s: got status %d, want 200; body:\n%s", username, p.status, p.body)
	}
	codes = recoveryCodes(p.body)
	if len(codes) != recoveryCodeCount {
		e.t.Fatalf("enrolment of %s: got %d recovery codes, want %d; body:\n%s", username, len(codes), recoveryCodeCount, p.body)
	}
	// Later logins in the same time step would be replays.
	e.clock.Add(totpPeriod * time.Second)
	if got := e.user(u.ID).FailedCodes; got != 0 {
		e.t.Fatalf("after enrolment: got %d failed codes, want 0", got)
	}
	return secret, codes
}

// briefEvents writes each event as "event outcome user_id".
func briefEvents(evs []storage.AuditEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, strings.TrimSpace(ev.Event+" "+ev.Outcome+" "+ev.UserID))
	}
	return out
}

var codeItemRE = regexp.MustCompile(`<li>([^<]*)</li>`)

// recoveryCodes returns the codes a codes page lists.
func recoveryCodes(body string) []string {
	var codes []string
	for _, m := range codeItemRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, html.UnescapeString(m[1]))
	}
	return codes
}

func (e *env) addAuthRequest(id string, form url.Values) {
	e.t.Helper()
	err := e.store.CreateAuthRequest(context.Background(), storage.AuthRequest{
		ID: id, ClientID: "app", Form: form, RequestedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatalf("create auth request: %v", err)
	}
}

func (e *env) user(id string) storage.User {
	e.t.Helper()
	u, err := e.store.GetUser(context.Background(), id)
	if err != nil {
		e.t.Fatalf("get user: %v", err)
	}
	return u
}

// browser keeps the login cookie and the remembered-device cookie across
// requests, as a browser would, and sends its requests from ip
// (httptest's 192.0.2.1 when empty).
type browser struct {
	e      *env
	cookie string
	device string
	ip     string
	// ar is the authorization request the password step serves.
	ar string
	// acceptLanguage is sent as the Accept-Language header.
	acceptLanguage string
}

func (e *env) browser() *browser { return &browser{e: e} }

type page struct {
	status  int
	header  http.Header
	body    string
	cookies []*http.Cookie
}

func (p page) location() string { return p.header.Get("Location") }

// signedIn reports whether p ends a login that serves no authorization
// request: a redirect to the account page.
func (p page) signedIn() bool { return p.status == http.StatusSeeOther && p.location() == accountPath }

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: b.cookie})
	}
	if b.device != "" {
		req.AddCookie(&http.Cookie{Name: DeviceCookieName, Value: b.device})
	}
	if b.ip != "" {
		req.RemoteAddr = net.JoinHostPort(b.ip, "1234")
	}
	if b.acceptLanguage != "" {
		req.Header.Set("Accept-Language", b.acceptLanguage)
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-Id", "req-test")
	b.e.mux.ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatalf("read body: %v", err)
	}
	for _, c := range res.Cookies() {
		value := c.Value
		if c.MaxAge < 0 {
			value = ""
		}
		switch c.Name {
		case CookieName:
			b.cookie = value
		case DeviceCookieName:
			b.device = value
		}
	}
	return page{status: res.StatusCode, header: res.Header, body: string(body), cookies: res.Cookies()}
}

func (b *browser) get(target string) page {
	b.e.t.Helper()
	return b.do(httptest.NewRequest(http.MethodGet, target, nil))
}

func (b *browser) post(target string, form url.Values) page {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// request is a request carrying the browser's cookie, for Current.
func (b *browser) request() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/anything", nil)
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: b.cookie})
	}
	return req
}

// session returns the row the browser's cookie names.
func (b *browser) session() (storage.LoginSession, error) {
	return b.e.store.GetLoginSession(context.Background(), sessionID(b.cookie))
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfToken(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token field in page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// forge returns a token of the same shape as tok that differs from it in
// its first character.
func forge(tok string) string {
	c := "A"
	if tok[0] == 'A' {
		c = "B"
	}
	return c + tok[1:]
}

// fieldError returns the message shown next to the field id.
func fieldError(body, id string) string {
	m := regexp.MustCompile(`id="` + id + `-error" role="alert">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func formError(body string) string {
	m := regexp.MustCompile(`<p class="error" role="alert">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// passwordStep opens the login page and posts username and password.
func (b *browser) passwordStep(username, password string) page {
	b.e.t.Helper()
	p := b.get(loginURL(b.ar))
	if p.status != http.StatusOK {
		b.e.t.Fatalf("GET %s: got status %d, want 200", loginURL(b.ar), p.status)
	}
	return b.post("/login", url.Values{
		"csrf_token": {csrfToken(b.e.t, p.body)}, "username": {username}, "password": {password},
	})
}

// mustPass completes the password step.
func (b *browser) mustPass(username, password string) {
	b.e.t.Helper()
	p := b.passwordStep(username, password)
	if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		b.e.t.Fatalf("POST /login: got %d to %q, want 303 to /login/totp; body:\n%s", p.status, p.location(), p.body)
	}
}

// passwordAndCode signs in with a password and a TOTP code and returns
// the last page.
func (b *browser) passwordAndCode(t *testing.T, username, password, code string) page {
	t.Helper()
	b.mustPass(username, password)
	return b.codeStep(code)
}

// codeStep opens the TOTP page and posts code.
func (b *browser) codeStep(code string) page {
	b.e.t.Helper()
	p := b.get("/login/totp")
	if p.status != http.StatusOK {
		b.e.t.Fatalf("GET /login/totp: got status %d, want 200; body:\n%s", p.status, p.body)
	}
	return b.post("/login/totp", url.Values{"csrf_token": {csrfToken(b.e.t, p.body)}, "code": {code}})
}

// csrf returns the CSRF token of the browser's session.
func (b *browser) csrf() string {
	b.e.t.Helper()
	ls, err := b.session()
	if err != nil {
		b.e.t.Fatalf("session: %v", err)
	}
	return ls.CSRFToken
}

// recoveryStep opens the recovery-code page and posts code.
func (b *browser) recoveryStep(code string) page {
	b.e.t.Helper()
	p := b.get("/login/recovery")
	if p.status != http.StatusOK {
		b.e.t.Fatalf("GET /login/recovery: got status %d, want 200; body:\n%s", p.status, p.body)
	}
	return b.post("/login/recovery", url.Values{"csrf_token": {csrfToken(b.e.t, p.body)}, "code": {code}})
}

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlgorithm})
	if err != nil {
		t.Fatalf("generate code: %v", err)
	}
	return code
}

// wrongCode returns a well-formed code that matches none of the steps
// accepted at `at`.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if _, ok, _ := matchCode(secret, c, at); !ok {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func TestLoginPage(t *testing.T) {
	e := newEnv(t)
	e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}, "login_hint": {"alice"}})

	b := e.browser()
	p := b.get("/login?auth_request=ar-1")
	if p.status != http.StatusOK {
		t.Fatalf("got status %d, want 200", p.status)
	}
	for _, want := range []string{
		`<label for="username">`, `<label for="password">`,
		`name="username" value="alice"`,
		`autocomplete="username"`, `autocapitalize="none"`, `spellcheck="false"`,
		`type="password"`, `autocomplete="current-password"`,
		`<input type="hidden" name="csrf_token" value="`,
		`<form method="post" action="/login">`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Contains(p.body, "<script") {
		t.Errorf("login page has a script; want none")
	}
	ls, err := b.session()
	if err != nil {
		t.Fatalf("session of new cookie: %v", err)
	}
	if ls.State != storage.StatePassword || ls.AuthRequestID != "ar-1" {
		t.Errorf("got session state %q request %q, want %q %q", ls.State, ls.AuthRequestID, storage.StatePassword, "ar-1")
	}
	if got, want := ls.ExpiresAt, t0.Add(stepLifetime); !got.Equal(want) {
		t.Errorf("got ExpiresAt %v, want %v", got, want)
	}
	if got := csrfToken(t, p.body); got != ls.CSRFToken || len(got) != 43 {
		t.Errorf("got csrf field %q, want the session's 43-character token %q", got, ls.CSRFToken)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	b := e.browser()
	login := b.get("/login")
	b.mustPass("alice", "pw-alice-1")
	enrol := b.get("/login/totp")
	secret := parseEnrolment(t, enrol.body).uri.Query().Get("secret")
	codesPage := b.post("/login/totp", url.Values{"csrf_token": {csrfToken(t, enrol.body)}, "code": {codeAt(t, secret, e.clock.Now())}})
	errPage := e.browser().post("/login", url.Values{"username": {"alice"}})
	e.clock.Add(30 * time.Second)
	b = e.browser()
	b.mustPass("alice", "pw-alice-1")
	recovery := b.get("/login/recovery")
	usedCode := b.post("/login/recovery", url.Values{"csrf_token": {b.csrf()}, "code": {recoveryCodes(codesPage.body)[0]}})
	b = e.browser()
	b.mustPass("alice", "pw-alice-1")
	for range 5 {
		b.post("/login/totp", url.Values{"csrf_token": {b.csrf()}, "code": {wrongCode(t, secret, e.clock.Now())}})
	}
	spent := b.get("/login/totp")
	for range 5 {
		e.browser().passwordStep("alice", "nope")
	}
	throttled := e.browser().passwordStep("alice", "nope")

	for _, tc := range []struct {
		name       string
		p          page
		wantStatus int
	}{
		{"login page", login, http.StatusOK},
		{"totp enrolment page", enrol, http.StatusOK},
		{"recovery codes page", codesPage, http.StatusOK},
		{"error page", errPage, http.StatusBadRequest},
		{"recovery code page", recovery, http.StatusOK},
		{"recovery code used", usedCode, http.StatusOK},
		{"login spent", spent, http.StatusTooManyRequests},
		{"password throttled", throttled, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.status != tc.wantStatus {
				t.Errorf("got status %d, want %d", tc.p.status, tc.wantStatus)
			}
			if got, want := tc.p.header.Get("Content-Security-Policy"), templates.ContentSecurityPolicy; got != want {
				t.Errorf("got Content-Security-Policy %q, want %q", got, want)
			}
			if got := tc.p.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", got)
			}
			if got := tc.p.header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("got Content-Type %q, want text/html; charset=utf-8", got)
			}
		})
	}
}

func TestCookie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secure bool
	}{
		{"http issuer", false},
		{"https issuer", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.SecureCookie = tc.secure })
			p := e.browser().get("/login")
			var c *http.Cookie
			for _, pc := range p.cookies {
				if pc.Name == CookieName {
					c = pc
				}
			}
			if c == nil {
				t.Fatalf("got no %s cookie, want one", CookieName)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.secure {
				t.Errorf("got HttpOnly=%v SameSite=%v Path=%q Secure=%v, want true Lax / %v", c.HttpOnly, c.SameSite, c.Path, c.Secure, tc.secure)
			}
			if c.MaxAge != int(stepLifetime.Seconds()) || !c.Expires.Equal(t0.Add(stepLifetime).Truncate(time.Second)) {
				t.Errorf("got MaxAge %d Expires %v, want %d and %v", c.MaxAge, c.Expires, int(stepLifetime.Seconds()), t0.Add(stepLifetime))
			}
			if !validToken(c.Value) {
				t.Errorf("got cookie value %q, want 256 random bits in base64url", c.Value)
			}
			if _, err := e.store.GetLoginSession(context.Background(), c.Value); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("looking the raw cookie value up as a row ID: got %v, want ErrNotFound (rows are keyed by its hash)", err)
			}
		})
	}
}

// parseEnrolment checks the QR image, the otpauth link and the grouped
// secret of an enrolment page.
func parseEnrolment(t *testing.T, body string) enrolment {
	t.Helper()
	m := qrRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no inline PNG QR code with alt text in page:\n%s", body)
	}
	decodePNG(t, m[1])
	u := uriRE.FindStringSubmatch(body)
	if u == nil {
		t.Fatalf("no otpauth:// link in page:\n%s", body)
	}
	uri, err := url.Parse(html.UnescapeString(u[1]))
	if err != nil {
		t.Fatalf("parse otpauth link: %v", err)
	}
	s := secretRE.FindStringSubmatch(body)
	if s == nil || !groupRE.MatchString(s[1]) {
		t.Fatalf("got secret %q, want base32 in groups of four", s)
	}
	return enrolment{uri: uri, grouped: s[1]}
}

func TestDatabaseUnavailable(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	p := e.browser().get("/login")
	if p.status != http.StatusServiceUnavailable {
		t.Errorf("got status %d, want 503", p.status)
	}
	if !strings.Contains(p.body, en("error.unavailable")) || !strings.Contains(p.body, "req-test") {
		t.Errorf("page lacks %q or the request ID:\n%s", en("error.unavailable"), p.body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "request_id=req-test") {
		t.Errorf("logs lack request_id:\n%s", logs)
	}
}

func TestMalformedForm(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/login", "/login/totp"} {
		t.Run(target, func(t *testing.T) {
			b := e.browser()
			b.get("/login")
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("a=%zz"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if p := b.do(req); p.status != http.StatusBadRequest {
				t.Errorf("got status %d, want 400", p.status)
			}
		})
	}
}

func TestCurrentAndLogout(t *testing.T) {
	e := newEnv(t)
	_, secret := e.addEnrolledUser("alice", "pw-alice-1")

	for _, tc := range []struct {
		name  string
		setup func(b *browser)
	}{
		{"no cookie", func(*browser) {}},
		{"malformed cookie", func(b *browser) { b.cookie = "not-a-token" }},
		{"password step", func(b *browser) { b.get("/login") }},
		{"totp step", func(b *browser) { b.mustPass("alice", "pw-alice-1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			tc.setup(b)
			if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Current: got %v, want ErrNotFound", err)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		_, secret := e.addEnrolledUser("bob", "pw-bob-1")
		b := e.browser()
		b.mustPass("bob", "pw-bob-1")
		b.codeStep(codeAt(t, secret, e.clock.Now()))
		if _, err := e.h.Current(b.request()); err != nil {
			t.Fatalf("Current: got %v, want the done session", err)
		}
		e.clock.Add(defaultSessionLifetime)
		if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Current after the lifetime: got %v, want ErrNotFound", err)
		}
	})

	t.Run("logout", func(t *testing.T) {
		b := e.browser()
		b.mustPass("alice", "pw-alice-1")
		b.codeStep(codeAt(t, secret, e.clock.Now()))
		id := sessionID(b.cookie)
		rec := httptest.NewRecorder()
		if err := e.h.Logout(rec, b.request()); err != nil {
			t.Fatalf("Logout: %v", err)
		}
		if _, err := e.store.GetLoginSession(context.Background(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session after Logout: got %v, want ErrNotFound", err)
		}
		cs := rec.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != CookieName || cs[0].MaxAge >= 0 || cs[0].Value != "" {
			t.Errorf("got cookies %v, want %s cleared", cs, CookieName)
		}
		if _, err := e.h.Current(b.request()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Current after Logout: got %v, want ErrNotFound", err)
		}
		if err := e.h.Logout(httptest.NewRecorder(), e.browser().request()); err != nil {
			t.Errorf("Logout without a session: got %v, want nil", err)
		}
	})
}

func TestNewRequiresStoreAndPages(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Pages: e.h.pages}},
		{"no pages", Config{Store: e.store}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestServerErrorIsGeneric(t *testing.T) {
	e := newEnv(t)
	u := storage.User{ID: "id-carol", Username: "carol", PasswordHash: "not-a-phc-string"}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	p := e.browser().passwordStep("carol", "pw-carol-1")
	if p.status != http.StatusInternalServerError {
		t.Errorf("got status %d, want 500", p.status)
	}
	if !strings.Contains(p.body, html.EscapeString(en("error.internal"))) || strings.Contains(p.body, "argon2id") {
		t.Errorf("got page %q, want only %q", p.body, en("error.internal"))
	}
	logs := e.logs.String()
	for _, want := range []string{"level=ERROR", "user_id=id-carol", "request_id=req-test", "malformed argon2id hash"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestSessionCookieChangesAfterEachFactor(t *testing.T) {
	for _, tc := range []struct {
		name string
		// factors runs the login after GET /login and returns the cookie
		// values after each factor.
		factors func(e *env, b *browser, secret string, codes []string) []string
	}{
		{"password and TOTP code", func(e *env, b *browser, secret string, _ []string) []string {
			b.post("/login", url.Values{"csrf_token": {b.csrf()}, "username": {"alice"}, "password": {"pw-alice-1"}})
			afterPassword := b.cookie
			b.codeStep(codeAt(e.t, secret, e.clock.Now()))
			return []string{afterPassword, b.cookie}
		}},
		{"password and recovery code", func(e *env, b *browser, _ string, codes []string) []string {
			b.post("/login", url.Values{"csrf_token": {b.csrf()}, "username": {"alice"}, "password": {"pw-alice-1"}})
			afterPassword := b.cookie
			b.recoveryStep(codes[0])
			return []string{afterPassword, b.cookie}
		}},
		{"password on a remembered device", func(e *env, b *browser, secret string, _ []string) []string {
			b.device = e.remember("alice", "pw-alice-1", secret)
			// Only a login for an application skips the code.
			e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}})
			b.get("/login?auth_request=ar-1")
			b.post("/login", url.Values{"csrf_token": {b.csrf()}, "username": {"alice"}, "password": {"pw-alice-1"}})
			return []string{b.cookie}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = time.Hour })
			secret, codes := e.enrol("alice", "pw-alice-1")
			b := e.browser()
			b.get("/login")
			first := b.cookie
			cookies := append([]string{first}, tc.factors(e, b, secret, codes)...)
			for i, c := range cookies {
				if c == "" || slices.Index(cookies, c) != i {
					t.Errorf("got cookie values %q, want each one new", cookies)
				}
			}
			for _, old := range cookies[:len(cookies)-1] {
				if _, err := e.store.GetLoginSession(context.Background(), sessionID(old)); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("session of a replaced cookie: got %v, want ErrNotFound", err)
				}
			}
			if _, err := e.h.Current(b.request()); err != nil {
				t.Errorf("Current: got %v, want the done session", err)
			}
		})
	}
}
