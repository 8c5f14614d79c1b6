package login

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/mail"
	"github.com/twostep/twostep/storage"
)

// addMailUser creates an enabled user with an address and a confirmed
// authenticator (no recovery codes) and returns its TOTP secret.
func (e *env) addMailUser(username, password, email string) (storage.User, string) {
	e.t.Helper()
	u, secret := e.addEnrolledUser(username, password)
	if err := e.store.UpdateProfile(context.Background(), u.ID, "", email); err != nil {
		e.t.Fatal(err)
	}
	return e.user(u.ID), secret
}

// resetLinkFor asks for a password reset of email through the forgot
// form and returns the link of the one mail that follows.
func (e *env) resetLinkFor(box *outbox, email string) string {
	e.t.Helper()
	if p := e.browser().post("/login/forgot", url.Values{"email": {email}}); p.status != http.StatusOK {
		e.t.Fatalf("POST /login/forgot: got %d, want 200:\n%s", p.status, p.body)
	}
	sent := e.mailed(box)
	if len(sent) != 1 {
		e.t.Fatalf("got %d mails, want 1", len(sent))
	}
	return mailLink(e.t, sent[0])
}

// postReset posts the reset form of link.
func (b *browser) postReset(link, password, code string) page {
	b.e.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.post("/login/reset", url.Values{
		"token": {u.Query().Get("token")}, "password": {password}, "confirm": {password}, "code": {code},
	})
}

// passwordWorks reports whether username's password step accepts
// password.
func (e *env) passwordWorks(username, password string) bool {
	e.t.Helper()
	p := e.browser().passwordStep(username, password)
	return p.status == http.StatusSeeOther && p.location() == "/login/totp"
}

const newPassword = "a brand new pass phrase"

func TestForgotWithoutMail(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "pw-alice-1")
	p := e.browser().get("/login/forgot")
	if p.status != http.StatusOK || !strings.Contains(p.body, en("forgot.no_mail")) || strings.Contains(p.body, "<form") {
		t.Errorf("GET /login/forgot without mail: got %d, want the advice to ask an administrator and no form:\n%s", p.status, p.body)
	}
	p = e.browser().post("/login/forgot", url.Values{"email": {"alice@example.com"}})
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, en("forgot.no_mail")) {
		t.Errorf("POST /login/forgot without mail: got %d, want 503 with the advice", p.status)
	}
	// The login page links to it all the same, keeping the request.
	e.addAuthRequest("ar-1", url.Values{"client_id": {"app"}})
	if p := e.browser().get("/login?auth_request=ar-1"); !strings.Contains(p.body, `<a href="/login/forgot?auth_request=ar-1">Forgot your password?</a>`) {
		t.Errorf("login page lacks the link to /login/forgot?auth_request=ar-1:\n%s", p.body)
	}
	if p := e.browser().get("/login/forgot?auth_request=ar-1"); !strings.Contains(p.body, `<a href="/login?auth_request=ar-1">`) {
		t.Errorf("forgot page does not link back to the login of ar-1:\n%s", p.body)
	}
}

func TestForgotSameAnswer(t *testing.T) {
	ctx := context.Background()
	e, box := newMailEnv(t, RegistrationClosed)
	e.addMailUser("alice", "pw-alice-1", "shared@example.com")
	e.addMailUser("alias", "pw-alias-1", "Shared@Example.com")
	gone, _ := e.addMailUser("gone", "pw-gone-1", "shared@example.com")
	if err := e.store.SetUserDisabled(ctx, gone.ID, true); err != nil {
		t.Fatal(err)
	}
	e.audit.take()

	known := e.sameAnswer("/login/forgot", "shared@example.com", "nobody@example.com")
	if !strings.Contains(known.body, "If an account uses shared@example.com, we have sent it a link") {
		t.Errorf("answer page:\n%s", known.body)
	}
	sent := e.mailed(box)
	// One mail per enabled account with the address; none to the
	// disabled one, none to the unknown address.
	if len(sent) != 2 {
		t.Fatalf("got %d mails, want 2", len(sent))
	}
	slices.SortFunc(sent, func(a, b mail.Message) int { return strings.Compare(a.Text, b.Text) })
	var users []string
	for _, m := range sent {
		if m.Subject != "Reset your twostep password" || !strings.HasPrefix(mailLink(t, m), "/login/reset?token=") {
			t.Errorf("reset mail: got Subject %q:\n%s", m.Subject, m.Text)
		}
		if !strings.Contains(m.Text, "2025-03-14 09:30 UTC") {
			t.Errorf("reset mail does not say the link works for 30 minutes:\n%s", m.Text)
		}
		for _, name := range []string{"alice", "alias"} {
			if strings.Contains(m.Text, "account "+name+".") {
				users = append(users, name+" "+m.To)
			}
		}
	}
	slices.Sort(users)
	if want := []string{"alias Shared@Example.com", "alice shared@example.com"}; !slices.Equal(users, want) {
		t.Errorf("reset mails name and go to %q, want %q", users, want)
	}
	if got := e.audit.count("password.reset_link", "sent"); got != 2 {
		t.Errorf("audit: got %d password.reset_link events, want 2", got)
	}
}

