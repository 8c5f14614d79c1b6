package login

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

func TestAccountReplaceTOTP(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	ctx := context.Background()
	oldSecret, _ := e.enrol("alice", "pw-alice-1")
	e.remember("alice", "pw-alice-1", oldSecret)
	b := e.signIn("alice", "pw-alice-1", oldSecret)
	e.audit.take()

	p := b.get("/account/authenticator")
	if p.status != http.StatusOK {
		t.Fatalf("GET /account/authenticator: got %d, want 200:\n%s", p.status, p.body)
	}
	en1 := parseEnrolment(t, p.body)
	newSecret := en1.uri.Query().Get("secret")
	if newSecret == "" || newSecret == oldSecret || !strings.Contains(p.body, `<a class="button secondary" href="/account">`) {
		t.Fatalf("got secret %q and page:\n%s\nwant a new secret and a way back", newSecret, p.body)
	}
	if again := parseEnrolment(t, b.get("/account/authenticator").body); again.uri.Query().Get("secret") != newSecret {
		t.Errorf("reload: got another secret, want the pending one again")
	}
	if u := e.user("id-alice"); u.TOTPSecret != oldSecret {
		t.Fatalf("after showing the new secret: the authenticator changed")
	}

	// Until the new one is confirmed, the old authenticator signs in, and
	// the new one does not.
	e.clock.Add(totpPeriod * time.Second)
	if p := e.browser().passwordAndCode(t, "alice", "pw-alice-1", codeAt(t, newSecret, e.clock.Now())); p.status != http.StatusUnprocessableEntity {
		t.Errorf("login with the pending authenticator: got %d, want 422", p.status)
	}
	e.signIn("alice", "pw-alice-1", oldSecret)

	// A wrong code, or one of the old authenticator, confirms nothing.
	e.clock.Add(totpPeriod * time.Second)
	for _, code := range []string{wrongCode(t, newSecret, e.clock.Now()), codeAt(t, oldSecret, e.clock.Now()), "12345"} {
		p := b.accountPost("/account/authenticator", url.Values{"code": {code}})
		want := en("account.totp.bad_code")
		if len(code) != 6 {
			want = en("totp.code_format")
		}
		if p.status != http.StatusUnprocessableEntity || fieldError(p.body, "code") != want {
			t.Errorf("code %q: got %d with %q, want 422 with %q", code, p.status, fieldError(p.body, "code"), want)
		}
		if got := parseEnrolment(t, p.body).uri.Query().Get("secret"); got != newSecret {
			t.Errorf("code %q: the page shows another secret", code)
		}
		if u := e.user("id-alice"); u.TOTPSecret != oldSecret {
			t.Fatalf("code %q: the authenticator changed", code)
		}
	}
	if got := e.user("id-alice").FailedCodes; got != 2 {
		t.Errorf("got %d failed codes, want 2: wrong codes count towards the lock", got)
	}

	code := codeAt(t, newSecret, e.clock.Now())
	b.wantDone(b.accountPost("/account/authenticator", url.Values{"code": {code}}), "totp", "account.done.totp")
	u := e.user("id-alice")
	if u.TOTPSecret != newSecret || u.FailedCodes != 0 || u.TOTPLastStep != e.clock.Now().Unix()/totpPeriod {
		t.Errorf("got secret new=%t, %d failed codes, last step %d; want the new secret, 0, the confirming step",
			u.TOTPSecret == newSecret, u.FailedCodes, u.TOTPLastStep)
	}
	if ls, _ := b.session(); ls.PendingTOTPSecret != "" {
		t.Errorf("pending secret after the replacement: want none")
	}
	if ds, _ := e.store.ListDevices(ctx, "id-alice"); len(ds) != 0 {
		t.Errorf("remembered devices after the replacement: got %v, want none", ds)
	}
	if got, want := briefEvents(e.audit.take()), []string{"login.password success id-alice", "login.totp failure id-alice",
		"login.password success id-alice", "login.totp success id-alice",
		"totp.replaced failure id-alice", "totp.replaced failure id-alice", "totp.replaced success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}

	// The same code again is a replay; the old authenticator is done.
	if p := e.browser().passwordAndCode(t, "alice", "pw-alice-1", code); p.status != http.StatusUnprocessableEntity {
		t.Errorf("login with the confirming code again: got %d, want 422", p.status)
	}
	e.clock.Add(totpPeriod * time.Second)
	if p := e.browser().passwordAndCode(t, "alice", "pw-alice-1", codeAt(t, oldSecret, e.clock.Now())); p.status != http.StatusUnprocessableEntity {
		t.Errorf("login with the old authenticator: got %d, want 422", p.status)
	}
	e.signIn("alice", "pw-alice-1", newSecret)

	// Confirming again, without a new enrolment page, starts one.
	if p := b.accountPost("/account/authenticator", url.Values{"code": {"123456"}}); p.status != http.StatusSeeOther || p.location() != "/account/authenticator" {
		t.Errorf("POST without a pending secret: got %d to %q, want 303 to /account/authenticator", p.status, p.location())
	}
}

func TestAccountSecondFactorNeedsRecentLogin(t *testing.T) {
	e := newEnv(t)
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	p := b.get("/account/authenticator")
	if p.status != http.StatusOK {
		t.Fatalf("right after the login: got %d, want 200", p.status)
	}
	pending := parseEnrolment(t, p.body).uri.Query().Get("secret")
	e.clock.Add(recentLogin + time.Second)
	before := e.accountState(alice.ID)
	for _, p := range []page{
		b.get("/account/authenticator"),
		b.accountPost("/account/authenticator", url.Values{"code": {codeAt(t, pending, e.clock.Now())}}),
		b.accountPost("/account/recovery-codes", nil),
	} {
		if p.status != http.StatusForbidden || !strings.Contains(p.body, en("account.reauth_title")) || !strings.Contains(p.body, `<a class="button" href="/login">`) {
			t.Errorf("got %d, want 403 asking to sign in again:\n%s", p.status, p.body)
		}
		if strings.Contains(p.body, "otpauth") || strings.Contains(p.body, `class="codes"`) {
			t.Errorf("page shows a secret or codes:\n%s", p.body)
		}
	}
	if after := e.accountState(alice.ID); !after.equal(before) {
		t.Errorf("account changed:\ngot  %+v\nwant %+v", after, before)
	}
	// The account page itself still opens.
	if p := b.get(accountPath); p.status != http.StatusOK {
		t.Errorf("account page: got %d, want 200", p.status)
	}
}

func TestAccountRegenerateRecoveryCodes(t *testing.T) {
	e := newEnv(t)
	secret, old := e.enrol("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	e.audit.take()

	p := b.accountPost("/account/recovery-codes", nil)
	codes := recoveryCodes(p.body)
	if p.status != http.StatusOK || len(codes) != recoveryCodeCount || !strings.Contains(p.body, `<a class="button" href="/account">`) ||
		!strings.Contains(p.body, en("account.codes.intro")) {
		t.Fatalf("got %d with %d codes, want 200 with %d and a way back to the account:\n%s", p.status, len(codes), recoveryCodeCount, p.body)
	}
	for _, c := range codes {
		if slices.Contains(old, c) {
			t.Errorf("new code %q was an old one", c)
		}
	}
	if got, want := briefEvents(e.audit.take()), []string{"recovery_codes.regenerated success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	if got := e.codesLeft("id-alice"); got != recoveryCodeCount {
		t.Errorf("got %d codes stored, want %d", got, recoveryCodeCount)
	}
	if p := b.get(accountPath); !strings.Contains(p.body, "You have 10 unused recovery codes.") || strings.Contains(p.body, codes[0]) {
		t.Errorf("account page: want the count and none of the codes")
	}

	// An old code no longer signs in; a new one does.
	x := e.browser()
	x.mustPass("alice", "pw-alice-1")
	if p := x.recoveryStep(old[1]); p.status != http.StatusUnprocessableEntity {
		t.Errorf("old recovery code: got %d, want 422", p.status)
	}
	if p := x.recoveryStep(codes[0]); p.status != http.StatusOK {
		t.Errorf("new recovery code: got %d, want 200", p.status)
	}
	if ls, err := x.current(); err != nil || ls.ACR != storage.ACRRecoveryCode {
		t.Errorf("after the new code: got ACR %q, %v; want %q", ls.ACR, err, storage.ACRRecoveryCode)
	}
}
