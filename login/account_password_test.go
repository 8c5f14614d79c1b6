package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// changedPassword is the new password of the password changes.
const changedPassword = "a fresh passphrase 9"

func TestAccountChangePasswordRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// form is the posted form given a right code of a fresh step, the
		// code the login used and a wrong code.
		form func(fresh, used, wrong string) url.Values
		// field and want are the field whose message is shown, and the
		// message; event is the audit event, if any.
		field, want, event string
		// spent says whether the code was counted as a wrong one.
		spent bool
	}{
		{name: "wrong current password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-wrong"}, "code": {fresh}, "new_password": {changedPassword}, "confirm_password": {changedPassword}}
		}, field: "current_password", want: en("account.password.wrong"), event: "password.changed failure id-alice"},
		{name: "no current password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"code": {fresh}, "new_password": {changedPassword}, "confirm_password": {changedPassword}}
		}, field: "current_password", want: en("login.enter_password")},
		{name: "wrong code", form: func(_, _, wrong string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {wrong}, "new_password": {changedPassword}, "confirm_password": {changedPassword}}
		}, field: "password_code", want: en("totp.bad_code"), event: "password.changed failure id-alice", spent: true},
		{name: "the code the login used", form: func(_, used, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {used}, "new_password": {changedPassword}, "confirm_password": {changedPassword}}
		}, field: "password_code", want: en("totp.code_used"), event: "password.changed replayed id-alice", spent: true},
		{name: "malformed code", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh[:5]}, "new_password": {changedPassword}, "confirm_password": {changedPassword}}
		}, field: "password_code", want: en("totp.code_format")},
		{name: "breached new password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh}, "new_password": {"123456789012"}, "confirm_password": {"123456789012"}}
		}, field: "new_password", want: en("join.password_breached")},
		{name: "short new password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh}, "new_password": {"short"}, "confirm_password": {"short"}}
		}, field: "new_password", want: templates.English.T("join.password_short", "min", DefaultMinPasswordLength)},
		{name: "username as the new password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh}, "new_password": {"alice-in-the-lab"}, "confirm_password": {"alice-in-the-lab"}}
		}, field: "new_password", want: en("join.password_name")},
		{name: "no new password", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh}}
		}, field: "new_password", want: en("account.password.enter_new")},
		{name: "different confirmation", form: func(fresh, _, _ string) url.Values {
			return url.Values{"current_password": {"pw-alice-1"}, "code": {fresh}, "new_password": {changedPassword}, "confirm_password": {changedPassword + "!"}}
		}, field: "confirm_password", want: en("account.password.mismatch")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice, secret := e.addEnrolledUser("alice-in-the-lab", "pw-alice-1")
			other := e.signIn("alice-in-the-lab", "pw-alice-1", secret)
			b := e.signIn("alice-in-the-lab", "pw-alice-1", secret)
			used := codeAt(t, secret, e.clock.Now())
			e.clock.Add(totpPeriod * time.Second)
			fresh := codeAt(t, secret, e.clock.Now())
			before := e.accountState(alice.ID)
			e.audit.take()

			p := b.accountPost("/account/password", tc.form(fresh, used, wrongCode(t, secret, e.clock.Now())))
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("got status %d, want 422", p.status)
			}
			if got := fieldError(p.body, tc.field); got != tc.want {
				t.Errorf("%s message: got %q, want %q", tc.field, got, tc.want)
			}
			if got := formError(p.body); got != en("account.error") {
				t.Errorf("page message: got %q, want %q", got, en("account.error"))
			}
			if strings.Contains(p.body, "pw-alice-1") || strings.Contains(p.body, changedPassword) {
				t.Errorf("page shows a password it was sent")
			}
			after := e.accountState(alice.ID)
			if want := before.user.FailedCodes + map[bool]int{true: 1}[tc.spent]; after.user.FailedCodes != want {
				t.Errorf("got %d failed codes, want %d", after.user.FailedCodes, want)
			}
			after.user.FailedCodes = before.user.FailedCodes
			if !after.equal(before) {
				t.Errorf("account changed:\ngot  %+v\nwant %+v", after, before)
			}
			for name, x := range map[string]*browser{"this": b, "other": other} {
				if _, err := x.current(); err != nil {
					t.Errorf("%s session: got %v, want it kept", name, err)
				}
			}
			var want []string
			if tc.event != "" {
				want = []string{strings.Replace(tc.event, "id-alice", alice.ID, 1)}
			}
			if got := briefEvents(e.audit.take()); !slices.Equal(got, want) {
				t.Errorf("got events %q, want %q", got, want)
			}
		})
	}
}

