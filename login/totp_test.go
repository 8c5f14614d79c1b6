package login

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

func decodePNG(t *testing.T, b64 string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(b64))
	if err != nil {
		t.Fatalf("QR data URI: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("QR data URI is not a PNG: %v", err)
	}
	if got := img.Bounds().Dx(); got != qrSize {
		t.Errorf("got QR width %d, want %d", got, qrSize)
	}
}

// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890", truncated to the
// low six digits.
func TestMatchCodeRFC6238Vectors(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	for _, tc := range []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			step, ok, err := matchCode(secret, tc.code, time.Unix(tc.unix, 0))
			if err != nil || !ok || step != tc.unix/30 {
				t.Errorf("got step %d ok %v err %v, want step %d", step, ok, err, tc.unix/30)
			}
		})
	}
}

func TestMatchCodeSkew(t *testing.T) {
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1234567890, 0)
	for _, tc := range []struct {
		name   string
		offset time.Duration
		ok     bool
	}{
		{"two steps early", -60 * time.Second, false},
		{"one step early", -30 * time.Second, true},
		{"current step", 0, true},
		{"one step late", 30 * time.Second, true},
		{"two steps late", 60 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := now.Add(tc.offset)
			step, ok, err := matchCode(secret, codeAt(t, secret, at), now)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || (ok && step != at.Unix()/30) {
				t.Errorf("got step %d ok %v, want step %d ok %v", step, ok, at.Unix()/30, tc.ok)
			}
		})
	}
}

func TestCodeSkewAtHandler(t *testing.T) {
	for _, tc := range []struct {
		name       string
		offset     time.Duration
		wantStatus int
	}{
		{"previous step", -30 * time.Second, http.StatusSeeOther},
		{"current step", 0, http.StatusSeeOther},
		{"next step", 30 * time.Second, http.StatusSeeOther},
		{"two steps ago", -60 * time.Second, http.StatusUnprocessableEntity},
		{"two steps ahead", 60 * time.Second, http.StatusUnprocessableEntity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			p := b.codeStep(codeAt(t, secret, e.clock.Now().Add(tc.offset)))
			if p.status != tc.wantStatus {
				t.Errorf("got status %d, want %d", p.status, tc.wantStatus)
			}
		})
	}
}

func TestCodeReplay(t *testing.T) {
	e := newEnv(t)
	_, secret := e.addEnrolledUser("alice", "pw-alice-1")
	first := codeAt(t, secret, t0)
	// Each step logs in from a fresh browser; the sequence matters.
	for _, tc := range []struct {
		name    string
		advance time.Duration
		code    func() string
		wantOK  bool
	}{
		{"first use", 0, func() string { return first }, true},
		{"same code, same step", 0, func() string { return first }, false},
		{"same code, next step", 30 * time.Second, func() string { return first }, false},
		{"code of the new step", 0, func() string { return codeAt(t, secret, e.clock.Now()) }, true},
		{"code of the previous step, after a later one", 0, func() string { return codeAt(t, secret, e.clock.Now().Add(-30*time.Second)) }, false},
		{"code of the following step", 0, func() string { return codeAt(t, secret, e.clock.Now().Add(30*time.Second)) }, true},
		{"current code, after the following step", 0, func() string { return codeAt(t, secret, e.clock.Now()) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Add(tc.advance)
			e.audit.take()
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			p := b.codeStep(tc.code())
			if tc.wantOK {
				if !p.signedIn() {
					t.Fatalf("got %d to %q, want 303 to %s; body:\n%s", p.status, p.location(), accountPath, p.body)
				}
				return
			}
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("got status %d, want 422", p.status)
			}
			if got := fieldError(p.body, "code"); got != en("totp.code_used") {
				t.Errorf("got message %q, want %q", got, en("totp.code_used"))
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StateTOTP {
				t.Errorf("got session %+v, %v; want it still in state totp", ls, err)
			}
			if got, want := briefEvents(e.audit.take()), "login.totp replayed id-alice"; !slices.Contains(got, want) {
				t.Errorf("got events %q, want %q among them", got, want)
			}
		})
	}
}

