package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/twostep/twostep/mail/mailtest"
)

// Getting an account and getting back into one, end to end: the real
// server, a real SMTP server that captures the mail, and a browser that
// follows the mailed links.

const (
	testMailFrom = "twostep <login@example.test>"
	// breachedPassword is long enough, and in the list of breached
	// passwords.
	breachedPassword = "password1234"
	breachedMessage  = "This password appears in lists of passwords leaked in data breaches"
)

// startMailServer starts a server that mails through a new capturing SMTP
// server, with registration mode reg.
func startMailServer(t *testing.T, database string, getenv func(string) string, reg string, args ...string) (*instance, *mailtest.Server) {
	t.Helper()
	smtp := mailtest.Start(t, "", "")
	in := startServer(t, database, getenv, append([]string{"--smtp-url", smtp.URL(), "--mail-from", testMailFrom, "--registration", reg}, args...)...)
	return in, smtp
}

// onlyLink returns the one link of a captured mail, after checking that
// the HTML body has it too.
func onlyLink(t *testing.T, m mailtest.Received) string {
	t.Helper()
	links := m.Links()
	if len(links) != 1 {
		t.Fatalf("mail %q has links %q, want one:\n%s", m.Subject, links, m.Text)
	}
	if !strings.Contains(m.HTML, `href="`+html.EscapeString(links[0])+`"`) {
		t.Errorf("mail %q: the HTML body lacks the link %s:\n%s", m.Subject, links[0], m.HTML)
	}
	return links[0]
}

// joinAndEnrol follows a join link in b: it sets password and enrols an
// authenticator, and returns the authenticator's key and the time step
// its first code used.
func joinAndEnrol(t *testing.T, b *browser, link, username, password string) (*otp.Key, int64) {
	t.Helper()
	p := b.get(link)
	if p.status != http.StatusOK || !strings.Contains(p.body, `value="`+html.EscapeString(username)+`" readonly`) {
		t.Fatalf("GET %s: got %s, want the join form for %s:\n%s", link, p, username, p.body)
	}
	p = b.submit(p, map[string]string{"password": password, "confirm": password, "name": "New Person"})
	if p.url.Path != "/login/totp" {
		t.Fatalf("after joining: got %s, want /login/totp:\n%s", p, p.body)
	}
	key, err := otp.NewKeyFromURL(otpauthURI(p.body))
	if err != nil {
		t.Fatalf("enrolment page: %v\n%s", err, p.body)
	}
	if key.AccountName() != username {
		t.Errorf("otpauth account: got %q, want %q", key.AccountName(), username)
	}
	now := time.Now()
	p = b.submit(p, map[string]string{"code": codeAt(t, key, now)})
	b.recoveryCodes(p)
	return key, now.Unix() / 30
}

// signIn runs a whole login to rp in a new browser, with password and a
// code for a step later than after, and returns the ID token's claims.
func signIn(t *testing.T, rp *relyingParty, username, password string, key *otp.Key, after int64) map[string]any {
	t.Helper()
	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := b.submit(b.get(ar.url), map[string]string{"username": username, "password": password})
	if p.url.Path != "/login/totp" {
		t.Fatalf("%s: after the password: got %s, want /login/totp\n%s", username, p, p.body)
	}
	if strings.Contains(p.body, "otpauth://") {
		t.Errorf("%s: a second login shows enrolment material", username)
	}
	// A code is accepted up to one step ahead, and only for a step later
	// than the last one used.
	for time.Now().Unix()/30 < after {
		time.Sleep(time.Second)
	}
	p = b.submit(p, map[string]string{"code": laterCode(t, key, after)})
	if p.url.Path == "/consent" {
		p = b.submit(p, map[string]string{"decision": "allow"})
	}
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("%s: login: got %s (Location %q), want a code\n%s", username, p, p.header.Get("Location"), p.body)
	}
	tok, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var claims map[string]any
	if err := verifyIDToken(t, rp, tok, ar).Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// wrongCodeNow returns a well-formed code that is none of the three key
