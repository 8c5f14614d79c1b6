package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
)

// The attacks on the second factor, each tried end to end against a real
// server with a cookie-jar client, on every database.

// securityArgs turn on remembered devices and make the password lock come
// early: a delay after 2 wrong passwords, a lock for an hour at the 3rd.
var securityArgs = []string{
	"--remember-device", "720h",
	"--login-backoff-after", "2", "--login-lock-after", "3", "--login-lock-for", "1h",
}

func TestSecondFactorAttacks(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, database string, getenv func(string) string) {
		in := startServer(t, database, getenv, securityArgs...)
		rp := newRelyingParty(t, in)
		t.Run("skip the code step", func(t *testing.T) { testSkipCodeStep(t, in, rp) })
		t.Run("missing CSRF token", func(t *testing.T) { testMissingCSRF(t, in, rp) })
		t.Run("session id changes after each factor", func(t *testing.T) { testSessionRotation(t, in, rp) })
		t.Run("same code twice", func(t *testing.T) { testSameCodeTwice(t, in, rp) })
		t.Run("wrong codes void the login", func(t *testing.T) { testWrongCodesVoidLogin(t, in, rp) })
		t.Run("100 wrong codes lock the account", func(t *testing.T) { testCodeLockout(t, in, rp) })
		t.Run("password lockout and unlock", func(t *testing.T) { testPasswordLockout(t, in, rp) })
		t.Run("recovery code", func(t *testing.T) { testRecoveryCode(t, in, rp) })
		t.Run("remembered device", func(t *testing.T) { testRememberedDevice(t, in, rp) })
		t.Run("secret encrypted at rest", func(t *testing.T) { testSecretAtRest(t, in, rp) })
	})
}

// passwordStep starts a login for a new authorization request in b and
// gives the password; it returns the page that follows.
func passwordStep(t *testing.T, b *browser, rp *relyingParty, user string, opts ...oauth2.AuthCodeOption) (page, authRequest) {
	t.Helper()
	ar := rp.newAuthRequest(opts...)
	p := b.get(ar.url)
	if p.url.Path != "/login" {
		t.Fatalf("%s: authorize: got %s, want the /login page", user, p)
	}
	return b.submit(p, map[string]string{"username": user, "password": racePassword}), ar
}

// codePage is passwordStep in a new browser, which must reach the code
// page.
func codePage(t *testing.T, rp *relyingParty, user string) (*browser, page, authRequest) {
	t.Helper()
	b := newBrowser(t, testRedirect)
	p, ar := passwordStep(t, b, rp, user)
	if p.url.Path != "/login/totp" {
		t.Fatalf("%s: after the password: got %s, want /login/totp\n%s", user, p, p.body)
	}
	return b, p, ar
}

// idTokenClaims exchanges the code p carries and returns the ID token's
// amr and acr.
func idTokenClaims(t *testing.T, rp *relyingParty, p page, ar authRequest) (amr []string, acr string) {
	t.Helper()
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("got %s (Location %q), want a code\n%s", p, p.header.Get("Location"), p.body)
	}
	tok, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var claims struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	if err := verifyIDToken(t, rp, tok, ar).Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims.AMR, claims.ACR
}

// postRaw posts form to path with b's cookies, as a forged or replayed
// request would, and returns the page.
func postRaw(t *testing.T, b *browser, u string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func testSkipCodeStep(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "skipper", racePassword)
	enrol(t, rp, "skipper")
	b, _, ar := codePage(t, rp, "skipper")
	// Straight to the pages after the code step, by URL.
	for _, u := range []string{in.issuer + "/oauth2/auth?auth_request=x", in.issuer + "/consent?auth_request=x", in.issuer + "/userinfo"} {
		if p := b.get(u); hasCode(t, p, ar) || p.status == http.StatusOK && strings.Contains(p.body, `"sub"`) {
			t.Errorf("GET %s after only the password: got %s, want no code and no user data", u, p)
		}
	}
	// A second authorization request restarts the login.
	ar2 := rp.newAuthRequest()
	if p := b.get(ar2.url); p.url.Path != "/login" {
		t.Errorf("second authorize after only the password: got %s, want /login", p)
	}
	// The code step of a browser that has no password step refuses.
	fresh := newBrowser(t, testRedirect)
	if p := postRaw(t, fresh, in.issuer+"/login/totp", url.Values{"code": {"123456"}}); p.status < 400 {
		t.Errorf("POST /login/totp without a login session: got %s, want an error page", p)
	}
	if p := fresh.get(in.issuer + "/login/recovery"); p.url.Path != "/login" {
		t.Errorf("GET /login/recovery without a login session: got %s, want /login", p)
	}
}

