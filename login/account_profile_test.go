package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/templates"
)

func TestAccountProfileRefused(t *testing.T) {
	badEmail := en("account.email_invalid")
	badName := templates.English.T("account.name_invalid", "max", maxNameLength)
	for _, tc := range []struct {
		name, field, value, want string
	}{
		{"address with a display name", "email", "Alice <alice@example.com>", badEmail},
		{"not an address", "email", "alice at example.com", badEmail},
		{"two addresses", "email", "alice@example.com, bob@example.com", badEmail},
		{"line break", "email", "alice@example.com\r\nBcc: eve@example.com", badEmail},
		{"address too long", "email", strings.Repeat("a", 243) + "@example.com", badEmail},
		{"name too long", "name", strings.Repeat("é", maxNameLength+1), badName},
		{"name with a line break", "name", "Alice\nAdmin", badName},
		{"name not UTF-8", "name", "Alice \xff", badName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &outbox{}
			e := newEnv(t, func(c *Config) { c.Mailer, c.BaseURL = m, testBaseURL })
			alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
			b := e.signIn("alice", "pw-alice-1", secret)
			before := e.accountState(alice.ID)
			e.audit.take()
			form := url.Values{"name": {"Alice Example"}, "email": {"alice@example.com"}}
			form.Set(tc.field, tc.value)
			p := b.accountPost("/account/profile", form)
			if p.status != http.StatusUnprocessableEntity {
				t.Errorf("got status %d, want 422", p.status)
			}
			if got := fieldError(p.body, tc.field); got != tc.want {
				t.Errorf("%s message: got %q, want %q", tc.field, got, tc.want)
			}
			if after := e.accountState(alice.ID); !after.equal(before) {
				t.Errorf("account changed:\ngot  %+v\nwant %+v", after, before)
			}
			if sent := m.take(); len(sent) != 0 {
				t.Errorf("got %d mails, want none", len(sent))
			}
			if evs := e.audit.take(); len(evs) != 0 {
				t.Errorf("got events %q, want none", briefEvents(evs))
			}
		})
	}
}

func TestAccountProfileWithoutMail(t *testing.T) {
	e := newEnv(t)
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	if err := e.store.UpdateProfile(context.Background(), alice.ID, "", "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().Exec(`UPDATE users SET email_verified = ? WHERE id = ?`, true, alice.ID); err != nil {
		t.Fatal(err)
	}
	b := e.signIn("alice", "pw-alice-1", secret)
	if p := b.get(accountPath); !strings.Contains(p.body, en("account.email_verified")) || !strings.Contains(p.body, htmlText(en("account.mail_off"))) {
		t.Errorf("account page lacks the verified address or the note that mail is off:\n%s", p.body)
	}

	// The same address keeps its verification; a new one loses it.
	b.wantDone(b.accountPost("/account/profile", url.Values{"name": {"  Alice Example  "}, "email": {"alice@example.com"}}), "profile", "account.done.profile")
	if u := e.user(alice.ID); u.Name != "Alice Example" || u.Email != "alice@example.com" || !u.EmailVerified {
		t.Errorf("got name %q, email %q, verified %t; want the name trimmed and the address still verified", u.Name, u.Email, u.EmailVerified)
	}
	b.wantDone(b.accountPost("/account/profile", url.Values{"name": {"Alice Example"}, "email": {" alice@example.org "}}), "profile", "account.done.profile")
	if u := e.user(alice.ID); u.Email != "alice@example.org" || u.EmailVerified {
		t.Errorf("got email %q, verified %t; want alice@example.org, not verified", u.Email, u.EmailVerified)
	}
	if p := b.get(accountPath); !strings.Contains(p.body, en("account.email_unverified")) || strings.Contains(p.body, `action="/account/email"`) {
		t.Errorf("account page: want the address unverified and no offer to mail a link without mail:\n%s", p.body)
	}
	// An empty address is allowed.
	b.wantDone(b.accountPost("/account/profile", url.Values{"name": {""}, "email": {""}}), "profile", "account.done.profile")
	if u := e.user(alice.ID); u.Name != "" || u.Email != "" {
		t.Errorf("got name %q, email %q; want both empty", u.Name, u.Email)
	}
	if got, want := briefEvents(e.audit.take()), []string{"profile.updated success id-alice", "profile.updated success id-alice", "profile.updated success id-alice"}; !slices.Equal(got[len(got)-3:], want) {
		t.Errorf("got events %q, want them to end with %q", got, want)
	}
}