// accepts now.
func wrongCodeNow(t *testing.T, key *otp.Key) string {
	t.Helper()
	now := time.Now()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != codeAt(t, key, now.Add(-30*time.Second)) && c != codeAt(t, key, now) && c != codeAt(t, key, now.Add(30*time.Second)) {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// passwordAccepted reports whether the password step accepts password for
// username, in a new browser.
func passwordAccepted(t *testing.T, in *instance, username, password string) bool {
	t.Helper()
	b := newBrowser(t, testRedirect)
	p := b.submit(b.get(in.issuer+"/login"), map[string]string{"username": username, "password": password})
	return p.url.Path == "/login/totp"
}

func TestOnboardingInvite(t *testing.T) {
	forEachDatabase(t, testOnboardingInvite)
}

func testOnboardingInvite(t *testing.T, database string, getenv func(string) string) {
	in, smtp := startMailServer(t, database, getenv, "invite")
	rp := newRelyingParty(t, in)
	out, err := in.cli(t, "", "user", "invite", "alice@example.com", "--username", "alice", "--groups", "staff,admins",
		"--issuer", in.issuer, "--smtp-url", smtp.URL(), "--mail-from", testMailFrom)
	if err != nil {
		t.Fatalf("user invite: %v: %s", err, out)
	}
	printed := regexp.MustCompile(`http://\S+/join\?token=\S+`).FindString(out)
	if printed == "" || !strings.Contains(out, "mailed to alice@example.com") || !strings.Contains(out, "invited alice@example.com as alice") {
		t.Fatalf("user invite printed %q, want the link and that it was mailed", out)
	}
	m := smtp.Wait(t, 1)
	if !slices.Equal(m.To, []string{"alice@example.com"}) || m.From != "login@example.test" || m.Subject != "Your invitation to twostep" {
		t.Errorf("invitation: got From %q To %q Subject %q", m.From, m.To, m.Subject)
	}
	link := onlyLink(t, m)
	if link != printed || !strings.HasPrefix(link, in.issuer+"/join?token=") {
		t.Errorf("mailed link %s, want the printed %s on the issuer", link, printed)
	}
	if !strings.Contains(m.Text, "This link works once, until ") || !strings.Contains(m.Text, " UTC.") {
		t.Errorf("invitation does not say until when it works:\n%s", m.Text)
	}
	if out, err := in.cli(t, "", "user", "show", "alice"); err == nil {
		t.Errorf("alice exists before the invitation is followed:\n%s", out)
	}

	// A breached password is refused with a clear message, and spends
	// nothing.
	b := newBrowser(t, testRedirect)
	p := b.get(link)
	p = b.submit(p, map[string]string{"password": breachedPassword, "confirm": breachedPassword})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, breachedMessage) {
		t.Fatalf("breached password at /join: got %s, want 422 saying %q:\n%s", p, breachedMessage, p.body)
	}

	key, step := joinAndEnrol(t, b, link, "alice", racePassword)
	claims := signIn(t, rp, "alice", racePassword, key, step)
	amr, _ := claims["amr"].([]any)
	if !slices.Contains(amr, any("otp")) || !slices.Contains(amr, any("pwd")) {
		t.Errorf("amr: got %v, want pwd and otp", claims["amr"])
	}
	if claims["preferred_username"] != "alice" || claims["email"] != "alice@example.com" || claims["email_verified"] != true ||
		claims["name"] != "New Person" || !slices.Equal(claims["groups"].([]any), []any{"staff", "admins"}) {
		t.Errorf("claims of the invited user: got %v", claims)
	}

	// The link works once.
	p = newBrowser(t, testRedirect).get(link)
	if p.status != http.StatusNotFound || !strings.Contains(p.body, "This link has expired or was already used") {
		t.Errorf("second use of the invitation: got %s, want 404 saying it was used:\n%s", p, p.body)
	}
	// Inviting a taken username fails with one clear line, and mails
	// nothing.
	if out, err := in.cli(t, "", "user", "invite", "other@example.com", "--username", "alice", "--issuer", in.issuer); err == nil ||
		!strings.Contains(err.Error(), `a user named "alice" already exists`) {
		t.Errorf("invite a taken username: got %v (%q), want a clear error", err, out)
	}
	if out, err := in.cli(t, "", "user", "invite", "not-an-address", "--issuer", in.issuer); err == nil ||
		!strings.Contains(err.Error(), `"not-an-address" is not an email address`) {
		t.Errorf("invite a bad address: got %v (%q), want a clear error", err, out)
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("got %d mails, want 1", n)
	}
	events := mustCLI(t, in, "", "audit", "--json")
	for _, want := range []string{`"event":"user.invited"`, `"event":"user.joined"`} {
		if !strings.Contains(events, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestOnboardingForgotPassword(t *testing.T) {
	forEachDatabase(t, testOnboardingForgotPassword)
}

func testOnboardingForgotPassword(t *testing.T, database string, getenv func(string) string) {
	in, smtp := startMailServer(t, database, getenv, "closed")
	rp := newRelyingParty(t, in)
	addUser(t, in, "bob", racePassword)
	old := enrol(t, rp, "bob")
	const newPassword = "a brand new pass phrase for bob"

	// An address without an account gets the same answer, and no mail.
	ask := func(email string) page {
		b := newBrowser(t, testRedirect)
		login := b.get(in.issuer + "/login")
		m := regexp.MustCompile(`<a href="([^"]+)">Forgot your password\?</a>`).FindStringSubmatch(login.body)
		if m == nil {
			t.Fatalf("login page lacks the forgotten-password link:\n%s", login.body)
		}
		forgot := b.get(in.issuer + html.UnescapeString(m[1]))
		return b.submit(forgot, map[string]string{"email": email})
	}
	unknown := ask("nobody@example.com")
	known := ask("bob@example.com")
	if known.status != http.StatusOK || unknown.status != known.status ||
		strings.ReplaceAll(unknown.body, "nobody@example.com", "bob@example.com") != known.body {
		t.Errorf("answers differ: %s\n%s\nand %s\n%s", known, known.body, unknown, unknown.body)
	}
	m := smtp.Wait(t, 1)
	if !slices.Equal(m.To, []string{"bob@example.com"}) || m.Subject != "Reset your twostep password" {
		t.Fatalf("reset mail: got To %q Subject %q", m.To, m.Subject)
	}
	link := onlyLink(t, m)
	if !strings.HasPrefix(link, in.issuer+"/login/reset?token=") {
		t.Fatalf("reset link %s, want %s/login/reset?token=", link, in.issuer)
	}

	stillOld := func(what string) {
		t.Helper()
		if !passwordAccepted(t, in, "bob", racePassword) || passwordAccepted(t, in, "bob", newPassword) {
			t.Errorf("%s: the password changed", what)
		}
		ar := rp.newAuthRequest()
		if _, ok := codeFrom(t, old.b.get(ar.url), ar); !ok {
			t.Errorf("%s: the old session no longer signs in", what)
		}
	}
	b := newBrowser(t, testRedirect)
	p := b.get(link)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Choose a new password for bob.") {
		t.Fatalf("GET reset link: got %s:\n%s", p, p.body)
	}
	// A breached password is refused with a clear message.
	p = b.submit(p, map[string]string{"password": breachedPassword, "confirm": breachedPassword, "code": laterCode(t, old.key, old.step)})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, breachedMessage) {
		t.Errorf("breached password at /login/reset: got %s, want 422 saying %q", p, breachedMessage)
	}
	// A wrong code changes nothing.
	p = b.submit(p, map[string]string{"password": newPassword, "confirm": newPassword, "code": wrongCodeNow(t, old.key)})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "That code is not right. Your password was not changed") {
		t.Fatalf("wrong code: got %s, want 422 saying the code is wrong:\n%s", p, p.body)
	}
	stillOld("after a wrong code")

	// The right code changes the password and ends the old session.
	resetStep := max(time.Now().Unix()/30, old.step+1)
	p = b.submit(p, map[string]string{"password": newPassword, "confirm": newPassword, "code": codeAt(t, old.key, time.Unix(resetStep*30, 0))})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Your password is changed") {
		t.Fatalf("right code: got %s, want the notice:\n%s", p, p.body)
	}
	ar := rp.newAuthRequest()
	if p := old.b.get(ar.url); p.url.Path != "/login" {
		t.Errorf("the old session after the reset: got %s, want the login page", p)
	}
	if passwordAccepted(t, in, "bob", racePassword) || !passwordAccepted(t, in, "bob", newPassword) {
		t.Errorf("after the reset: the old password works, or the new one does not")
	}

	// The link works once.
	p = newBrowser(t, testRedirect).get(link)
	if p.status != http.StatusNotFound || !strings.Contains(p.body, "expired or was already used") {
		t.Errorf("second use of the reset link: got %s, want 404:\n%s", p, p.body)
	}
	for _, m := range smtp.Messages() {
		if !slices.Equal(m.To, []string{"bob@example.com"}) {
			t.Errorf("mail to %q, want mail only to bob@example.com", m.To)
		}
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("got %d mails, want 1", n)
	}
	events := mustCLI(t, in, "", "audit", "--json", "--user", "bob")
	for _, want := range []string{`"event":"password.reset_link"`, `"event":"password.reset","outcome":"failure"`, `"event":"password.reset","outcome":"success"`} {
		if !strings.Contains(events, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestOnboardingRegister(t *testing.T) {
	forEachDatabase(t, testOnboardingRegister)
}

func testOnboardingRegister(t *testing.T, database string, getenv func(string) string) {
	in, smtp := startMailServer(t, database, getenv, "open")
	rp := newRelyingParty(t, in)
	addUser(t, in, "dave", racePassword)

	register := func(email string) page {
		b := newBrowser(t, testRedirect)
		login := b.get(in.issuer + "/login")
		if !strings.Contains(login.body, `<a href="/register">Create an account</a>`) {
			t.Fatalf("login page with open registration lacks the link to /register:\n%s", login.body)
		}
		return b.submit(b.get(in.issuer+"/register"), map[string]string{"email": email})
	}
	fresh := register("carol@example.com")
	if fresh.status != http.StatusOK || !strings.Contains(fresh.body, "If carol@example.com can be used for a new account") {
		t.Fatalf("register: got %s:\n%s", fresh, fresh.body)
	}
	m := smtp.Wait(t, 1)
	if !slices.Equal(m.To, []string{"carol@example.com"}) || m.Subject != "Create your twostep account" {
		t.Fatalf("registration mail: got To %q Subject %q", m.To, m.Subject)
	}
	// The account does not exist until the link is followed.
	if out, err := in.cli(t, "", "user", "show", "carol@example.com"); err == nil {
		t.Fatalf("the account exists before the address is verified:\n%s", out)
	}
	link := onlyLink(t, m)
	key, step := joinAndEnrol(t, newBrowser(t, testRedirect), link, "carol@example.com", racePassword)
	out := mustCLI(t, in, "", "user", "show", "carol@example.com")
	if showField(out, "email verified:") != "true" {
		t.Errorf("registered user:\n%s", out)
	}
	claims := signIn(t, rp, "carol@example.com", racePassword, key, step)
	if claims["email"] != "carol@example.com" || claims["email_verified"] != true {
		t.Errorf("claims of the registered user: got %v", claims)
	}

	// An address with an account gets the same page, and a mail saying
	// so.
	existing := register("dave@example.com")
	if existing.status != fresh.status || strings.ReplaceAll(existing.body, "dave@example.com", "carol@example.com") != fresh.body {
		t.Errorf("answers differ: %s\n%s\nand %s\n%s", fresh, fresh.body, existing, existing.body)
	}
	m = smtp.Wait(t, 2)
	if !slices.Equal(m.To, []string{"dave@example.com"}) || m.Subject != "Your twostep account" || onlyLink(t, m) != in.issuer+"/login/forgot" {
		t.Errorf("mail to an address with an account: got To %q Subject %q:\n%s", m.To, m.Subject, m.Text)
	}
}

// TestOnboardingAdminInvite: POST /admin/invitations takes the command
// line's code path.
func TestOnboardingAdminInvite(t *testing.T) {
	adminAddr := freeAddr(t)
	getenv := func(k string) string {
		if k == "TWOSTEP_ADMIN_TOKEN" {
			return testAdminToken
		}
		return ""
	}
	in, smtp := startMailServer(t, "", getenv, "invite", "--admin-addr", adminAddr)
	api := adminClientT{t: t, base: "http://" + adminAddr}
	var got struct {
		Username  string    `json:"username"`
		Link      string    `json:"link"`
		ExpiresAt time.Time `json:"expires_at"`
		Mailed    bool      `json:"mailed"`
	}
	api.call("POST", "/admin/invitations", `{"email":"erin@example.com","groups":["staff"],"expires":"1h","lang":"de"}`, http.StatusCreated, &got)
	if got.Username != "erin@example.com" || !got.Mailed || !strings.HasPrefix(got.Link, in.issuer+"/join?token=") ||
		got.ExpiresAt.Before(time.Now().Add(59*time.Minute)) || got.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Errorf("invitation: got %+v, want erin@example.com, mailed, for an hour", got)
	}
	m := smtp.Wait(t, 1)
	if m.Subject != "Ihre Einladung zu twostep" || onlyLink(t, m) != got.Link {
		t.Errorf("mail: got Subject %q, link %q; want the German invitation with %s", m.Subject, m.Links(), got.Link)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"bad address", `{"email":"nope"}`, http.StatusBadRequest},
		{"bad expiry", `{"email":"f@example.com","expires":"soon"}`, http.StatusBadRequest},
		{"expiry too long", `{"email":"f@example.com","expires":"1000h"}`, http.StatusBadRequest},
		{"bad language", `{"email":"f@example.com","lang":"xx"}`, http.StatusBadRequest},
		{"unknown field", `{"email":"f@example.com","admin":true}`, http.StatusBadRequest},
	} {
		status, _, b := api.do("POST", "/admin/invitations", testAdminToken, tc.body)
		var e map[string]string
		if status != tc.want || json.Unmarshal(b, &e) != nil || e["error"] == "" {
			t.Errorf("%s: got %d %s, want %d with a JSON error", tc.name, status, b, tc.want)
		}
	}
	addUser(t, in, "frank", racePassword)
	if status, _, b := api.do("POST", "/admin/invitations", testAdminToken, `{"email":"x@example.com","username":"frank"}`); status != http.StatusConflict {
		t.Errorf("taken username: got %d %s, want 409", status, b)
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("got %d mails, want 1", n)
	}
}

// TestInviteCLI: `user invite` without a server prints the link, says it
// was not mailed, reads TWOSTEP_ISSUER, and refuses bad input with one
// clear line, storing nothing.
func TestInviteCLI(t *testing.T) {
	in := cliInstance(t)
	in.getenv = func(k string) string {
		if k == "TWOSTEP_ISSUER" {
			return "https://id.example.com/"
		}
		return ""
	}
	out := mustCLI(t, in, "", "user", "invite", "gina@example.com", "--expires", "2h")
	if !regexp.MustCompile(`(?m)^https://id\.example\.com/join\?token=[A-Za-z0-9_-]{43}$`).MatchString(out) ||
		!strings.Contains(out, "not mailed (no --smtp-url): give the link to gina@example.com yourself") {
		t.Errorf("user invite printed %q, want the link on the issuer and that it was not mailed", out)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no address", []string{"user", "invite"}, "want 1 argument"},
		{"bad address", []string{"user", "invite", "gina"}, `"gina" is not an email address`},
		{"too long", []string{"user", "invite", "h@example.com", "--expires", "721h"}, "1m to 720h"},
		{"bad language", []string{"user", "invite", "h@example.com", "--lang", "es"}, `"es" is not a language of the pages`},
		{"bad issuer", []string{"user", "invite", "h@example.com", "--issuer", "id.example.com"}, "must be an absolute http(s) URL"},
		{"smtp without from", []string{"user", "invite", "h@example.com", "--smtp-url", "smtp://127.0.0.1:1"}, "--smtp-url needs --mail-from"},
		{"bad smtp url", []string{"user", "invite", "h@example.com", "--smtp-url", "ftp://x", "--mail-from", "a@example.com"}, "scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCLI(in, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got error %v (output %q %q), want one line containing %q", err, out, errOut, tc.wantErr)
			}
		})
	}
	// A relay that is down: the invitation stands, its link is printed,
	// and the exit says that mailing failed.
	out, _, err := runCLI(in, "", "user", "invite", "h@example.com", "--smtp-url", "smtp://127.0.0.1:"+strings.Split(freeAddr(t), ":")[1],
		"--mail-from", testMailFrom)
	if err == nil || !strings.Contains(err.Error(), "the invitation stands, but mailing it failed") || !strings.Contains(out, "/join?token=") {
		t.Errorf("relay down: got %v, %q; want the link printed and an error saying mailing failed", err, out)
	}
	events := mustCLI(t, in, "", "audit", "--json")
	if n := strings.Count(events, `"event":"user.invited"`); n != 2 {
		t.Errorf("audit log has %d user.invited events, want 2:\n%s", n, events)
	}
}