func TestAccountChangePassword(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RememberDevice = rememberFor })
	ctx := context.Background()
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	_, bobSecret := e.addEnrolledUser("bob", "pw-bob-1")
	e.addClient("rp", "RP")
	e.remember("alice", "pw-alice-1", secret)
	bob := e.signIn("bob", "pw-bob-1", bobSecret)
	other := e.signIn("alice", "pw-alice-1", secret)
	half := e.browser()
	half.mustPass("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	for _, x := range []*browser{other, b} {
		ls, _ := x.session()
		if err := e.store.AddSessionClient(ctx, storage.SessionClient{SID: ls.SID, ClientID: "rp", UserID: ls.UserID, ExpiresAt: ls.ExpiresAt}); err != nil {
			t.Fatal(err)
		}
	}
	otherSession, _ := other.session()
	e.clock.Add(totpPeriod * time.Second)
	e.audit.take()

	code := codeAt(t, secret, e.clock.Now())
	p := b.accountPost("/account/password", url.Values{"current_password": {"pw-alice-1"}, "code": {code},
		"new_password": {changedPassword}, "confirm_password": {changedPassword}})
	b.wantDone(p, "password", "account.done.password")

	hash := e.user(alice.ID).PasswordHash
	if ok, _ := e.hasher.Verify(hash, changedPassword); !ok {
		t.Errorf("the new password does not verify")
	}
	if ok, _ := e.hasher.Verify(hash, "pw-alice-1"); ok {
		t.Errorf("the old password still verifies")
	}
	if _, err := b.current(); err != nil {
		t.Errorf("this session: got %v, want it kept", err)
	}
	if _, err := other.current(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice's other session: got %v, want it ended", err)
	}
	if _, err := half.session(); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("alice's half-finished login: got %v, want it ended", err)
	}
	if _, err := bob.current(); err != nil {
		t.Errorf("bob's session: got %v, want it kept", err)
	}
	if ds, _ := e.store.ListDevices(ctx, alice.ID); len(ds) != 0 {
		t.Errorf("alice's remembered devices: got %v, want none", ds)
	}
	claimed, err := e.store.ClaimBackchannelLogouts(ctx, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].SID != otherSession.SID {
		t.Errorf("got back-channel logouts %+v, want one for the other session %q", claimed, otherSession.SID)
	}
	evs := e.audit.take()
	if got, want := briefEvents(evs), []string{"password.changed success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	for _, secret := range []string{"pw-alice-1", changedPassword, code} {
		if strings.Contains(e.logs.String(), secret) || slices.ContainsFunc(evs, func(ev storage.AuditEvent) bool { return strings.Contains(ev.Detail, secret) }) {
			t.Errorf("the logs or the audit log hold %q", secret)
		}
	}
	// The new password signs in; the old one does not.
	e.signIn("alice", changedPassword, secret)
	if p := e.browser().passwordStep("alice", "pw-alice-1"); p.status != http.StatusUnprocessableEntity {
		t.Errorf("login with the old password: got %d, want 422", p.status)
	}
}

func TestAccountChangePasswordThrottled(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AccountThrottle = Backoff{After: 2, Base: time.Minute, LockAfter: 3, Lock: time.Hour}
	})
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	e.clock.Add(totpPeriod * time.Second)
	form := func(current string) url.Values {
		return url.Values{"current_password": {current}, "code": {codeAt(t, secret, e.clock.Now())},
			"new_password": {changedPassword}, "confirm_password": {changedPassword}}
	}
	for i := range 2 {
		if p := b.accountPost("/account/password", form("pw-wrong")); p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong password %d: got %d, want 422", i+1, p.status)
		}
	}
	// Blocked now, even with the right password, which is not checked.
	p := b.accountPost("/account/password", form("pw-alice-1"))
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "60" {
		t.Errorf("got %d with Retry-After %q, want 429 and 60", p.status, p.header.Get("Retry-After"))
	}
	if !strings.Contains(p.body, templates.English.T("login.too_many", "wait", "60 seconds")) {
		t.Errorf("page lacks the wait:\n%s", p.body)
	}
	if ok, _ := e.hasher.Verify(e.user(alice.ID).PasswordHash, "pw-alice-1"); !ok {
		t.Errorf("the password changed while blocked")
	}
	// The login's throttle is the same: the username is blocked there too.
	if p := e.browser().passwordStep("alice", "pw-alice-1"); p.status != http.StatusTooManyRequests {
		t.Errorf("login while blocked: got %d, want 429", p.status)
	}
}

func TestAccountCodesCountTowardsTheLock(t *testing.T) {
	e := newEnv(t)
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	pending := parseEnrolment(t, b.get("/account/authenticator").body).uri.Query().Get("secret")
	if _, err := e.store.DB().Exec(`UPDATE users SET failed_codes = ? WHERE id = ?`, MaxAccountCodes-1, alice.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(totpPeriod * time.Second)
	e.audit.take()
	p := b.accountPost("/account/password", url.Values{"current_password": {"pw-alice-1"}, "code": {wrongCode(t, secret, e.clock.Now())},
		"new_password": {changedPassword}, "confirm_password": {changedPassword}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, htmlText(en("login.account_locked"))) {
		t.Errorf("the 100th wrong code: got %d, want 403 saying the account is locked:\n%s", p.status, p.body)
	}
	if got, want := briefEvents(e.audit.take()), []string{"password.changed failure id-alice", "account.locked success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	// Locked: even right codes are not checked, here or at the login.
	for _, tc := range []struct {
		path  string
		form  url.Values
		event string
	}{
		{"/account/password", url.Values{"current_password": {"pw-alice-1"}, "code": {codeAt(t, secret, e.clock.Now())},
			"new_password": {changedPassword}, "confirm_password": {changedPassword}}, "password.changed locked id-alice"},
		{"/account/authenticator", url.Values{"code": {codeAt(t, pending, e.clock.Now())}}, "totp.replaced locked id-alice"},
	} {
		if p := b.accountPost(tc.path, tc.form); p.status != http.StatusForbidden {
			t.Errorf("%s while locked: got %d, want 403", tc.path, p.status)
		}
		if got := briefEvents(e.audit.take()); !slices.Equal(got, []string{tc.event}) {
			t.Errorf("%s while locked: got events %q, want %q", tc.path, got, tc.event)
		}
	}
	if u := e.user(alice.ID); u.TOTPSecret != secret || u.FailedCodes != MaxAccountCodes {
		t.Errorf("got the authenticator replaced %t, %d failed codes; want neither changed", u.TOTPSecret != secret, u.FailedCodes)
	}
	if ok, _ := e.hasher.Verify(e.user(alice.ID).PasswordHash, "pw-alice-1"); !ok {
		t.Errorf("the password changed while locked")
	}
}