func TestResetWithTOTP(t *testing.T) {
	ctx := context.Background()
	e, box := newMailEnv(t, RegistrationClosed, func(c *Config) { c.RememberDevice = 24 * time.Hour })
	alice, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")

	// Another browser is signed in, and remembered.
	other := e.browser()
	if p := other.passwordAndCode(t, "alice", "pw-alice-1", codeAt(t, secret, e.clock.Now())); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: got %d", p.status)
	}
	if _, err := e.h.Current(other.request()); err != nil {
		t.Fatalf("other browser: %v", err)
	}
	if err := e.store.CreateDevice(ctx, storage.Device{ID: "dev-1", UserID: alice.ID, CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(30 * time.Second)

	link := e.resetLinkFor(box, "alice@example.com")
	token := strings.TrimPrefix(link, "/login/reset?token=")
	b := e.browser()
	for range 2 {
		p := b.get(link)
		if p.status != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200:\n%s", link, p.status, p.body)
		}
		for _, want := range []string{
			`<form method="post" action="/login/reset">`, `name="token" value="` + token + `"`, "Choose a new password for alice.",
			`name="code"`, `autocomplete="new-password"`,
		} {
			if !strings.Contains(p.body, want) {
				t.Errorf("reset page lacks %s", want)
			}
		}
	}

	unchanged := func(what string) {
		t.Helper()
		if !e.passwordWorks("alice", "pw-alice-1") || e.passwordWorks("alice", newPassword) {
			t.Errorf("%s: the password changed", what)
		}
		if _, err := e.h.Current(other.request()); err != nil {
			t.Errorf("%s: the other browser's session ended: %v", what, err)
		}
		if _, err := e.store.GetAccountToken(ctx, storage.PurposeResetPassword, sessionID(token)); err != nil {
			t.Errorf("%s: the link is spent: %v", what, err)
		}
	}
	code := codeAt(t, secret, e.clock.Now())
	for _, tc := range []struct {
		name, password, code string
		field, want          string
	}{
		{"breached", "password1234", code, "password", en("join.password_breached")},
		{"the username", "alice@example.com", code, "password", en("join.password_name")},
		{"no code", newPassword, "", "code", en("reset.code_format")},
		{"malformed code", newPassword, "12345", "code", en("reset.code_format")},
		{"wrong code", newPassword, wrongCode(t, secret, e.clock.Now()), "code", en("reset.bad_code")},
		{"wrong recovery code", newPassword, "aaaa-bbbb-cccc-dddd", "code", en("reset.bad_code")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.postReset(link, tc.password, tc.code)
			if p.status != http.StatusUnprocessableEntity || fieldError(p.body, tc.field) != tc.want {
				t.Errorf("got %d with %s error %q, want 422 with %q", p.status, tc.field, fieldError(p.body, tc.field), tc.want)
			}
			unchanged(tc.name)
		})
	}
	p := b.post("/login/reset", url.Values{"token": {token}, "password": {newPassword}, "confirm": {newPassword + "x"}, "code": {code}})
	if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "confirm") != en("join.password_mismatch") {
		t.Errorf("mismatch: got %d with %q", p.status, fieldError(p.body, "confirm"))
	}
	// Only the two wrong codes counted; the refused forms did not.
	if n, _, _ := e.store.ThrottleFailures(ctx, resetKey(sessionID(token))); n != 2 {
		t.Errorf("link's count of codes: got %d, want 2", n)
	}
	if got := e.user(alice.ID).FailedCodes; got != 2 {
		t.Errorf("account's count of wrong codes: got %d, want 2", got)
	}
	e.audit.take()

	// The right code (the one the refused forms carried: it was never
	// spent) changes the password and ends every session.
	b.cookie = "stale-cookie-of-this-browser"
	p = b.postReset(link, newPassword, code)
	if p.status != http.StatusOK || !strings.Contains(p.body, en("reset.done")) || !strings.Contains(p.body, `<a class="button" href="/login">`) {
		t.Fatalf("right code: got %d, want the notice linking to /login:\n%s", p.status, p.body)
	}
	if b.cookie != "" {
		t.Errorf("this browser's session cookie was not cleared")
	}
	if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{"password.reset success " + alice.ID}) {
		t.Errorf("audit: got %q", got)
	}
	if _, err := e.h.Current(other.request()); err == nil {
		t.Errorf("the other browser is still signed in")
	}
	if devs, _ := e.store.ListDevices(ctx, alice.ID); len(devs) != 0 {
		t.Errorf("remembered devices: got %d, want none", len(devs))
	}
	if u := e.user(alice.ID); u.FailedCodes != 0 {
		t.Errorf("failed codes after the right one: got %d, want 0", u.FailedCodes)
	}
	if e.passwordWorks("alice", "pw-alice-1") || !e.passwordWorks("alice", newPassword) {
		t.Errorf("after the reset: the old password works or the new one does not")
	}

	// The link works once.
	for _, p := range []page{e.browser().get(link), e.browser().postReset(link, "yet another pass phrase", codeAt(t, secret, e.clock.Now().Add(30*time.Second)))} {
		if p.status != http.StatusNotFound || !strings.Contains(p.body, en("reset.link_invalid")) {
			t.Errorf("spent link: got %d, want 404 saying %q", p.status, en("reset.link_invalid"))
		}
	}
	if !e.passwordWorks("alice", newPassword) {
		t.Errorf("the spent link changed the password")
	}
}

