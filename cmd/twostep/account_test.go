package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
)

// The account page end to end, on every database: what the issue asks
// of it, checked through the real server with cookie-jar browsers.
func TestAccount(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, database string, getenv func(string) string) {
		in := startServer(t, database, getenv)
		rp := newRelyingParty(t, in)
		t.Run("a login without an application ends at the account page", func(t *testing.T) { testAccountLogin(t, in, rp) })
		t.Run("the old authenticator works until the new one verifies", func(t *testing.T) { testReplaceAuthenticator(t, in, rp) })
		t.Run("revoking an app's consent fails its refresh token", func(t *testing.T) { testRevokeApp(t, in, rp) })
		t.Run("sign out everywhere ends another browser's session", func(t *testing.T) { testSignOutEverywhere(t, in, rp) })
	})
}

// accountPage opens the account page in b, which must be signed in.
func accountPage(t *testing.T, b *browser, in *instance) page {
	t.Helper()
	p := b.get(in.issuer + "/account")
	if p.status != http.StatusOK || p.url.Path != "/account" {
		t.Fatalf("account page: got %s, want 200 at /account\n%s", p, p.body)
	}
	return p
}

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// accountCSRF returns the CSRF token of the account page p.
func accountCSRF(t *testing.T, p page) string {
	t.Helper()
	m := csrfFieldRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf_token on the page:\n%s", p.body)
	}
	return m[1]
}

func testAccountLogin(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "self", racePassword)
	e := enrol(t, rp, "self")
	b := newBrowser(t, testRedirect)
	p := b.get(in.issuer + "/account")
	if p.url.Path != "/login" {
		t.Fatalf("account page without a session: got %s, want the /login page", p)
	}
	p = b.submit(p, map[string]string{"username": "self", "password": racePassword})
	if p.url.Path != "/login/totp" {
		t.Fatalf("after the password: got %s, want /login/totp\n%s", p, p.body)
	}
	p = b.submit(p, map[string]string{"code": laterCode(t, e.key, e.step)})
	if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "Signed in as self.") {
		t.Fatalf("after the code: got %s, want the account page\n%s", p, p.body)
	}
}

func testReplaceAuthenticator(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "replacer", racePassword)
	e := enrol(t, rp, "replacer")
	accountPage(t, e.b, in)
	enrolment := e.b.get(in.issuer + "/account/authenticator")
	if enrolment.status != http.StatusOK {
		t.Fatalf("authenticator page: got %s, want 200\n%s", enrolment, enrolment.body)
	}
	newKey, err := otp.NewKeyFromURL(otpauthURI(enrolment.body))
	if err != nil {
		t.Fatalf("authenticator page: %v\n%s", err, enrolment.body)
	}
	if newKey.Secret() == e.key.Secret() {
		t.Fatalf("the new secret is the old one")
	}

	// Before the new one is confirmed, another login uses the old one.
	b, p, ar := codePage(t, rp, "replacer")
	if p = b.submit(p, map[string]string{"code": laterCode(t, e.key, e.step)}); !hasCode(t, p, ar) {
		t.Fatalf("login with the old authenticator before the new one is confirmed: got %s, want a code\n%s", p, p.body)
	}

	// A code from the new secret confirms it.
	now := time.Now()
	p = e.b.submit(enrolment, map[string]string{"code": codeAt(t, newKey, now)})
	if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "Your new authenticator app is set up.") {
		t.Fatalf("confirming the new authenticator: got %s, want the account page saying so\n%s", p, p.body)
	}
	newStep := now.Unix() / 30

	// Now the old authenticator's current code is refused at the login as
	// not right (a code the old secret still matched would be accepted, or
	// refused as already used), and the new one's accepted, in the same
	// login.
	b, p, ar = codePage(t, rp, "replacer")
	p = b.submit(p, map[string]string{"code": codeAt(t, e.key, time.Now())})
	if p.status != http.StatusUnprocessableEntity || hasCode(t, p, ar) || !strings.Contains(p.body, "That code is not right.") {
		t.Fatalf("login with the old authenticator: got %s, want the code refused as not right\n%s", p, p.body)
	}
	if p = b.submit(p, map[string]string{"code": laterCode(t, newKey, newStep)}); !hasCode(t, p, ar) {
		t.Fatalf("login with the new authenticator: got %s, want a code\n%s", p, p.body)
	}
}