func TestCodeFormat(t *testing.T) {
	e := newEnv(t)
	_, secret := e.addEnrolledUser("alice", "pw-alice-1")
	for _, code := range []string{"", "12345", "1234567", "12a456", "١٢٣٤٥٦"} {
		t.Run(code, func(t *testing.T) {
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			p := b.codeStep(code)
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != en("totp.code_format") {
				t.Errorf("got %d %q, want 422 %q", p.status, fieldError(p.body, "code"), en("totp.code_format"))
			}
		})
	}
	// Malformed codes do not use up attempts.
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Errorf("right code after malformed ones: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
}

func TestTOTPStepRequiresPassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup leaves the browser somewhere other than the TOTP step and
		// returns the CSRF token it would post.
		setup        func(e *env, b *browser, secret string) string
		wantGet      int
		wantLocation string
		wantPost     int
	}{
		{"no cookie", func(e *env, b *browser, _ string) string { return "" }, http.StatusSeeOther, "/login", http.StatusBadRequest},
		{"password step", func(e *env, b *browser, _ string) string {
			return csrfToken(e.t, b.get("/login?auth_request=ar-1").body)
		}, http.StatusSeeOther, "/login?auth_request=ar-1", http.StatusForbidden},
		{"wrong password", func(e *env, b *browser, _ string) string {
			b.passwordStep("alice", "nope")
			ls, _ := b.session()
			return ls.CSRFToken
		}, http.StatusSeeOther, "/login", http.StatusForbidden},
		{"already done", func(e *env, b *browser, secret string) string {
			b.mustPass("alice", "pw-alice-1")
			b.codeStep(codeAt(e.t, secret, e.clock.Now()))
			ls, _ := b.session()
			return ls.CSRFToken
		}, http.StatusSeeOther, "/login", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addAuthRequest("ar-1", url.Values{})
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			csrf := tc.setup(e, b, secret)
			before, beforeErr := b.session()
			lastStep := e.user(alice.ID).TOTPLastStep

			p := b.get("/login/totp")
			if p.status != tc.wantGet || p.location() != tc.wantLocation {
				t.Errorf("GET: got %d to %q, want %d to %q", p.status, p.location(), tc.wantGet, tc.wantLocation)
			}
			if strings.Contains(p.body, "otpauth") {
				t.Errorf("GET: page shows enrolment material")
			}
			e.clock.Add(30 * time.Second)
			p = b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {codeAt(t, secret, e.clock.Now())}})
			if p.status != tc.wantPost {
				t.Errorf("POST: got status %d, want %d", p.status, tc.wantPost)
			}
			if len(p.cookies) != 0 {
				t.Errorf("POST: got cookies %v, want none", p.cookies)
			}
			after, afterErr := b.session()
			if (beforeErr == nil) != (afterErr == nil) || before.State != after.State {
				t.Errorf("session changed: before %+v (%v), after %+v (%v)", before, beforeErr, after, afterErr)
			}
			if got := e.user(alice.ID).TOTPLastStep; got != lastStep {
				t.Errorf("got last TOTP step %d, want %d (unchanged)", got, lastStep)
			}
		})
	}
}

func TestTOTPFormCSRF(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token func(real string) string
	}{
		{"missing", func(string) string { return "" }},
		{"wrong", func(real string) string { return forge(real) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			cookie := b.cookie
			real := csrfToken(t, b.get("/login/totp").body)
			p := b.post("/login/totp", url.Values{"csrf_token": {tc.token(real)}, "code": {codeAt(t, secret, e.clock.Now())}})
			if p.status != http.StatusForbidden || !strings.Contains(p.body, html.EscapeString(en("login.bad_csrf"))) {
				t.Errorf("got %d, want 403 with %q", p.status, en("login.bad_csrf"))
			}
			if ls, err := b.session(); err != nil || ls.State != storage.StateTOTP || b.cookie != cookie {
				t.Errorf("got session %+v, %v; want it unchanged in state totp", ls, err)
			}
			if got := e.user(alice.ID).TOTPLastStep; got != 0 {
				t.Errorf("got last TOTP step %d, want 0 (code not consumed)", got)
			}
		})
	}
}

func TestDisabledUserRefusedAtTOTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		// disable disables the user some way.
		disable      func(e *env, id string)
		wantGet      int
		wantLocation string
		wantPost     int
	}{
		{"SetUserDisabled, which ends sessions", func(e *env, id string) {
			if err := e.store.SetUserDisabled(context.Background(), id, true); err != nil {
				e.t.Fatal(err)
			}
		}, http.StatusSeeOther, "/login", http.StatusBadRequest},
		{"disabled flag only", func(e *env, id string) {
			if _, err := e.store.DB().Exec(`UPDATE users SET disabled = ? WHERE id = ?`, true, id); err != nil {
				e.t.Fatal(err)
			}
		}, http.StatusForbidden, "", http.StatusForbidden},
	} {
		for _, enrolled := range []bool{false, true} {
			name := tc.name + map[bool]string{false: ", enrolling", true: ", enrolled"}[enrolled]
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				var secret string
				alice := e.addUser("alice", "pw-alice-1")
				if enrolled {
					if err := e.store.ConfirmTOTP(context.Background(), alice.ID, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 0, nil); err != nil {
						t.Fatal(err)
					}
					secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
				}
				// b posts a code after the user is disabled; b2 only loads
				// the page.
				b, b2 := e.browser(), e.browser()
				b.mustPass("alice", "pw-alice-1")
				b2.mustPass("alice", "pw-alice-1")
				p := b.get("/login/totp")
				if !enrolled {
					secret = parseEnrolment(t, p.body).uri.Query().Get("secret")
				}
				csrf := csrfToken(t, p.body)
				ids := []string{sessionID(b.cookie), sessionID(b2.cookie)}

				tc.disable(e, alice.ID)
				post := b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {codeAt(t, secret, e.clock.Now())}})
				if post.status != tc.wantPost {
					t.Errorf("POST: got status %d, want %d", post.status, tc.wantPost)
				}
				get := b2.get("/login/totp")
				if get.status != tc.wantGet || get.location() != tc.wantLocation {
					t.Errorf("GET: got %d to %q, want %d to %q", get.status, get.location(), tc.wantGet, tc.wantLocation)
				}
				for _, p := range []page{post, get} {
					if p.status == http.StatusForbidden && !strings.Contains(p.body, en("login.account_disabled")) {
						t.Errorf("page lacks %q", en("login.account_disabled"))
					}
				}
				for i, br := range []*browser{b, b2} {
					if _, err := e.h.Current(br.request()); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("Current: got %v, want ErrNotFound", err)
					}
					if _, err := e.store.GetLoginSession(context.Background(), ids[i]); !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("session after refusal: got %v, want ErrNotFound", err)
					}
				}
				u := e.user(alice.ID)
				if u.HasTOTP() != enrolled || u.TOTPLastStep != 0 {
					t.Errorf("got HasTOTP %v last step %d, want %v and 0 (nothing consumed)", u.HasTOTP(), u.TOTPLastStep, enrolled)
				}
			})
		}
	}
}

func TestEnrolmentNeedsShownSecret(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", "pw-alice-1")
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	ls, err := b.session()
	if err != nil {
		t.Fatal(err)
	}
	// Posting before the enrolment page was ever shown: nothing to check.
	p := b.post("/login/totp", url.Values{"csrf_token": {ls.CSRFToken}, "code": {"123456"}})
	if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Errorf("got %d to %q, want 303 to /login/totp", p.status, p.location())
	}
	if e.user(alice.ID).HasTOTP() {
		t.Errorf("user has an authenticator; want none")
	}
}