func testMissingCSRF(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "forged", racePassword)
	e := enrol(t, rp, "forged")

	b := newBrowser(t, testRedirect)
	p := b.get(rp.newAuthRequest().url)
	if got := postRaw(t, b, in.issuer+"/login", url.Values{"username": {"forged"}, "password": {racePassword}}); got.status != http.StatusForbidden {
		t.Errorf("POST /login without csrf_token: got %s, want 403", got)
	}
	p = b.submit(p, map[string]string{"username": "forged", "password": racePassword})
	if p.url.Path != "/login/totp" {
		t.Fatalf("after the password: got %s", p)
	}
	code := laterCode(t, e.key, e.step)
	for _, path := range []string{"/login/totp", "/login/recovery"} {
		if got := postRaw(t, b, in.issuer+path, url.Values{"code": {code}}); got.status != http.StatusForbidden {
			t.Errorf("POST %s without csrf_token: got %s, want 403", path, got)
		}
	}
	// Nothing changed: the real form still works with the same code.
	if p = b.submit(p, map[string]string{"code": code}); p.url.Path == "/login/totp" {
		t.Errorf("the code after forged posts: got %s, want it accepted\n%s", p, p.body)
	}
}

// sessionCookie returns the browser's login-session cookie value.
func sessionCookie(t *testing.T, b *browser, issuer string) string {
	t.Helper()
	u, _ := url.Parse(issuer + "/")
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == login.CookieName {
			return c.Value
		}
	}
	return ""
}

func testSessionRotation(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "rotator", racePassword)
	e := enrol(t, rp, "rotator")
	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := b.get(ar.url)
	first := sessionCookie(t, b, in.issuer)
	p = b.submit(p, map[string]string{"username": "rotator", "password": racePassword})
	second := sessionCookie(t, b, in.issuer)
	p = b.submit(p, map[string]string{"code": laterCode(t, e.key, e.step)})
	third := sessionCookie(t, b, in.issuer)
	if !hasCode(t, p, ar) {
		t.Fatalf("login: got %s, want a code", p)
	}
	if first == "" || first == second || second == third || first == third {
		t.Errorf("session cookie across the steps: %q, %q, %q; want three different values", first, second, third)
	}
}

