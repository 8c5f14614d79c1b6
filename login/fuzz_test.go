package login

import (
	"context"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
	"github.com/twostep/twostep/templates"
)

// The fuzz targets post forms built from fuzzed field values and a fuzzed
// raw prefix (which comes first, so its fields win, and which may not parse
// at all). The fuzzer cannot guess a CSRF token or a TOTP code, so these
// markers in any fuzzed string stand for the right ones; mutations around
// them (a suffix, a space, a second copy) are explored from the seeds.
const (
	csrfMarker = "@csrf@"
	codeMarker = "@code@"
)

// The known pair of FuzzPasswordForm, and a disabled user whose right
// password must not get through either.
const (
	fuzzUser         = "alice"
	fuzzPassword     = "pw-alice-1"
	fuzzDisabled     = "dave"
	fuzzDisabledPass = "pw-dave-1"
)

// fuzzRemember turns "remember this device" on in FuzzTOTPForm, so that the
// remember field reaches code.
const fuzzRemember = 30 * 24 * time.Hour

// newFuzzEnv is newEnv for a fuzz target: one store and handler for every
// iteration, set up (and closed) by f. Its t is nil; each iteration takes
// a copy with its own (withT).
func newFuzzEnv(f *testing.F, edit ...func(*Config)) *env {
	f.Helper()
	clock := storagetest.NewClock(t0)
	st := storagetest.New(f, storagetest.SQLiteDSN(f), clock.Now)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		f.Fatalf("parse templates: %v", err)
	}
	cfg := Config{
		Store:  st,
		Pages:  pages,
		Logger: slog.New(slog.DiscardHandler), // millions of lines otherwise
		Hasher: NewHasher(testParams),
		Now:    clock.Now,
	}
	for _, fn := range edit {
		fn(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	h.Routes(mux)
	return &env{store: st, h: h, mux: mux, clock: clock, hasher: cfg.Hasher, logs: &lockedBuffer{}}
}

// withT returns a copy of e whose helpers report to t.
func (e *env) withT(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// fuzzBody is the body a fuzz iteration posts: raw (if any), then fields,
// with the markers replaced by their values.
func fuzzBody(raw string, fields url.Values, markers *strings.Replacer) string {
	for _, vs := range fields {
		for i := range vs {
			vs[i] = markers.Replace(vs[i])
		}
	}
	body := fields.Encode()
	if raw != "" {
		body = markers.Replace(raw) + "&" + body
	}
	return body
}

// parseLikeHandler parses body as the handlers' parseForm does: at most
// maxFormBytes, then url.ParseQuery.
func parseLikeHandler(body string) (url.Values, error) {
	if len(body) > maxFormBytes {
		return nil, errors.New("body too large")
	}
	return url.ParseQuery(body)
}

// postRaw posts body as a form to target with the browser's cookie.
func (b *browser) postRaw(target, body string) page {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	usernameValueRE = regexp.MustCompile(`name="username" value="([^"]*)"`)
	passwordValueRE = regexp.MustCompile(`name="password"[^>]*\svalue=`)
)

// checkNoScript fails t when p has a script: the pages have none, so a
// fuzzed "<script" that shows up was reflected unescaped.
func checkNoScript(t *testing.T, p page) {
	t.Helper()
	if strings.Contains(strings.ToLower(p.body), "<script") {
		t.Errorf("page has <script; the input reached it unescaped:\n%s", p.body)
	}
}

// checkEcho fails t unless the login page p shows username again,
// escaped, and not the password.
func checkEcho(t *testing.T, p page, username string) {
	t.Helper()
	if passwordValueRE.MatchString(p.body) {
		t.Errorf("page fills the password field back in:\n%s", p.body)
	}
	m := usernameValueRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("login page has no username field with a value:\n%s", p.body)
	}
	if strings.ContainsAny(m[1], "<>") {
		t.Errorf("username field value %q holds < or > unescaped", m[1])
	}
	// html/template writes NUL as U+FFFD.
	if got, want := html.UnescapeString(m[1]), strings.ReplaceAll(username, "\x00", "\uFFFD"); got != want {
		t.Errorf("username field: got %q (%q unescaped), want the submitted %q", m[1], got, want)
	}
}

func FuzzPasswordForm(f *testing.F) {
	for _, s := range []struct{ username, password, csrf, raw string }{
		{fuzzUser, fuzzPassword, csrfMarker, ""},
		{fuzzUser, fuzzPassword, "", ""},
		{fuzzUser, fuzzPassword, csrfMarker + "x", ""},
		{fuzzUser, fuzzPassword, " " + csrfMarker, ""},
		{" alice\t", fuzzPassword, csrfMarker, ""},
		{"alice\u00a0", fuzzPassword, csrfMarker, ""},
		{"Alice", fuzzPassword, csrfMarker, ""},
		{fuzzUser, fuzzPassword + " ", csrfMarker, ""},
		{fuzzUser, "PW-ALICE-1", csrfMarker, ""},
		{fuzzUser, "", csrfMarker, ""},
		{"", "", csrfMarker, ""},
		{fuzzDisabled, fuzzDisabledPass, csrfMarker, ""},
		{"<script>alert(1)</script>", "x", csrfMarker, ""},
		{`"><script>alert(1)</script>`, "x", csrfMarker, ""},
		{"a\x00b\xffc&amp;'+`", "x", csrfMarker, ""},
		{fuzzUser, fuzzPassword, "", "csrf_token=" + csrfMarker},
		{fuzzUser, fuzzPassword, csrfMarker, "csrf_token="},
		{fuzzUser, fuzzPassword, csrfMarker, "username=mallory"},
		{"mallory", fuzzPassword, csrfMarker, "username=alice"},
		{fuzzUser, fuzzPassword, csrfMarker, "a=%zz"},
		{fuzzUser, fuzzPassword, csrfMarker, "a=1;b=2"},
		{fuzzUser, fuzzPassword, csrfMarker, strings.Repeat("x", maxFormBytes)},
	} {
		f.Add(s.username, s.password, s.csrf, s.raw)
	}

	base := newFuzzEnv(f)
	ctx := context.Background()
	for _, u := range []struct {
		username, password string
		disabled           bool
	}{{fuzzUser, fuzzPassword, false}, {fuzzDisabled, fuzzDisabledPass, true}} {
		hash, err := base.hasher.Hash(u.password)
		if err != nil {
			f.Fatal(err)
		}
		if err := base.store.CreateUser(ctx, storage.User{ID: "id-" + u.username, Username: u.username, PasswordHash: hash}); err != nil {
			f.Fatal(err)
		}
		if u.disabled {
			if err := base.store.SetUserDisabled(ctx, "id-"+u.username, true); err != nil {
				f.Fatal(err)
			}
		}
	}

	f.Fuzz(func(t *testing.T, username, password, csrf, raw string) {
		e := base.withT(t)
		b := e.browser()
		p := b.get("/login")
		if p.status != http.StatusOK {
			t.Fatalf("GET /login: got status %d, want 200", p.status)
		}
		before, err := b.session()
		if err != nil {
			t.Fatalf("session after GET /login: %v", err)
		}
		token := csrfToken(t, p.body)
		body := fuzzBody(raw, url.Values{"username": {username}, "password": {password}, "csrf_token": {csrf}},
			strings.NewReplacer(csrfMarker, token))
		form, parseErr := parseLikeHandler(body)
		submitted := strings.TrimSpace(form.Get("username"))

		// Each iteration starts with no failures counted, so that its
		// outcome depends on its input alone; TestPasswordThrottle covers
		// the back-off.
		req := httptest.NewRequest(http.MethodPost, "/login", nil)
		for _, key := range []string{usernameKey(submitted), ipKey(clientIP(req))} {
			if err := e.store.ResetThrottle(ctx, key); err != nil {
				t.Fatalf("reset throttle: %v", err)
			}
		}

		p = b.postRaw("/login", body)
		if p.status >= 500 {
			t.Fatalf("got status %d, want < 500; body:\n%s", p.status, p.body)
		}
		checkNoScript(t, p)

		right := submitted == fuzzUser && form.Get("password") == fuzzPassword
		var wantStatus int
		switch {
		case parseErr != nil:
			wantStatus = http.StatusBadRequest
		case form.Get("csrf_token") != token:
			wantStatus = http.StatusForbidden
		case right:
			wantStatus = http.StatusSeeOther
		default:
			wantStatus = http.StatusUnprocessableEntity
		}
		if p.status != wantStatus {
			t.Fatalf("got status %d, want %d (parse error %v, csrf right %t, credentials right %t); body:\n%s",
				p.status, wantStatus, parseErr, form.Get("csrf_token") == token, right, p.body)
		}
		if wantStatus == http.StatusUnprocessableEntity {
			checkEcho(t, p, submitted)
		}

		after, err := b.session()
		if err != nil {
			t.Fatalf("session after POST /login: %v", err)
		}
		if wantStatus != http.StatusSeeOther {
			if after.ID != before.ID || after.State != storage.StatePassword || after.UserID != "" {
				t.Fatalf("got session %.8s in state %q for %q, want %.8s still in state %q for nobody",
					after.ID, after.State, after.UserID, before.ID, storage.StatePassword)
			}
			return
		}
		if p.location() != "/login/totp" || after.State != storage.StateTOTP || after.UserID != "id-"+fuzzUser {
			t.Fatalf("got %q, session in state %q for %q; want /login/totp, state %q for id-%s",
				p.location(), after.State, after.UserID, storage.StateTOTP, fuzzUser)
		}
		if _, err := e.store.GetLoginSession(ctx, before.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("old session after the password step: got %v, want ErrNotFound", err)
		}
	})
}

func FuzzTOTPForm(f *testing.F) {
	for _, s := range []struct {
		code, csrf, remember, raw string
		enrol                     bool
	}{
		{codeMarker, csrfMarker, "", "", false},
		{codeMarker, csrfMarker, "1", "", false},
		{codeMarker, csrfMarker, "", "", true},
		{codeMarker, csrfMarker, "on", "", true},
		{codeMarker, "", "", "", false},
		{codeMarker, csrfMarker + csrfMarker, "", "", false},
		{codeMarker, "", "", "csrf_token=" + csrfMarker, false},
		{" " + codeMarker + "\n", csrfMarker, "", "", false},
		{codeMarker + "0", csrfMarker, "", "", false},
		{"0" + codeMarker, csrfMarker, "", "", true},
		{"000000", csrfMarker, "", "", false},
		{"12345", csrfMarker, "", "", false},
		{"１２３４５６", csrfMarker, "", "", false},
		{"-12345", csrfMarker, "", "", false},
		{"", csrfMarker, "", "", false},
		{"<script>alert(1)</script>", csrfMarker, "<script>", "", false},
		{"000000", csrfMarker, "", "code=" + codeMarker, false},
		{codeMarker, csrfMarker, "", "code=000000", false},
		{codeMarker, csrfMarker, "", "code=%zz", false},
		{codeMarker, csrfMarker, "", "a=1;b=2", true},
	} {
		f.Add(s.code, s.csrf, s.remember, s.raw, s.enrol)
	}

	base := newFuzzEnv(f, func(c *Config) { c.RememberDevice = fuzzRemember })
	users := 0

	f.Fuzz(func(t *testing.T, code, csrf, remember, raw string, enrol bool) {
		e := base.withT(t)
		// A fresh user each time: the account's failure count and last
		// used step then depend on this input alone.
		users++
		username, password := "user"+strconv.Itoa(users), "pw-fuzz-1"
		var u storage.User
		var secret string
		if enrol {
			u = e.addUser(username, password)
		} else {
			u, secret = e.addEnrolledUser(username, password)
		}
		b := e.browser()
		b.mustPass(username, password)
		p := b.get("/login/totp")
		if p.status != http.StatusOK {
			t.Fatalf("GET /login/totp: got status %d, want 200", p.status)
		}
		before, err := b.session()
		if err != nil {
			t.Fatalf("session after the password step: %v", err)
		}
		if enrol {
			secret = before.PendingTOTPSecret
		}
		now := e.clock.Now()
		var valid []string // RFC 6238 codes for this step and one either side
		for _, d := range []time.Duration{-totpPeriod * time.Second, 0, totpPeriod * time.Second} {
			valid = append(valid, codeAt(t, secret, now.Add(d)))
		}
		token := csrfToken(t, p.body)
		fields := url.Values{"code": {code}, "csrf_token": {csrf}}
		if remember != "" {
			fields.Set("remember", remember)
		}
		body := fuzzBody(raw, fields, strings.NewReplacer(csrfMarker, token, codeMarker, valid[1]))
		form, parseErr := parseLikeHandler(body)

		p = b.postRaw("/login/totp", body)
		if p.status >= 500 {
			t.Fatalf("got status %d, want < 500; body:\n%s", p.status, p.body)
		}
		checkNoScript(t, p)

		// People type spaces into codes; nothing else is forgiven.
		right := slices.Contains(valid, strings.Join(strings.Fields(form.Get("code")), ""))
		var wantStatus int
		switch {
		case parseErr != nil:
			wantStatus = http.StatusBadRequest
		case form.Get("csrf_token") != token:
			wantStatus = http.StatusForbidden
		case right && enrol:
			wantStatus = http.StatusOK // the new recovery codes
		case right:
			wantStatus = http.StatusSeeOther // on to the account page
		default:
			wantStatus = http.StatusUnprocessableEntity
		}
		if p.status != wantStatus {
			t.Fatalf("got status %d, want %d (parse error %v, csrf right %t, code right %t); body:\n%s",
				p.status, wantStatus, parseErr, form.Get("csrf_token") == token, right, p.body)
		}

		done := wantStatus == http.StatusOK || wantStatus == http.StatusSeeOther
		ls, err := e.h.Current(b.request())
		switch {
		case done && err != nil:
			t.Fatalf("Current after a right code: got %v, want the done session", err)
		case done && ls.UserID != u.ID:
			t.Fatalf("Current after a right code: got user %q, want %q", ls.UserID, u.ID)
		case !done && !errors.Is(err, storage.ErrNotFound):
			t.Fatalf("Current after a refused code: got session %.8s in state %q (error %v), want ErrNotFound",
				ls.ID, ls.State, err)
		}
		if !done {
			after, err := b.session()
			if err != nil || after.ID != before.ID || after.State != storage.StateTOTP {
				t.Fatalf("session after a refused code: got %.8s in state %q (error %v), want %.8s still in state %q",
					after.ID, after.State, err, before.ID, storage.StateTOTP)
			}
		}
		if got := e.user(u.ID); got.HasTOTP() != (done || !enrol) || (got.HasTOTP() && got.TOTPSecret != secret) {
			t.Errorf("got HasTOTP %t with the shown secret %t after enrol=%t done=%t",
				got.HasTOTP(), got.TOTPSecret == secret, enrol, done)
		}
		remembered := slices.ContainsFunc(p.cookies, func(c *http.Cookie) bool {
			return c.Name == DeviceCookieName && c.MaxAge > 0
		})
		if want := done && form.Get("remember") != ""; remembered != want {
			t.Errorf("got a device cookie %t, want %t (done %t, remember %q)", remembered, want, done, form.Get("remember"))
		}
	})
}