func TestEnrolmentFlow(t *testing.T) {
	e := newEnv(t)
	alice := e.addUser("alice", "pw-alice-1")
	e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}, "login_hint": {"alice"}})
	b := e.browser()

	p := b.get("/login?auth_request=ar-1")
	c1 := b.cookie
	p = b.post("/login", url.Values{"csrf_token": {csrfToken(t, p.body)}, "username": {"alice"}, "password": {"pw-alice-1"}})
	if p.status != http.StatusSeeOther || p.location() != "/login/totp" {
		t.Fatalf("POST /login: got %d to %q, want 303 to /login/totp", p.status, p.location())
	}
	c2 := b.cookie
	if c2 == "" || c2 == c1 {
		t.Fatalf("cookie after password: got %q, want a new value (was %q)", c2, c1)
	}
	if _, err := e.store.GetLoginSession(context.Background(), sessionID(c1)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session under the old cookie: got %v, want ErrNotFound", err)
	}
	ls, err := b.session()
	if err != nil {
		t.Fatal(err)
	}
	if ls.State != storage.StateTOTP || ls.UserID != alice.ID || !ls.PasswordAt.Equal(t0) || ls.AuthRequestID != "ar-1" {
		t.Errorf("got session %+v, want state totp, user %s, PasswordAt %v, request ar-1", ls, alice.ID, t0)
	}

	p = b.get("/login/totp")
	if p.status != http.StatusOK {
		t.Fatalf("GET /login/totp: got %d, want 200", p.status)
	}
	en := parseEnrolment(t, p.body)
	if en.uri.Scheme != "otpauth" || en.uri.Host != "totp" || en.uri.Path != "/twostep:alice" {
		t.Errorf("got otpauth URI %s, want otpauth://totp/twostep:alice?...", en.uri)
	}
	q := en.uri.Query()
	for k, want := range map[string]string{"issuer": "twostep", "digits": "6", "period": "30", "algorithm": "SHA1"} {
		if got := q.Get(k); got != want {
			t.Errorf("otpauth %s: got %q, want %q", k, got, want)
		}
	}
	if got := strings.ReplaceAll(en.grouped, " ", ""); got != q.Get("secret") || len(got) != 32 {
		t.Errorf("grouped secret %q: got %q, want the URI's 32-character secret %q", en.grouped, got, q.Get("secret"))
	}
	secret := q.Get("secret")
	if e.user(alice.ID).HasTOTP() {
		t.Errorf("user has an authenticator before confirming a code; want none")
	}

	// A reload shows the same secret.
	if again := parseEnrolment(t, b.get("/login/totp").body); again.grouped != en.grouped {
		t.Errorf("reload: got secret %q, want %q", again.grouped, en.grouped)
	}

	p = b.post("/login/totp", url.Values{"csrf_token": {csrfToken(t, p.body)}, "code": {codeAt(t, secret, e.clock.Now())}})
	// The recovery codes come first; their page leads on to the request.
	if p.status != http.StatusOK || len(recoveryCodes(p.body)) != 10 {
		t.Fatalf("POST /login/totp: got %d with %d recovery codes, want 200 and 10; body:\n%s", p.status, len(recoveryCodes(p.body)), p.body)
	}
	if want := `<a class="button" href="/oauth2/auth?auth_request=ar-1">`; !strings.Contains(p.body, want) {
		t.Errorf("codes page lacks %s", want)
	}
	c3 := b.cookie
	if c3 == "" || c3 == c2 {
		t.Fatalf("cookie after code: got %q, want a new value (was %q)", c3, c2)
	}
	if u := e.user(alice.ID); u.TOTPSecret != secret || u.TOTPLastStep != t0.Unix()/30 {
		t.Errorf("got secret %q last step %d, want %q and %d", u.TOTPSecret, u.TOTPLastStep, secret, t0.Unix()/30)
	}

	cur, err := e.h.Current(b.request())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	if cur.State != storage.StateDone || cur.UserID != alice.ID || cur.AuthRequestID != "ar-1" {
		t.Errorf("got %+v, want a done session of %s for ar-1", cur, alice.ID)
	}
	if got, want := strings.Join(cur.AMR, " "), "pwd otp mfa"; got != want || cur.ACR != storage.ACRTOTP {
		t.Errorf("got AMR %q, ACR %q; want %q, %q", got, cur.ACR, want, storage.ACRTOTP)
	}
	if got, want := briefEvents(e.audit.take()), []string{
		"login.password success id-alice", "login.totp success id-alice", "totp.enrolled success id-alice",
	}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	if !cur.AuthTime.Equal(t0) || !cur.PasswordAt.Equal(t0) {
		t.Errorf("got AuthTime %v PasswordAt %v, want %v", cur.AuthTime, cur.PasswordAt, t0)
	}
	if want := t0.Add(defaultSessionLifetime); !cur.ExpiresAt.Equal(want) {
		t.Errorf("got ExpiresAt %v, want %v", cur.ExpiresAt, want)
	}
	// The sid names the session to clients: random, and no clue to the
	// cookie (OpenID Connect Back-Channel Logout 1.0 §2.1).
	if len(cur.SID) < 22 || cur.SID == c3 || cur.SID == cur.ID || cur.SID == cur.CSRFToken {
		t.Errorf("got sid %q, want a new random value", cur.SID)
	}
	for _, old := range []string{c1, c2} {
		b2 := &browser{e: e, cookie: old}
		if _, err := e.h.Current(b2.request()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Current with a replaced cookie: got %v, want ErrNotFound", err)
		}
	}
}

type enrolment struct {
	uri     *url.URL
	grouped string
}

var (
	qrRE     = regexp.MustCompile(`<img class="qr" src="data:image/png;base64,([^"]+)"[^>]* alt="([^"]+)"`)
	uriRE    = regexp.MustCompile(`<a href="(otpauth://[^"]+)"`)
	secretRE = regexp.MustCompile(`<code class="secret" id="secret">([^<]+)</code>`)
	groupRE  = regexp.MustCompile(`^[A-Z2-7]{4}( [A-Z2-7]{4})*$`)
)