func testSameCodeTwice(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "replayer", racePassword)
	e := enrol(t, rp, "replayer")
	code := laterCode(t, e.key, e.step)

	// Sequentially: the second browser gets "already used".
	b1, p1, ar1 := codePage(t, rp, "replayer")
	if p := b1.submit(p1, map[string]string{"code": code}); !hasCode(t, p, ar1) {
		t.Fatalf("first use of the code: got %s, want a code", p)
	}
	b2, p2, _ := codePage(t, rp, "replayer")
	if p := b2.submit(p2, map[string]string{"code": code}); p.url.Path != "/login/totp" || !strings.Contains(p.body, "already used") {
		t.Errorf("second use of the code: got %s, want the code refused as already used\n%s", p, p.body)
	}

	// From 10 goroutines of one browser at once: exactly one wins. (A
	// second user, whose next code is still unused.)
	addUser(t, in, "replayer2", racePassword)
	e2 := enrol(t, rp, "replayer2")
	next := laterCode(t, e2.key, e2.step)
	b, p, _ := codePage(t, rp, "replayer2")
	action, csrf := codeForm(t, p)
	stop := *b.client
	stop.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	const n = 10
	statuses := make([]int, n)
	locs := make([]string, n)
	together(n, func(i int) {
		form := url.Values{"csrf_token": {csrf}, "code": {next}}
		resp, err := stop.PostForm(action, form)
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
			return
		}
		resp.Body.Close()
		statuses[i], locs[i] = resp.StatusCode, resp.Header.Get("Location")
	})
	wins := 0
	for i := range n {
		if statuses[i] == http.StatusSeeOther && strings.HasPrefix(locs[i], "/oauth2/auth?") {
			wins++
		} else if statuses[i] < 400 || statuses[i] >= 500 {
			// 422 already used, 429 the login's attempts spent, or 400 when
			// the winner replaced the session first.
			t.Errorf("goroutine %d: got %d %q, want 303 to /oauth2/auth or a 4xx refusal", i, statuses[i], locs[i])
		}
	}
	if wins != 1 {
		t.Errorf("one code from %d goroutines at once: %d won, want exactly 1 (statuses %v)", n, wins, statuses)
	}
}

func testWrongCodesVoidLogin(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "guesser", racePassword)
	e := enrol(t, rp, "guesser")
	b, p, _ := codePage(t, rp, "guesser")
	wrong := wrongCode(t, e)
	for i := 1; i <= 4; i++ {
		p = b.submit(p, map[string]string{"code": wrong})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "not right") {
			t.Fatalf("wrong code %d: got %s, want 422 with the code refused\n%s", i, p, p.body)
		}
	}
	spent := b.submit(p, map[string]string{"code": wrong})
	if spent.status != http.StatusTooManyRequests || !strings.Contains(spent.body, "Start again with your password") {
		t.Fatalf("5th wrong code: got %s, want 429 and the login voided\n%s", spent, spent.body)
	}
	// The 6th attempt is refused even with the right code.
	right := laterCode(t, e.key, e.step)
	if got := b.submit(p, map[string]string{"code": right}); got.status != http.StatusTooManyRequests {
		t.Errorf("right code after 5 wrong ones: got %s, want 429", got)
	}
	if got := b.get(in.issuer + "/login/totp"); !strings.Contains(got.body, "Start again with your password") {
		t.Errorf("code page after 5 wrong codes: got %s, want the voided notice", got)
	}
	// Starting again from the password works, with the same right code.
	b2, p2, ar2 := codePage(t, rp, "guesser")
	if got := b2.submit(p2, map[string]string{"code": right}); !hasCode(t, got, ar2) {
		t.Errorf("new login after a voided one: got %s, want a code", got)
	}
}

// wrongCode returns a six-digit code that is none of the codes the server
// accepts now.
func wrongCode(t *testing.T, e enrolment) string {
	t.Helper()
	now := time.Now()
	valid := map[string]bool{}
	for d := -2; d <= 2; d++ {
		valid[codeAt(t, e.key, now.Add(time.Duration(d)*30*time.Second))] = true
	}
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", 100000+i*7919%900000)
		if !valid[c] {
			return c
		}
	}
}

