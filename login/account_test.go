package login

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// signIn logs username in with the password and a code of a time step no
// earlier login used, in a login that serves no application, and returns
// the browser, which the login sent to the account page.
func (e *env) signIn(username, password, secret string) *browser {
	e.t.Helper()
	e.clock.Add(totpPeriod * time.Second)
	b := e.browser()
	b.mustPass(username, password)
	if p := b.codeStep(codeAt(e.t, secret, e.clock.Now())); !p.signedIn() {
		e.t.Fatalf("login of %s: got %d to %q, want 303 to %s; body:\n%s", username, p.status, p.location(), accountPath, p.body)
	}
	return b
}

// accountPost posts form to path with the CSRF token of the browser's
// session, unless form has a csrf_token field already.
func (b *browser) accountPost(path string, form url.Values) page {
	b.e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if _, ok := f["csrf_token"]; !ok {
		f.Set("csrf_token", b.csrf())
	}
	return b.post(path, f)
}

// wantDone checks that p sends the browser back to the account page,
// which then says what the change `what` did.
func (b *browser) wantDone(p page, what, messageKey string) {
	b.e.t.Helper()
	want := accountPath + "?done=" + what
	if p.status != http.StatusSeeOther || p.location() != want {
		b.e.t.Fatalf("got %d to %q, want 303 to %q; body:\n%s", p.status, p.location(), want, p.body)
	}
	if page := b.get(want); !strings.Contains(page.body, `<p class="notice" role="status">`+htmlText(en(messageKey))+`</p>`) {
		b.e.t.Errorf("account page after %s lacks the notice %q:\n%s", what, en(messageKey), page.body)
	}
}

// htmlText is s as html/template writes it in a page's text.
func htmlText(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }

// current returns the browser's done session, or the error Current gives.
func (b *browser) current() (storage.LoginSession, error) { return b.e.h.Current(b.request()) }

// rememberedLogin signs username in from a remembered browser for an
// application, so that the code is skipped, and returns the browser.
func (e *env) rememberedLogin(username, password, secret string) *browser {
	e.t.Helper()
	device := e.remember(username, password, secret)
	e.addAuthRequest("ar-remembered", url.Values{"client_id": {"app"}})
	b := e.browser()
	b.device, b.ar = device, "ar-remembered"
	p := b.passwordStep(username, password)
	if p.status != http.StatusSeeOther || p.location() != "/oauth2/auth?auth_request=ar-remembered" {
		e.t.Fatalf("remembered login: got %d to %q, want it to skip the code", p.status, p.location())
	}
	if ls, err := b.current(); err != nil || ls.ACR != storage.ACRRememberedDevice {
		e.t.Fatalf("remembered login: got ACR %q, %v; want %q", ls.ACR, err, storage.ACRRememberedDevice)
	}
	return b
}

func TestLoginWithoutApplicationEndsAtAccount(t *testing.T) {
	e := newEnv(t)
	secret, codes := e.enrol("alice", "pw-alice-1")
	e.signIn("alice", "pw-alice-1", secret)

	b := e.browser()
	b.mustPass("alice", "pw-alice-1")
	p := b.recoveryStep(codes[0])
	if p.status != http.StatusOK || !strings.Contains(p.body, `<a class="button" href="/account">`) {
		t.Errorf("recovery code without an application: got %d, want the notice leading to /account:\n%s", p.status, p.body)
	}
	if p := b.get(accountPath); p.status != http.StatusOK {
		t.Errorf("account page after a recovery code: got %d, want 200", p.status)
	}
}