func TestSecondLoginShowsOnlyCodeField(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	first := e.browser()
	first.mustPass("alice", "pw-alice-1")
	en := parseEnrolment(t, first.get("/login/totp").body)
	secret := en.uri.Query().Get("secret")
	if p := first.codeStep(codeAt(t, secret, e.clock.Now())); p.status != http.StatusOK || len(recoveryCodes(p.body)) != recoveryCodeCount {
		t.Fatalf("enrolment: got %d, want 200 with the recovery codes; body:\n%s", p.status, p.body)
	}

	e.clock.Add(time.Hour)
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	p := b.get("/login/totp")
	if p.status != http.StatusOK {
		t.Fatalf("got %d, want 200", p.status)
	}
	for _, banned := range []string{"<img", "otpauth", "data:image", `class="secret"`, secret, en.grouped, en.grouped[:9]} {
		if strings.Contains(p.body, banned) {
			t.Errorf("returning user's page contains %q; want only the code field", banned)
		}
	}
	for _, want := range []string{
		`<label for="code">`, `name="code"`, `autocomplete="one-time-code"`, `inputmode="numeric"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("code page lacks %s", want)
		}
	}
	// "123 456" must reach the server, which ignores the space.
	for _, banned := range []string{`pattern=`, `maxlength="6"`} {
		if strings.Contains(p.body, banned) {
			t.Errorf("code page has %s, which refuses a code typed with a space", banned)
		}
	}
	// A wrong code re-renders the page without the secret too.
	wrong := b.post("/login/totp", url.Values{"csrf_token": {csrfToken(t, p.body)}, "code": {wrongCode(t, secret, e.clock.Now())}})
	if strings.Contains(wrong.body, "otpauth") || strings.Contains(wrong.body, "<img") {
		t.Errorf("wrong-code page shows enrolment material; want only the code field")
	}
	// Spaces the user typed are ignored.
	code := codeAt(t, secret, e.clock.Now())
	p = b.post("/login/totp", url.Values{"csrf_token": {csrfToken(t, p.body)}, "code": {" " + code[:3] + " " + code[3:] + " "}})
	if !p.signedIn() {
		t.Errorf("code with spaces: got %d to %q, want 303 to %s; body:\n%s", p.status, p.location(), accountPath, p.body)
	}
	if _, err := e.h.Current(b.request()); err != nil {
		t.Errorf("Current: got %v, want the done session", err)
	}
}

func TestLogsAndAuditHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	e.browser().passwordStep("alice", "wrong-pass-xyz")
	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	p := b.get("/login/totp")
	secret := parseEnrolment(t, p.body).uri.Query().Get("secret")
	csrf := csrfToken(t, p.body)
	bad := wrongCode(t, secret, e.clock.Now())
	b.codeStep(bad)
	// A forged form is logged.
	b.post("/login/totp", url.Values{"csrf_token": {"forged"}, "code": {bad}})
	good := codeAt(t, secret, e.clock.Now())
	codes := recoveryCodes(b.post("/login/totp", url.Values{"csrf_token": {csrf}, "code": {good}}).body)
	if len(codes) != 10 {
		t.Fatalf("got %d recovery codes, want 10", len(codes))
	}
	e.clock.Add(30 * time.Second)
	b = e.browser()
	b.mustPass("alice", "pw-alice-1")
	b.recoveryStep(codes[0])

	logs := e.logs.String()
	if !strings.Contains(logs, "request_id=req-test") {
		t.Errorf("logs lack request_id:\n%s", logs)
	}
	evs := e.audit.take()
	if len(evs) < 5 {
		t.Fatalf("got %d audit events, want at least 5: %q", len(evs), briefEvents(evs))
	}
	var audit strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&audit, "%+v\n", ev)
	}
	secrets := append([]string{"pw-alice-1", "wrong-pass-xyz", secret, csrf, bad, good, sessionID(b.cookie), b.cookie}, codes...)
	secrets = append(secrets, strings.ReplaceAll(codes[0], "-", ""))
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the secret value %q:\n%s", s, logs)
		}
		if strings.Contains(audit.String(), s) {
			t.Errorf("audit events contain the secret value %q:\n%s", s, audit.String())
		}
	}
}
