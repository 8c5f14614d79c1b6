package main

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
)

// accountFlow is the account page in a real browser, at each viewport: a
// login that starts at /account, with enrolment, comes back to it; the
// page, the replacement of the authenticator and new recovery codes fit
// the viewport, and their fields carry the autocomplete tokens.
func (c *chromeRun) accountFlow(t *testing.T) {
	in := startServer(t, "", nil)
	addUser(t, in, "carol", "a long enough password")

	tb := c.newTab(t)
	tb.navigate(in.issuer + "/account")
	tb.signIn("account-login", "carol", "a long enough password")
	key := tb.codePage("account-enrol", "carol", true)
	enrolledAt := time.Now()
	tb.enterCode("account-enrol", codeAt(t, key, enrolledAt))
	s := tb.shot("account-recovery-codes")
	if !has(s.Links, "/account") {
		tb.fatalf("codes page: links %q, want one to /account", s.Links)
	}
	tb.submit("continue to the account", chromedp.Click(chromedp.CSS(`a.button[href="/account"]`)))

	s = tb.shot("account")
	if s.Path != "/account" {
		tb.fatalf("after the login: got %s, want /account", s.URL)
	}
	for name, want := range map[string]string{
		"name": "name", "email": "email", "current_password": "current-password", "code": "one-time-code",
		"new_password": "new-password", "confirm_password": "new-password",
	} {
		if got := s.Inputs[name].Autocomplete; got != want {
			t.Errorf("account page: field %q autocomplete %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"current_password", "new_password", "confirm_password"} {
		if got := s.Inputs[name].Type; got != "password" {
			t.Errorf("account page: field %q is of type %q, want password", name, got)
		}
	}

	tb.submit("replace the authenticator", chromedp.Click(chromedp.CSS(`a[href="/account/authenticator"]`)))
	s = tb.shot("account-authenticator")
	if s.Path != "/account/authenticator" || !s.QR || !has(s.Links, "/account") {
		tb.fatalf("authenticator page: got %s (QR %v, links %q), want the QR code and a way back", s.URL, s.QR, s.Links)
	}
	newKey, err := otp.NewKeyFromURL(s.OTPAuth)
	if err != nil {
		tb.fatalf("authenticator page: otpauth link %q: %v", s.OTPAuth, err)
	}
	tb.enterCode("account-authenticator", codeAt(t, newKey, time.Now()))
	if s = tb.shot("account-authenticator-replaced"); s.Path != "/account" {
		tb.fatalf("after the new code: got %s, want /account", s.URL)
	}

	tb.submit("new recovery codes", chromedp.Click(chromedp.CSS(`form[action="/account/recovery-codes"] button`)))
	s = tb.shot("account-new-recovery-codes")
	if got := len(recoveryCodeText.FindAllString(s.Text, -1)); got != 10 || !has(s.Links, "/account") {
		tb.fatalf("new recovery codes: got %d codes and links %q, want 10 and a way back to /account", got, s.Links)
	}
}