func TestResetWithRecoveryCode(t *testing.T) {
	ctx := context.Background()
	e, box := newMailEnv(t, RegistrationClosed)
	_, codes := e.enrol("alice", "pw-alice-1")
	alice, err := e.store.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.UpdateProfile(ctx, alice.ID, "", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	first := e.resetLinkFor(box, "alice@example.com")
	second := e.resetLinkFor(box, "alice@example.com")
	p := e.browser().postReset(second, newPassword, strings.ToUpper(strings.ReplaceAll(codes[3], "-", " ")))
	if p.status != http.StatusOK {
		t.Fatalf("recovery code: got %d, want 200:\n%s", p.status, p.body)
	}
	if left, _ := e.store.RecoveryCodesLeft(ctx, alice.ID); left != recoveryCodeCount-1 {
		t.Errorf("recovery codes left: got %d, want %d", left, recoveryCodeCount-1)
	}
	if !e.passwordWorks("alice", newPassword) {
		t.Errorf("the new password does not work")
	}
	// A reset voids the user's other links.
	if p := e.browser().get(first); p.status != http.StatusNotFound {
		t.Errorf("the other reset link: got %d, want 404", p.status)
	}
	if got := e.audit.count("password.reset", "success"); got != 1 {
		t.Errorf("audit: got %d password.reset successes, want 1", got)
	}
}

func TestResetBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("five wrong codes spend the link", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		alice, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
		link := e.resetLinkFor(box, "alice@example.com")
		wrong := wrongCode(t, secret, e.clock.Now())
		for i := 1; i < maxResetCodes; i++ {
			if p := e.browser().postReset(link, newPassword, wrong); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("wrong code %d: got %d, want 422", i, p.status)
			}
		}
		p := e.browser().postReset(link, newPassword, wrong)
		if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, en("reset.spent")) {
			t.Errorf("wrong code %d: got %d, want 429 saying %q", maxResetCodes, p.status, en("reset.spent"))
		}
		for _, p := range []page{e.browser().get(link), e.browser().postReset(link, newPassword, codeAt(t, secret, e.clock.Now()))} {
			if p.status != http.StatusNotFound {
				t.Errorf("link after %d wrong codes: got %d, want 404", maxResetCodes, p.status)
			}
		}
		if !e.passwordWorks("alice", "pw-alice-1") {
			t.Errorf("the password changed")
		}
		if got := e.user(alice.ID).FailedCodes; got != maxResetCodes {
			t.Errorf("account's wrong codes: got %d, want %d", got, maxResetCodes)
		}
	})
	t.Run("the account lock holds", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		alice, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
		link := e.resetLinkFor(box, "alice@example.com")
		for range MaxAccountCodes - 1 {
			if _, err := e.store.CountCodeFailure(ctx, alice.ID, MaxAccountCodes); err != nil {
				t.Fatal(err)
			}
		}
		p := e.browser().postReset(link, newPassword, wrongCode(t, secret, e.clock.Now()))
		if p.status != http.StatusForbidden || !strings.Contains(p.body, en("login.account_locked")) {
			t.Errorf("the 100th wrong code: got %d, want 403 saying the account is locked", p.status)
		}
		if p := e.browser().postReset(link, newPassword, codeAt(t, secret, e.clock.Now())); p.status != http.StatusForbidden {
			t.Errorf("right code on a locked account: got %d, want 403", p.status)
		}
		// The lock refuses the password step too, so the hash is checked.
		if ok, _ := e.hasher.Verify(e.user(alice.ID).PasswordHash, "pw-alice-1"); !ok {
			t.Errorf("the password changed")
		}
	})
	t.Run("expired", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		_, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
		link := e.resetLinkFor(box, "alice@example.com")
		e.clock.Add(resetLifetime)
		if p := e.browser().postReset(link, newPassword, codeAt(t, secret, e.clock.Now())); p.status != http.StatusNotFound {
			t.Errorf("expired link: got %d, want 404", p.status)
		}
	})
	t.Run("no authenticator", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		bob := e.addUser("bob", "pw-bob-1")
		if err := e.store.UpdateProfile(ctx, bob.ID, "", "bob@example.com"); err != nil {
			t.Fatal(err)
		}
		link := e.resetLinkFor(box, "bob@example.com")
		for _, p := range []page{e.browser().get(link), e.browser().postReset(link, newPassword, "123456")} {
			if p.status != http.StatusForbidden || !strings.Contains(p.body, en("reset.ask_admin")) || strings.Contains(p.body, "<form") {
				t.Errorf("user without an authenticator: got %d, want 403 telling them to ask an administrator", p.status)
			}
		}
		if !e.passwordWorks("bob", "pw-bob-1") {
			t.Errorf("the password changed")
		}
	})
	t.Run("disabled since", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		alice, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
		link := e.resetLinkFor(box, "alice@example.com")
		if err := e.store.SetUserDisabled(ctx, alice.ID, true); err != nil {
			t.Fatal(err)
		}
		if p := e.browser().postReset(link, newPassword, codeAt(t, secret, e.clock.Now())); p.status != http.StatusForbidden {
			t.Errorf("disabled user: got %d, want 403", p.status)
		}
		if ok, _ := e.hasher.Verify(e.user(alice.ID).PasswordHash, "pw-alice-1"); !ok {
			t.Errorf("the password changed")
		}
	})
	t.Run("a replayed code", func(t *testing.T) {
		e, box := newMailEnv(t, RegistrationClosed)
		_, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
		code := codeAt(t, secret, e.clock.Now())
		if p := e.browser().passwordAndCode(t, "alice", "pw-alice-1", code); p.status != http.StatusSeeOther {
			t.Fatalf("sign-in: got %d", p.status)
		}
		link := e.resetLinkFor(box, "alice@example.com")
		p := e.browser().postReset(link, newPassword, code)
		if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != en("totp.code_used") {
			t.Errorf("replayed code: got %d with %q, want 422 with %q", p.status, fieldError(p.body, "code"), en("totp.code_used"))
		}
		if !e.passwordWorks("alice", "pw-alice-1") {
			t.Errorf("the password changed")
		}
	})
}