func testRevokeApp(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "revoker", racePassword)
	e := enrol(t, rp, "revoker")
	c := http.DefaultClient
	post := func(form url.Values) oauthResult {
		return postOAuth(c, tokenURL(in.issuer), rp.config.ClientID, rp.config.ClientSecret, form)
	}
	code, ar := newCode(t, e.b, rp)
	tokens := post(codeGrant(code, ar))
	if tokens.status != http.StatusOK || tokens.field("refresh_token") == "" {
		t.Fatalf("exchange: got %s, want tokens with a refresh token (offline_access)", tokens)
	}
	// The refresh token works until the consent is revoked.
	tokens = post(refreshGrant(tokens.field("refresh_token")))
	if tokens.status != http.StatusOK || tokens.field("refresh_token") == "" {
		t.Fatalf("refresh: got %s, want new tokens", tokens)
	}

	p := accountPage(t, e.b, in)
	if !strings.Contains(p.body, "<strong>Test App</strong>") {
		t.Fatalf("account page does not list the app:\n%s", p.body)
	}
	p = e.b.submit(p, map[string]string{"client_id": rp.config.ClientID})
	if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "Access revoked.") || strings.Contains(p.body, "<strong>Test App</strong>") {
		t.Fatalf("revoking the app: got %s, want the account page without it\n%s", p, p.body)
	}

	if got := post(refreshGrant(tokens.field("refresh_token"))); got.status != http.StatusBadRequest || got.field("error") != "invalid_grant" {
		t.Errorf("refresh after the revocation: got %s, want 400 invalid_grant", got)
	}
	if got := getBearer(c, in.issuer+"/userinfo", tokens.field("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("access token after the revocation: got %s, want 401", got)
	}
	// The next authorization asks for consent again.
	ar = rp.newAuthRequest()
	if p := e.b.get(ar.url); p.url.Path != "/consent" {
		t.Errorf("authorization after the revocation: got %s, want the consent page", p)
	}
}

func testSignOutEverywhere(t *testing.T, in *instance, rp *relyingParty) {
	addUser(t, in, "everywhere", racePassword)
	e := enrol(t, rp, "everywhere")
	other, p, ar := codePage(t, rp, "everywhere")
	if p = other.submit(p, map[string]string{"code": laterCode(t, e.key, e.step)}); !hasCode(t, p, ar) {
		t.Fatalf("login in another browser: got %s, want a code\n%s", p, p.body)
	}
	newCode(t, other, rp) // signed in: no login page

	p = accountPage(t, e.b, in)
	if strings.Count(p.body, `action="/account/sessions/revoke"`) != 1 {
		t.Errorf("account page: want one other session to revoke\n%s", p.body)
	}
	p = postRaw(t, e.b, in.issuer+"/account/sessions/revoke-all", url.Values{"csrf_token": {accountCSRF(t, p)}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out everywhere") {
		t.Fatalf("sign out everywhere: got %s, want the signed-out page\n%s", p, p.body)
	}
	for name, b := range map[string]*browser{"this browser": e.b, "the other browser": other} {
		if p := b.get(in.issuer + "/account"); p.url.Path != "/login" {
			t.Errorf("%s's account page: got %s, want the /login page", name, p)
		}
		ar := rp.newAuthRequest()
		if p := b.get(ar.url); p.url.Path != "/login" || hasCode(t, p, ar) {
			t.Errorf("%s's next authorization: got %s, want the /login page", name, p)
		}
	}
}