func TestAccountVerifyEmail(t *testing.T) {
	m := &outbox{}
	e := newEnv(t, func(c *Config) { c.Mailer, c.BaseURL = m, testBaseURL })
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	if p := b.get(accountPath); strings.Contains(p.body, htmlText(en("account.mail_off"))) {
		t.Errorf("account page says mail is off; it is on")
	}
	e.audit.take()

	b.wantDone(b.accountPost("/account/profile", url.Values{"name": {"Alice"}, "email": {"alice@example.com"}}), "email_sent", "account.done.email_sent")
	sent := m.take()
	if len(sent) != 1 || sent[0].To != "alice@example.com" || sent[0].Subject != "Verify your email address for twostep" {
		t.Fatalf("got mails %+v, want one to alice@example.com with the verification subject", sent)
	}
	link := mailLink(t, sent[0])
	if got, want := briefEvents(e.audit.take()), []string{"profile.updated success id-alice", "email.verification_sent success id-alice"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}

	// Fetching the link, as a mail scanner does, verifies nothing.
	for range 2 {
		p := e.browser().get(link)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Confirm that alice@example.com is your address.") {
			t.Fatalf("GET the link: got %d, want the confirmation:\n%s", p.status, p.body)
		}
		if e.user(alice.ID).EmailVerified {
			t.Fatalf("a GET verified the address")
		}
	}
	token := strings.TrimPrefix(link, "/account/verify-email?token=")
	// Posted from another browser, without a login: the link is the proof.
	p := e.browser().post("/account/verify-email", url.Values{"token": {token}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "alice@example.com is verified.") || !strings.Contains(p.body, `href="/account"`) {
		t.Errorf("POST the link: got %d, want the notice:\n%s", p.status, p.body)
	}
	if !e.user(alice.ID).EmailVerified {
		t.Errorf("address not verified after the POST")
	}
	// Once only.
	for _, p := range []page{e.browser().post("/account/verify-email", url.Values{"token": {token}}), e.browser().get(link)} {
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, htmlText(en("account.verify.bad_link"))) {
			t.Errorf("the link again: got %d, want 400 with %q", p.status, en("account.verify.bad_link"))
		}
	}
	if got, want := briefEvents(e.audit.take()), []string{"email.verified success id-alice", "email.verified failure"}; !slices.Equal(got, want) {
		t.Errorf("got events %q, want %q", got, want)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Errorf("the logs hold the link's secret")
	}
	if got := b.get(accountPath).body; !strings.Contains(got, en("account.email_verified")) {
		t.Errorf("account page does not say the address is verified")
	}

	// Saving the same address sends nothing.
	b.wantDone(b.accountPost("/account/profile", url.Values{"name": {"Alice E."}, "email": {"alice@example.com"}}), "profile", "account.done.profile")
	if sent := m.take(); len(sent) != 0 {
		t.Errorf("got %d mails for an unchanged address, want none", len(sent))
	}

	// A link to an address the user has since changed verifies nothing.
	b.accountPost("/account/profile", url.Values{"email": {"alice@example.org"}})
	first := mailLink(t, m.take()[0])
	b.accountPost("/account/profile", url.Values{"email": {"alice@example.net"}})
	m.take()
	if p := e.browser().post("/account/verify-email", url.Values{"token": {strings.TrimPrefix(first, "/account/verify-email?token=")}}); p.status != http.StatusBadRequest {
		t.Errorf("link to a former address: got %d, want 400", p.status)
	}
	if u := e.user(alice.ID); u.Email != "alice@example.net" || u.EmailVerified {
		t.Errorf("got %q verified %t, want alice@example.net unverified", u.Email, u.EmailVerified)
	}

	// The unverified address can get a new link.
	if p := b.get(accountPath); !strings.Contains(p.body, `<form method="post" action="/account/email">`) {
		t.Errorf("account page lacks the resend form for an unverified address")
	}
	b.wantDone(b.accountPost("/account/email", nil), "email_sent", "account.done.email_sent")
	sent = m.take()
	if len(sent) != 1 || sent[0].To != "alice@example.net" {
		t.Fatalf("got mails %+v, want one to alice@example.net", sent)
	}
	p = e.browser().post("/account/verify-email", url.Values{"token": {strings.TrimPrefix(mailLink(t, sent[0]), "/account/verify-email?token=")}})
	if p.status != http.StatusOK || !e.user(alice.ID).EmailVerified {
		t.Errorf("resent link: got %d, verified %t; want 200 and verified", p.status, e.user(alice.ID).EmailVerified)
	}
	for _, bad := range []string{"", "nope", forge(token)} {
		if p := e.browser().post("/account/verify-email", url.Values{"token": {bad}}); p.status != http.StatusBadRequest {
			t.Errorf("token %q: got %d, want 400", bad, p.status)
		}
	}
}

func TestAccountVerificationMailFails(t *testing.T) {
	m := &outbox{fail: errors.New("smtp: 451 try later")}
	e := newEnv(t, func(c *Config) { c.Mailer, c.BaseURL = m, testBaseURL })
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	b.wantDone(b.accountPost("/account/profile", url.Values{"email": {"alice@example.com"}}), "email_not_sent", "account.done.email_not_sent")
	if u := e.user(alice.ID); u.Email != "alice@example.com" || u.EmailVerified {
		t.Errorf("got %q verified %t, want the address saved, unverified", u.Email, u.EmailVerified)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "451 try later") || strings.Contains(logs, "token=") {
		t.Errorf("logs: want the mail failure without the link:\n%s", logs)
	}
}

func TestAccountVerificationMailsThrottled(t *testing.T) {
	m := &outbox{}
	e := newEnv(t, func(c *Config) {
		c.Mailer, c.BaseURL = m, testBaseURL
		c.AccountThrottle = Backoff{After: 2, Base: time.Minute, LockAfter: 3, Lock: time.Hour}
	})
	alice, secret := e.addEnrolledUser("alice", "pw-alice-1")
	b := e.signIn("alice", "pw-alice-1", secret)
	for i, want := range []string{"email_sent", "email_sent", "email_not_sent"} {
		p := b.accountPost("/account/profile", url.Values{"email": {fmt.Sprintf("victim%d@example.com", i)}})
		if got := p.location(); got != accountPath+"?done="+want {
			t.Errorf("change %d: got redirect to %q, want done=%s", i+1, got, want)
		}
	}
	if sent := m.take(); len(sent) != 2 {
		t.Errorf("got %d mails, want 2 before the throttle", len(sent))
	}
	if got := e.user(alice.ID).Email; got != "victim2@example.com" {
		t.Errorf("got address %q, want the last one saved all the same", got)
	}
	if got := e.audit.count("email.verification_sent", "throttled"); got != 1 {
		t.Errorf("got %d throttled mail events, want 1", got)
	}
}