// TestResetLogsOutApplications: the sessions a reset ends are logged out
// of the applications they signed in to (back-channel logout).
func TestResetLogsOutApplications(t *testing.T) {
	ctx := context.Background()
	e, box := newMailEnv(t, RegistrationClosed)
	alice, secret := e.addMailUser("alice", "pw-alice-1", "alice@example.com")
	other := e.browser()
	other.passwordAndCode(t, "alice", "pw-alice-1", codeAt(t, secret, e.clock.Now()))
	ls, err := e.h.Current(other.request())
	if err != nil || ls.SID == "" {
		t.Fatalf("signed-in session: %+v, %v", ls, err)
	}
	if err := e.store.CreateClient(ctx, &storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"},
		BackchannelLogoutURI: "https://app.example.com/logout"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddSessionClient(ctx, storage.SessionClient{SID: ls.SID, ClientID: "app", UserID: alice.ID, ExpiresAt: ls.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(30 * time.Second)
	link := e.resetLinkFor(box, "alice@example.com")
	if p := e.browser().postReset(link, newPassword, codeAt(t, secret, e.clock.Now())); p.status != http.StatusOK {
		t.Fatalf("reset: got %d:\n%s", p.status, p.body)
	}
	queued, err := e.store.ClaimBackchannelLogouts(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 1 || queued[0].SID != ls.SID || queued[0].ClientID != "app" {
		t.Errorf("queued back-channel logouts: got %+v, want one for app and sid %s", queued, ls.SID)
	}
}
