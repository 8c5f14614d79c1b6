package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// onboardingFlow gets an account and gets back into it in a real browser,
// at each viewport, following the links the server mails: an invitation
// (join, enrolment, recovery codes, the account page), a forgotten
// password (the login page's link, the address, the reset link, a wrong
// code, the right one, a login with the new password) and a registration.
func (c *chromeRun) onboardingFlow(t *testing.T) {
	in, smtp := startMailServer(t, "", nil, "open")
	const (
		email       = "alice@example.com"
		password    = "a long enough password"
		newPassword = "a brand new pass phrase for alice"
	)
	if out, err := in.cli(t, "", "user", "invite", email, "--username", "alice",
		"--issuer", in.issuer, "--smtp-url", smtp.URL(), "--mail-from", testMailFrom); err != nil {
		t.Fatalf("user invite: %v: %s", err, out)
	}

	// The invitation: choose a password, enrol, land on the account page.
	tb := c.newTab(t)
	tb.navigate(onlyLink(t, smtp.Wait(t, 1)))
	tb.waitFor("focus on the password field", `document.activeElement && document.activeElement.name === "password"`)
	s := tb.shot("onboarding-join")
	if s.Path != "/join" || s.Inputs["username"].Value != "alice" {
		tb.fatalf("invitation link: got %s with username %q, want the /join form for alice", s.URL, s.Inputs["username"].Value)
	}
	checkAutocomplete(t, "join page", s, map[string]string{
		"username": "username", "name": "name", "password": "new-password", "confirm": "new-password",
	})
	tb.do("fill the join form",
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Alice Liddell"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.SendKeys(chromedp.CSS(`input[name=confirm]`), password))
	tb.submit("create the account", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	key := tb.codePage("onboarding-enrol", "alice", true)
	enrolStep := time.Now().Unix() / 30
	tb.enterCode("onboarding-enrol", codeAt(t, key, time.Unix(enrolStep*30, 0)))
	if s = tb.shot("onboarding-recovery-codes"); len(recoveryCodeText.FindAllString(s.Text, -1)) != 10 || !has(s.Links, "/account") {
		tb.fatalf("codes page: got %s with links %q, want 10 codes and a link to /account", s.URL, s.Links)
	}
	// A code broken across lines is copied wrong.
	tb.check("each recovery code on one line", `[...document.querySelectorAll("ol.codes li")].every((li) => {
		const r = document.createRange(); r.selectNodeContents(li); return r.getClientRects().length === 1; })`)
	tb.submit("continue to the account", chromedp.Click(chromedp.CSS(`a.button[href="/account"]`)))
	s = tb.shot("onboarding-account")
	if s.Path != "/account" || s.Inputs["name"].Value != "Alice Liddell" || s.Inputs["email"].Value != email {
		tb.fatalf("after joining: got %s with name %q email %q, want /account with the joined name and the invited address",
			s.URL, s.Inputs["name"].Value, s.Inputs["email"].Value)
	}

	// A forgotten password, in a browser that is not signed in.
	tb2 := c.newTab(t)
	tb2.navigate(in.issuer + "/login")
	s = tb2.shot("onboarding-login")
	if !hasPrefixIn(s.Links, "/login/forgot") || !has(s.Links, "/register") {
		tb2.fatalf("login page: links %q, want /login/forgot and, with open registration, /register", s.Links)
	}
	tb2.submit("forgot the password", chromedp.Click(chromedp.CSS(`a[href^="/login/forgot"]`)))
	s = tb2.shot("onboarding-forgot")
	if in := s.Inputs["email"]; s.Path != "/login/forgot" || in.Type != "email" || in.Autocomplete != "email" {
		tb2.fatalf("forgot page: got %s with email field type %q autocomplete %q, want /login/forgot with type and autocomplete email",
			s.URL, in.Type, in.Autocomplete)
	}
	tb2.enterText("address", "email", email)
	if s = tb2.shot("onboarding-forgot-sent"); s.Path != "/login/forgot" || len(s.Inputs) != 0 || !strings.Contains(s.Text, email) {
		tb2.fatalf("after asking for a reset: got %s with inputs %v, want the answer naming %s", s.URL, s.Inputs, email)
	}
	m := smtp.Wait(t, 2)
	link := onlyLink(t, m)
	if !slices.Equal(m.To, []string{email}) || !strings.HasPrefix(link, in.issuer+"/login/reset?token=") {
		t.Fatalf("reset mail: got To %q link %s, want %s and a /login/reset link", m.To, link, email)
	}
	tb2.navigate(link)
	s = tb2.shot("onboarding-reset")
	if s.Path != "/login/reset" {
		tb2.fatalf("reset link: got %s, want /login/reset", s.URL)
	}
	checkAutocomplete(t, "reset page", s, map[string]string{
		"password": "new-password", "confirm": "new-password", "code": "one-time-code",
	})
	reset := func(code string) {
		t.Helper()
		tb2.do("fill the reset form",
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), newPassword),
			chromedp.SendKeys(chromedp.CSS(`input[name=confirm]`), newPassword),
			chromedp.SendKeys(chromedp.CSS(`input[name=code]`), code))
		tb2.submit("reset the password", chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	}
	reset(wrongCodeNow(t, key))
	s = tb2.shot("onboarding-reset-wrong-code")
	if s.Path != "/login/reset" || s.Alerts == 0 || s.Inputs["code"].Value != "" {
		tb2.fatalf("wrong code: got %s with %d alerts and code %q, want /login/reset with a role=alert message and an empty code field",
			s.URL, s.Alerts, s.Inputs["code"].Value)
	}
	tb2.check("the code's error shown", `(() => { const e = document.getElementById("code-error");
		return !!e && e.getAttribute("role") === "alert" && e.getBoundingClientRect().height > 0; })()`)
	reset(laterCode(t, key, enrolStep))
	if s = tb2.shot("onboarding-reset-done"); s.Path != "/login/reset" || s.Alerts != 0 || !has(s.Links, "/login") {
		tb2.fatalf("right code: got %s with %d alerts and links %q, want the notice with a link to sign in", s.URL, s.Alerts, s.Links)
	}
	tb2.submit("go to sign in", chromedp.Click(chromedp.CSS(`a.button[href="/login"]`)))
	tb2.signIn("onboarding-new-login", "alice", newPassword)
	tb2.codePage("onboarding-new-code", "alice", false)
	// The reset ended the session the invitation started.
	tb.navigate(in.issuer + "/account")
	if s = tb.state(); s.Path != "/login" {
		t.Errorf("the joined browser after the reset: got %s, want /login", s.URL)
	}

	// Registration, from the login page's link.
	tb3 := c.newTab(t)
	tb3.navigate(in.issuer + "/login")
	tb3.submit("create an account", chromedp.Click(chromedp.CSS(`a[href="/register"]`)))
	s = tb3.shot("onboarding-register")
	if in := s.Inputs["email"]; s.Path != "/register" || in.Type != "email" || in.Autocomplete != "email" {
		tb3.fatalf("register page: got %s with email field type %q autocomplete %q, want /register with type and autocomplete email",
			s.URL, in.Type, in.Autocomplete)
	}
	tb3.enterText("address", "email", "dave@example.com")
	if s = tb3.shot("onboarding-register-sent"); s.Path != "/register" || len(s.Inputs) != 0 || !strings.Contains(s.Text, "dave@example.com") {
		tb3.fatalf("after registering: got %s with inputs %v, want the answer naming dave@example.com", s.URL, s.Inputs)
	}
	m = smtp.Wait(t, 3)
	if link := onlyLink(t, m); !slices.Equal(m.To, []string{"dave@example.com"}) || !strings.HasPrefix(link, in.issuer+"/join?token=") {
		t.Errorf("registration mail: got To %q link %s, want dave@example.com and a /join link", m.To, link)
	}
}

// enterText types text into the focused field name and presses Enter.
func (tb *chromeTab) enterText(what, name, text string) {
	tb.t.Helper()
	tb.waitFor("focus on the "+name+" field", `document.activeElement && document.activeElement.name === "`+name+`"`)
	tb.do("type the "+what, chromedp.KeyEvent(text))
	tb.submit("Enter on the "+what, chromedp.KeyEvent(kb.Enter))
}

// check reports an error unless the JavaScript condition expr holds.
func (tb *chromeTab) check(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, chromeActionTimeout)
	defer cancel()
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err != nil || !ok {
		tb.t.Errorf("at %s: want %s: %s is false (%v)", tb.vp.name, what, expr, err)
	}
}

// checkAutocomplete checks the autocomplete token of each field in want.
func checkAutocomplete(t *testing.T, page string, s pageState, want map[string]string) {
	t.Helper()
	for name, token := range want {
		if got := s.Inputs[name].Autocomplete; got != token {
			t.Errorf("%s: field %q autocomplete %q, want %q", page, name, got, token)
		}
	}
}