func testCodeLockout(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "locked", racePassword)
	e := enrol(t, rp, "locked")
	wrong := wrongCode(t, e)
	for login := 0; login < 20; login++ {
		b, p, _ := codePage(t, rp, "locked")
		for i := 0; i < 5; i++ {
			p = b.submit(p, map[string]string{"code": wrong})
		}
		if login == 19 && (p.status != http.StatusForbidden || !strings.Contains(p.body, "locked")) {
			t.Fatalf("100th wrong code: got %s, want 403 and the account locked\n%s", p, p.body)
		}
	}
	b := newBrowser(t, testRedirect)
	p, _ := passwordStep(t, b, rp, "locked")
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "locked") {
		t.Fatalf("right password of a locked account: got %s, want 403 saying it is locked\n%s", p, p.body)
	}
	if out, err := in.cli(t, "", "user", "unlock", "locked"); err != nil {
		t.Fatalf("user unlock: %v: %s", err, out)
	}
	b2, p2, ar2 := codePage(t, rp, "locked")
	if got := b2.submit(p2, map[string]string{"code": laterCode(t, e.key, e.step)}); !hasCode(t, got, ar2) {
		t.Errorf("after unlock: got %s, want a code", got)
	}
	audit, err := in.cli(t, "", "audit", "--user", "locked")
	if err != nil || !strings.Contains(audit, "account.locked") || !strings.Contains(audit, "admin.user.unlock") {
		t.Errorf("audit --user locked: got %v\n%s\nwant account.locked and admin.user.unlock", err, audit)
	}
}

func testPasswordLockout(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "target", racePassword)
	attempt := func(password string) page {
		b := newBrowser(t, testRedirect)
		p := b.get(rp.newAuthRequest().url)
		return b.submit(p, map[string]string{"username": "target", "password": password})
	}
	for i := 1; i <= 2; i++ {
		if p := attempt("wrong password"); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password %d: got %s, want 422", i, p)
		}
	}
	// After 2 failures the next attempt waits a second.
	if p := attempt(racePassword); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("attempt during the back-off: got %s (Retry-After %q), want 429 with Retry-After", p, p.header.Get("Retry-After"))
	}
	time.Sleep(1100 * time.Millisecond)
	if p := attempt("wrong password"); p.status != http.StatusUnprocessableEntity {
		t.Fatalf("3rd wrong password: got %s, want 422", p)
	}
	// The 3rd failure locks the username for an hour: the right password
	// is refused too, and an unknown name is refused the same way.
	locked := attempt(racePassword)
	if locked.status != http.StatusTooManyRequests || !strings.Contains(locked.body, "Wait 60 minutes") {
		t.Fatalf("right password while locked: got %s, want 429 asking to wait an hour\n%s", locked, locked.body)
	}
	if out, err := in.cli(t, "", "user", "unlock", "target"); err != nil {
		t.Fatalf("user unlock: %v: %s", err, out)
	}
	if p := attempt(racePassword); p.url.Path != "/login/totp" {
		t.Errorf("right password after unlock: got %s, want /login/totp", p)
	}
}

func testRecoveryCode(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "lostphone", racePassword)
	e := enrol(t, rp, "lostphone")
	use := func(code string) (*browser, page, authRequest) {
		b, p, ar := codePage(t, rp, "lostphone")
		if !strings.Contains(p.body, `href="/login/recovery"`) {
			t.Fatalf("code page has no recovery link:\n%s", p.body)
		}
		p = b.get(in.issuer + "/login/recovery")
		return b, b.submit(p, map[string]string{"code": code}), ar
	}
	b, p, ar := use(strings.ToUpper(e.recovery[3])) // typed in capitals
	if p.status != http.StatusOK || !strings.Contains(p.body, "9 recovery codes left") {
		t.Fatalf("recovery code: got %s, want a page saying 9 are left\n%s", p, p.body)
	}
	m := continuePattern.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("recovery notice has no continue link:\n%s", p.body)
	}
	amr, acr := idTokenClaims(t, rp, b.get(in.issuer+strings.ReplaceAll(m[1], "&amp;", "&")), ar)
	if has(amr, "otp") || !has(amr, "pwd") || !has(amr, "mfa") {
		t.Errorf("amr after a recovery code: got %v, want pwd and mfa without otp", amr)
	}
	if acr != storage.ACRRecoveryCode {
		t.Errorf("acr after a recovery code: got %q, want %q", acr, storage.ACRRecoveryCode)
	}
	if _, p, _ := use(e.recovery[3]); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "already used") {
		t.Errorf("the same recovery code again: got %s, want it refused\n%s", p, p.body)
	}
}