func TestAccountNeedsBothFactors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env, secret string) *browser
	}{
		{"no session", func(e *env, _ string) *browser { return e.browser() }},
		{"malformed cookie", func(e *env, _ string) *browser {
			b := e.browser()
			b.cookie = "not-a-token"
			return b
		}},
		{"password step", func(e *env, _ string) *browser {
			b := e.browser()
			b.get("/login")
			return b
		}},
		{"half logged in: the password only", func(e *env, _ string) *browser {
			b := e.browser()
			b.mustPass("alice", "pw-alice-1")
			return b
		}},
		{"code skipped as a remembered device", func(e *env, secret string) *browser {
			return e.rememberedLogin("alice", "pw-alice-1", secret)
		}},
		{"expired session", func(e *env, secret string) *browser {
			b := e.signIn("alice", "pw-alice-1", secret)
			e.clock.Add(defaultSessionLifetime)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := tc.setup(e, secret)
			for _, target := range []string{accountPath, "/account/authenticator"} {
				if p := b.get(target); p.status != http.StatusSeeOther || p.location() != "/login" {
					t.Errorf("GET %s: got %d to %q, want 303 to /login", target, p.status, p.location())
				}
			}
			csrf := ""
			if ls, err := b.session(); err == nil {
				csrf = ls.CSRFToken
			}
			p := b.post("/account/profile", url.Values{"csrf_token": {csrf}, "name": {"Mallory"}})
			if p.status != http.StatusSeeOther || p.location() != "/login" {
				t.Errorf("POST /account/profile: got %d to %q, want 303 to /login", p.status, p.location())
			}
			if got := e.user(alice.ID).Name; got != "" {
				t.Errorf("name after the refused post: got %q, want it unchanged", got)
			}
		})
	}

	t.Run("the login /login starts asks for the code and comes back", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
		_, secret := e.addEnrolledUser("alice", "pw-alice-1")
		b := e.rememberedLogin("alice", "pw-alice-1", secret)
		b.ar = ""
		if p := b.passwordStep("alice", "pw-alice-1"); p.status != http.StatusSeeOther || p.location() != "/login/totp" {
			t.Fatalf("password from the remembered browser, for the account: got %d to %q, want 303 to /login/totp", p.status, p.location())
		}
		e.clock.Add(totpPeriod * time.Second)
		if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
			t.Fatalf("code: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
		}
		if p := b.get(accountPath); p.status != http.StatusOK {
			t.Errorf("account page: got %d, want 200", p.status)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		e := newEnv(t)
		alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
		b := e.signIn("alice", "pw-alice-1", secret)
		id := sessionID(b.cookie)
		// Disabled behind the store's back: SetUserDisabled would end the
		// sessions itself.
		if _, err := e.store.DB().Exec(`UPDATE users SET disabled = ? WHERE id = ?`, true, alice.ID); err != nil {
			t.Fatal(err)
		}
		p := b.get(accountPath)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, htmlText(en("login.account_disabled"))) {
			t.Errorf("got %d, want 403 saying the account cannot sign in:\n%s", p.status, p.body)
		}
		if _, err := e.store.GetLoginSession(context.Background(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session of the disabled user: got %v, want it deleted", err)
		}
		if b.cookie != "" {
			t.Errorf("got cookie %q, want it cleared", b.cookie)
		}
	})
}

// accountState is what the account page's forms can change, to check that
// a refused post changed nothing.
type accountState struct {
	user      storage.User
	codesLeft int
	devices   int
	grants    int
	sessions  int
}