// deviceCookie moves b's remembered-device cookie, and nothing else, into
// a new browser.
func deviceCookie(t *testing.T, b *browser, issuer string) *browser {
	t.Helper()
	u, _ := url.Parse(issuer + "/login")
	nb := newBrowser(t, testRedirect)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == login.DeviceCookieName {
			nb.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/login"}})
			return nb
		}
	}
	t.Fatalf("no %s cookie for %s", login.DeviceCookieName, u)
	return nil
}

func testRememberedDevice(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "laptop", racePassword)
	e := enrol(t, rp, "laptop")
	b, p, ar := codePage(t, rp, "laptop")
	if !strings.Contains(p.body, `name="remember"`) {
		t.Fatalf("code page has no remember checkbox:\n%s", p.body)
	}
	p = b.submit(p, map[string]string{"code": laterCode(t, e.key, e.step), "remember": "1"})
	if !hasCode(t, p, ar) {
		t.Fatalf("code with remember: got %s, want a code", p)
	}

	// A new login from the remembered browser skips the code step, and
	// its ID token does not claim otp.
	remembered := deviceCookie(t, b, in.issuer)
	p, ar = passwordStep(t, remembered, rp, "laptop")
	amr, acr := idTokenClaims(t, rp, p, ar)
	if has(amr, "otp") || has(amr, "mfa") || !has(amr, "pwd") || acr != storage.ACRRememberedDevice {
		t.Errorf("remembered login: got amr %v acr %q, want [pwd] and %q", amr, acr, storage.ACRRememberedDevice)
	}
	// A client asking for a fresh login, or for the TOTP class, gets the
	// code step anyway.
	for _, opt := range []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("acr_values", storage.ACRTOTP),
		oauth2.SetAuthURLParam("max_age", "0"),
	} {
		if p, _ := passwordStep(t, deviceCookie(t, b, in.issuer), rp, "laptop", opt); p.url.Path != "/login/totp" {
			t.Errorf("remembered browser with %v: got %s, want /login/totp", opt, p)
		}
	}
	// Another user on the same browser is not remembered.
	addUser(t, in, "colleague", racePassword)
	enrol(t, rp, "colleague")
	if p, _ := passwordStep(t, deviceCookie(t, b, in.issuer), rp, "colleague"); p.url.Path != "/login/totp" {
		t.Errorf("another user on a remembered browser: got %s, want /login/totp", p)
	}
	// The device is listed, and reset-totp revokes it.
	out, err := in.cli(t, "", "user", "devices", "laptop")
	if err != nil || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("user devices laptop: got %v\n%s\nwant the device listed with its address", err, out)
	}
	if out, err := in.cli(t, "", "user", "reset-totp", "laptop"); err != nil {
		t.Fatalf("reset-totp: %v: %s", err, out)
	}
	if p, _ := passwordStep(t, deviceCookie(t, b, in.issuer), rp, "laptop"); p.url.Path != "/login/totp" || otpauthURI(p.body) == "" {
		t.Errorf("remembered browser after reset-totp: got %s, want the enrolment page", p)
	}
}

// openRaw opens the instance's database without twostep, as an attacker
// with a copy of it would.
func openRaw(t *testing.T, database string) (*sql.DB, string) {
	t.Helper()
	driver, dsn, placeholder := "postgres", database, "$1"
	if path, ok := strings.CutPrefix(database, "sqlite:"); ok {
		driver, dsn, placeholder = "sqlite", path, "?"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, placeholder
}

func testSecretAtRest(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "vault", racePassword)
	e := enrol(t, rp, "vault")
	db, ph := openRaw(t, in.database)
	var sealed []byte
	if err := db.QueryRow(`SELECT totp_secret FROM users WHERE username = `+ph, "vault").Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	secret := e.key.Secret()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) == 0 || bytes.Contains(sealed, []byte(secret)) || bytes.Contains(sealed, raw) ||
		bytes.Contains(bytes.ToUpper(sealed), []byte(secret)) {
		t.Errorf("users.totp_secret holds the secret in the clear: %x", sealed)
	}
	var hashes []string
	rows, err := db.Query(`SELECT code_hash FROM recovery_codes WHERE user_id = (SELECT id FROM users WHERE username = `+ph+`)`, "vault")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if len(hashes) != 10 {
		t.Errorf("recovery codes stored: got %d, want 10", len(hashes))
	}
	for _, h := range hashes {
		for _, c := range e.recovery {
			if strings.Contains(h, strings.ReplaceAll(c, "-", "")) {
				t.Errorf("recovery code %s stored in the clear", c)
			}
		}
	}
}

// TestRotateSecrets: after a new key is put in front of the ring and
// `keys rotate-secrets` re-encrypts, the old key can go and every user still
// logs in.
func TestRotateSecrets(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, database string, _ func(string) string) {
		if database == "" {
			database = "sqlite:" + t.TempDir() + "/twostep.db"
		}
		k1, k2 := "1:"+randomKey(t), "2:"+randomKey(t)
		ring := func(keys string) func(string) string {
			return func(name string) string {
				if name == "TWOSTEP_SECRET_KEYS" {
					return keys
				}
				return ""
			}
		}
		old := startServer(t, database, ring(k1))
		rp := newRelyingParty(t, old)
		users := map[string]enrolment{}
		for _, name := range []string{"ann", "ben"} {
			addUser(t, old, name, racePassword)
			users[name] = enrol(t, rp, name)
		}
		code, ar := newCode(t, users["ann"].b, rp)
		tok, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(ar.verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		old.stop()

		// With the new key in front, a refresh token the old key signed
		// still works.
		mid := startServer(t, database, ring(k2+","+k1))
		if got := postOAuth(http.DefaultClient, tokenURL(mid.issuer), rp.config.ClientID, rp.config.ClientSecret,
			refreshGrant(tok.RefreshToken)); got.status != http.StatusOK {
			t.Errorf("refresh with a token from before the new key: got %s, want 200", got)
		}
		mid.stop()

		both := &instance{database: database, getenv: ring(k2 + "," + k1)}
		out, err := both.cli(t, "", "keys", "rotate-secrets")
		if err != nil || !regexp.MustCompile(`\b4\b`).MatchString(out) {
			t.Fatalf("keys rotate-secrets: got %v\n%s\nwant 4 values re-encrypted (2 TOTP secrets, an RS256 and an ES256 signing key)", err, out)
		}
		if out, err := both.cli(t, "", "keys", "rotate-secrets"); err != nil || !regexp.MustCompile(`\b0\b`).MatchString(out) {
			t.Errorf("second rotate-secrets: got %v\n%s\nwant nothing left to re-encrypt", err, out)
		}

		// Only the new key now: every user logs in, and the ID token,
		// signed by the old signing key, verifies.
		fresh := startServer(t, database, ring(k2))
		rp.config.Endpoint = oauth2.Endpoint{
			AuthURL:   strings.Replace(rp.config.Endpoint.AuthURL, old.issuer, fresh.issuer, 1),
			TokenURL:  strings.Replace(rp.config.Endpoint.TokenURL, old.issuer, fresh.issuer, 1),
			AuthStyle: rp.config.Endpoint.AuthStyle,
		}
		provider, err := gooidc.NewProvider(context.Background(), fresh.issuer)
		if err != nil {
			t.Fatal(err)
		}
		rp.provider, rp.verifier = provider, provider.Verifier(&gooidc.Config{ClientID: rp.config.ClientID})
		for name, e := range users {
			b, p, ar := codePage(t, rp, name)
			p = b.submit(p, map[string]string{"code": laterCode(t, e.key, e.step)})
			if amr, _ := idTokenClaims(t, rp, p, ar); !has(amr, "otp") {
				t.Errorf("%s after rotate-secrets: amr %v, want otp", name, amr)
			}
		}
	})
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