func (e *env) accountState(userID string) accountState {
	e.t.Helper()
	ctx := context.Background()
	devices, err := e.store.ListDevices(ctx, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	grants, err := e.store.ListGrants(ctx, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	sessions, err := e.store.ListUserLoginSessions(ctx, userID)
	if err != nil {
		e.t.Fatal(err)
	}
	return accountState{user: e.user(userID), codesLeft: e.codesLeft(userID), devices: len(devices), grants: len(grants), sessions: len(sessions)}
}

func (s accountState) equal(o accountState) bool {
	u, v := s.user, o.user
	return u.Name == v.Name && u.Email == v.Email && u.EmailVerified == v.EmailVerified && u.PasswordHash == v.PasswordHash &&
		u.TOTPSecret == v.TOTPSecret && u.TOTPLastStep == v.TOTPLastStep && u.FailedCodes == v.FailedCodes &&
		s.codesLeft == o.codesLeft && s.devices == o.devices && s.grants == o.grants && s.sessions == o.sessions
}

// addClient registers a client that users may consent to.
func (e *env) addClient(id, name string) {
	e.t.Helper()
	err := e.store.CreateClient(context.Background(), &storage.Client{
		ID: id, Name: name, RedirectURIs: []string{"https://" + id + ".example/cb"}, BackchannelLogoutURI: "https://" + id + ".example/bc",
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestAccountFormsNeedCSRF(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	secret, _ := e.enrol("alice", "pw-alice-1")
	e.remember("alice", "pw-alice-1", secret)
	e.addClient("app", "App")
	if err := e.store.SaveGrant(context.Background(), "id-alice", "app", []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	other := e.signIn("alice", "pw-alice-1", secret)
	b := e.signIn("alice", "pw-alice-1", secret)
	otherSession, err := other.session()
	if err != nil {
		t.Fatal(err)
	}
	devices, err := e.store.ListDevices(context.Background(), "id-alice")
	if err != nil || len(devices) != 1 {
		t.Fatalf("got devices %v, %v; want one", devices, err)
	}
	e.clock.Add(totpPeriod * time.Second)
	code := codeAt(t, secret, e.clock.Now())
	e.audit.take()
	before := e.accountState("id-alice")

	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/account/profile", url.Values{"name": {"Mallory"}, "email": {"mallory@example.com"}}},
		{"/account/email", url.Values{}},
		{"/account/password", url.Values{"current_password": {"pw-alice-1"}, "code": {code},
			"new_password": {"a fresh passphrase 9"}, "confirm_password": {"a fresh passphrase 9"}}},
		{"/account/authenticator", url.Values{"code": {code}}},
		{"/account/recovery-codes", url.Values{}},
		{"/account/devices/revoke", url.Values{"device": {devices[0].ID}}},
		{"/account/apps/revoke", url.Values{"client_id": {"app"}}},
		{"/account/sessions/revoke", url.Values{"sid": {otherSession.SID}}},
		{"/account/sessions/revoke-all", url.Values{}},
	} {
		for _, token := range []struct{ name, value string }{
			{"missing", ""}, {"forged", forge(b.csrf())}, {"another session's", otherSession.CSRFToken},
		} {
			t.Run(tc.path+"/"+token.name, func(t *testing.T) {
				form := url.Values{}
				for k, v := range tc.form {
					form[k] = v
				}
				if token.value != "" {
					form.Set("csrf_token", token.value)
				}
				p := b.post(tc.path, form)
				if p.status != http.StatusForbidden || !strings.Contains(p.body, htmlText(en("login.bad_csrf"))) {
					t.Errorf("got %d, want 403 with %q:\n%s", p.status, en("login.bad_csrf"), p.body)
				}
				if after := e.accountState("id-alice"); !after.equal(before) {
					t.Errorf("state changed:\ngot  %+v\nwant %+v", after, before)
				}
				if _, err := b.current(); err != nil {
					t.Errorf("this browser's session: got %v, want it kept", err)
				}
				if evs := e.audit.take(); len(evs) != 0 {
					t.Errorf("got events %q, want none", briefEvents(evs))
				}
			})
		}
	}
	if !strings.Contains(e.logs.String(), "csrf token mismatch") {
		t.Errorf("logs lack the CSRF mismatches")
	}
}

func TestAccountOversizedForm(t *testing.T) {
	e := newEnv(t)
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	form := url.Values{"csrf_token": {b.csrf()}, "name": {strings.Repeat("a", maxFormBytes)}}
	req := httptest.NewRequest(http.MethodPost, "/account/profile", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p := b.do(req); p.status != http.StatusBadRequest || !strings.Contains(p.body, htmlText(en("form.unreadable"))) {
		t.Errorf("got %d, want 400 saying the form could not be read", p.status)
	}
	if got := e.user(alice.ID).Name; got != "" {
		t.Errorf("got name of %d bytes, want it unchanged", len(got))
	}
}

func TestAccountPage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	secret, _ := e.enrol("alice", "pw-alice-1")
	e.addEnrolledUser("bob", "pw-bob-1")
	e.addClient("sales", "Sales dashboard")
	ctx := context.Background()
	if err := e.store.SaveGrant(ctx, "id-alice", "sales", []string{"openid", "email"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SaveGrant(ctx, "id-bob", "sales", []string{"openid", "groups"}); err != nil {
		t.Fatal(err)
	}
	e.remember("alice", "pw-alice-1", secret)
	other := e.signIn("alice", "pw-alice-1", secret)
	otherSession, _ := other.session()

	e.clock.Add(totpPeriod * time.Second)
	b := e.browser()
	b.ip = "198.51.100.7"
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	b.do(req)
	b.mustPass("alice", "pw-alice-1")
	if p := b.codeStep(codeAt(t, secret, e.clock.Now())); !p.signedIn() {
		t.Fatalf("login: got %d to %q, want 303 to %s", p.status, p.location(), accountPath)
	}
	mine, _ := b.session()
	if mine.IP != "198.51.100.7" || !strings.Contains(mine.UserAgent, "Firefox/128.0") {
		t.Errorf("session: got IP %q, user agent %q; want where the login started", mine.IP, mine.UserAgent)
	}

	p := b.get(accountPath)
	if p.status != http.StatusOK {
		t.Fatalf("got %d, want 200", p.status)
	}
	for _, want := range []string{
		"Signed in as alice.",
		"Firefox on Linux", "198.51.100.7", `<span class="tag">This browser</span>`,
		`<input type="hidden" name="sid" value="` + otherSession.SID + `">`,
		"<strong>Sales dashboard</strong>", "openid email", `<input type="hidden" name="client_id" value="sales">`,
		"You have 10 unused recovery codes.",
		`<input type="hidden" name="device" value="`, "From 192.0.2.1, remembered on ",
		"Set up on " + accountTime(e.user("id-alice").TOTPConfirmedAt) + ".",
		htmlText(en("account.mail_off")),
		`autocomplete="current-password"`, `autocomplete="new-password"`, `autocomplete="one-time-code"`,
		`<input type="hidden" name="csrf_token" value="` + mine.CSRFToken + `">`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("account page lacks %s", want)
		}
	}
	for _, banned := range []string{
		`value="` + mine.SID + `"`, "groups", e.user("id-alice").TOTPSecret, "<script", " style=",
	} {
		if strings.Contains(p.body, banned) {
			t.Errorf("account page has %q", banned)
		}
	}
	// The enrolment, the remembered login, the other one and this one.
	if got := strings.Count(p.body, `action="/account/sessions/revoke"`); got != 3 {
		t.Errorf("got %d session revoke forms, want 3 (every session but this one)", got)
	}
	if got, want := p.header.Get("Content-Security-Policy"), templates.ContentSecurityPolicy; got != want {
		t.Errorf("got Content-Security-Policy %q, want %q", got, want)
	}

	b.acceptLanguage = "fr"
	if p := b.get(accountPath); !strings.Contains(p.body, `<html lang="fr">`) || !strings.Contains(p.body, "Votre compte") ||
		!strings.Contains(p.body, "Firefox sous Linux") {
		t.Errorf("account page in French lacks its language:\n%s", p.body)
	}
}

func TestDescribeBrowser(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "Chrome on Android"},
		{"curl/8.5.0", "curl/8.5.0"},
		{"", "Unknown browser"},
	} {
		if got := describeBrowser(templates.English, tc.ua); got != tc.want {
			t.Errorf("describeBrowser(%q): got %q, want %q", tc.ua, got, tc.want)
		}
	}
}

func TestAccountRevokesOnlyOwnRows(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	ctx := context.Background()
	_, aliceSecret := e.addEnrolledUser("alice", "pw-alice-1")
	_, bobSecret := e.addEnrolledUser("bob", "pw-bob-1")
	e.addClient("app", "App")
	e.addClient("bobs-app", "Bob's app")
	for _, g := range []struct{ user, client string }{{"id-alice", "app"}, {"id-bob", "app"}, {"id-bob", "bobs-app"}} {
		if err := e.store.SaveGrant(ctx, g.user, g.client, []string{"openid"}); err != nil {
			t.Fatal(err)
		}
	}
	e.remember("alice", "pw-alice-1", aliceSecret)
	e.remember("bob", "pw-bob-1", bobSecret)
	device := func(userID string) string {
		ds, err := e.store.ListDevices(ctx, userID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("devices of %s: got %v, %v; want one", userID, ds, err)
		}
		return ds[0].ID
	}
	aliceDevice, bobDevice := device("id-alice"), device("id-bob")
	bob := e.signIn("bob", "pw-bob-1", bobSecret)
	bobSession, _ := bob.session()
	other := e.signIn("alice", "pw-alice-1", aliceSecret)
	otherSession, _ := other.session()
	b := e.signIn("alice", "pw-alice-1", aliceSecret)
	e.audit.take()

	// Another user's rows, and rows that do not exist, are not found.
	bobBefore := e.accountState("id-bob")
	aliceBefore := e.accountState("id-alice")
	for _, tc := range []struct {
		name, path string
		form       url.Values
		event      string
	}{
		{"bob's device", "/account/devices/revoke", url.Values{"device": {bobDevice}}, "device.revoked failure id-alice"},
		{"bob's app", "/account/apps/revoke", url.Values{"client_id": {"bobs-app"}}, "consent.revoked failure id-alice"},
		{"bob's session", "/account/sessions/revoke", url.Values{"sid": {bobSession.SID}}, "session.revoked failure id-alice"},
		{"no sid", "/account/sessions/revoke", url.Values{"sid": {""}}, "session.revoked failure id-alice"},
		{"no such device", "/account/devices/revoke", url.Values{"device": {"nope"}}, "device.revoked failure id-alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.accountPost(tc.path, tc.form)
			if p.status != http.StatusNotFound || !strings.Contains(p.body, htmlText(en("account.gone"))) {
				t.Errorf("got %d, want 404 with %q:\n%s", p.status, en("account.gone"), p.body)
			}
			if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{tc.event}) {
				t.Errorf("got events %q, want %q", got, tc.event)
			}
		})
	}
	if after := e.accountState("id-bob"); !after.equal(bobBefore) {
		t.Errorf("bob's account changed:\ngot  %+v\nwant %+v", after, bobBefore)
	}
	if after := e.accountState("id-alice"); !after.equal(aliceBefore) {
		t.Errorf("alice's account changed:\ngot  %+v\nwant %+v", after, aliceBefore)
	}
	if _, err := bob.current(); err != nil {
		t.Errorf("bob's session: got %v, want it kept", err)
	}

	// Alice's own rows go.
	b.wantDone(b.accountPost("/account/devices/revoke", url.Values{"device": {aliceDevice}}), "device", "account.done.device")
	if ds, _ := e.store.ListDevices(ctx, "id-alice"); len(ds) != 0 {
		t.Errorf("alice's devices after the revocation: got %v, want none", ds)
	}
	b.wantDone(b.accountPost("/account/apps/revoke", url.Values{"client_id": {"app"}}), "app", "account.done.app")
	if _, err := e.store.GetGrant(ctx, "id-alice", "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice's grant after the revocation: got %v, want ErrNotFound", err)
	}
	if _, err := e.store.GetGrant(ctx, "id-bob", "app"); err != nil {
		t.Errorf("bob's grant for the same app: got %v, want it kept", err)
	}
	b.wantDone(b.accountPost("/account/sessions/revoke", url.Values{"sid": {otherSession.SID}}), "session", "account.done.session")
	if _, err := other.current(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice's other session after the revocation: got %v, want ErrNotFound", err)
	}
	if _, err := b.current(); err != nil {
		t.Errorf("this browser's session: got %v, want it kept", err)
	}
	if got, want := briefEvents(e.audit.take()), []string{"device.revoked success id-alice", "consent.revoked success id-alice",
		"session.revoked success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}

	// Revoking this browser's own session signs it out.
	mine, _ := b.session()
	p := b.accountPost("/account/sessions/revoke", url.Values{"sid": {mine.SID}})
	if p.status != http.StatusOK || !strings.Contains(p.body, en("account.signed_out")) || b.cookie != "" {
		t.Errorf("revoking this session: got %d and cookie %q, want the signed-out page and the cookie cleared", p.status, b.cookie)
	}
	if _, err := e.store.GetLoginSession(ctx, mine.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("this session after revoking it: got %v, want ErrNotFound", err)
	}
	if _, err := bob.current(); err != nil {
		t.Errorf("bob's session at the end: got %v, want it kept", err)
	}
}

func TestAccountSignOutEverywhere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, aliceSecret := e.addEnrolledUser("alice", "pw-alice-1")
	_, bobSecret := e.addEnrolledUser("bob", "pw-bob-1")
	e.addClient("rp", "RP")
	bob := e.signIn("bob", "pw-bob-1", bobSecret)
	other := e.signIn("alice", "pw-alice-1", aliceSecret)
	b := e.signIn("alice", "pw-alice-1", aliceSecret)
	half := e.browser()
	half.mustPass("alice", "pw-alice-1")
	halfSession, _ := half.session()
	var sids []string
	for _, x := range []*browser{other, b, bob} {
		ls, _ := x.session()
		sids = append(sids, ls.SID)
		if err := e.store.AddSessionClient(ctx, storage.SessionClient{SID: ls.SID, ClientID: "rp", UserID: ls.UserID, ExpiresAt: ls.ExpiresAt}); err != nil {
			t.Fatal(err)
		}
	}
	e.audit.take()

	p := b.accountPost("/account/sessions/revoke-all", nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, htmlText(en("account.signed_out_everywhere"))) || !strings.Contains(p.body, `href="/login"`) {
		t.Errorf("got %d, want the signed-out page:\n%s", p.status, p.body)
	}
	if b.cookie != "" {
		t.Errorf("got cookie %q, want it cleared", b.cookie)
	}
	for name, x := range map[string]*browser{"this": b, "other": other} {
		if _, err := x.current(); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("alice's %s session: got %v, want ErrNotFound", name, err)
		}
	}
	if _, err := e.store.GetLoginSession(ctx, halfSession.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice's half-finished login: got %v, want it ended too", err)
	}
	if _, err := bob.current(); err != nil {
		t.Errorf("bob's session: got %v, want it kept", err)
	}
	if got, want := briefEvents(e.audit.take()), []string{"session.revoked_all success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	claimed, err := e.store.ClaimBackchannelLogouts(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range claimed {
		got = append(got, c.SID)
	}
	if want := sids[:2]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("got back-channel logouts for %q, want alice's two sessions %q", got, want)
	}
}
