package login

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twostep/twostep/storage"
)

// TestPagesNameTheClient checks that the password and code pages say which
// application the user signs in to: its name, else its ID.
func TestPagesNameTheClient(t *testing.T) {
	e := newEnv(t)
	e.addEnrolledUser("alice", "pw-alice-1")
	if err := e.store.CreateClient(context.Background(), &storage.Client{
		ID: "sales", Name: "Sales <dashboard>", RedirectURIs: []string{"https://sales.example.com/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateAuthRequest(context.Background(), storage.AuthRequest{
		ID: "ar-sales", ClientID: "sales", Form: url.Values{"client_id": {"sales"}},
		RequestedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(stepLifetime),
	}); err != nil {
		t.Fatal(err)
	}
	e.addAuthRequest("ar-app", url.Values{"client_id": {"app"}}) // a client that is gone

	for _, tc := range []struct {
		ar, wantHeading, wantOnCodePage string
	}{
		{"ar-sales", "<h1>Sign in to Sales &lt;dashboard&gt;</h1>", "You are signing in to Sales &lt;dashboard&gt;."},
		{"ar-app", "<h1>Sign in to app</h1>", "You are signing in to app."},
		{"", "<h1>Sign in</h1>", ""},
	} {
		t.Run("request "+tc.ar, func(t *testing.T) {
			b := e.browser()
			b.ar = tc.ar
			if p := b.get(loginURL(tc.ar)); !strings.Contains(p.body, tc.wantHeading) {
				t.Errorf("login page lacks %s:\n%s", tc.wantHeading, p.body)
			}
			// A wrong password shows the page again, still naming the client.
			if p := b.passwordStep("alice", "wrong-pass-xyz"); !strings.Contains(p.body, tc.wantHeading) {
				t.Errorf("login page after a wrong password lacks %s:\n%s", tc.wantHeading, p.body)
			}
			b.mustPass("alice", "pw-alice-1")
			p := b.get("/login/totp")
			if tc.wantOnCodePage == "" {
				if strings.Contains(p.body, "You are signing in to") {
					t.Errorf("code page names a client, want none:\n%s", p.body)
				}
				return
			}
			if !strings.Contains(p.body, tc.wantOnCodePage) {
				t.Errorf("code page lacks %q:\n%s", tc.wantOnCodePage, p.body)
			}
		})
	}
}

// TestPagesLanguage checks that the login pages follow the authorization
// request's ui_locales, else the browser's Accept-Language, else English,
// in their text, their messages and their <html lang>.
func TestPagesLanguage(t *testing.T) {
	e := newEnv(t)
	_, secret := e.addEnrolledUser("alice", "pw-alice-1")
	e.addAuthRequest("ar-fr", url.Values{"client_id": {"app"}, "ui_locales": {"fr-CA en"}})
	e.addAuthRequest("ar-none", url.Values{"client_id": {"app"}, "ui_locales": {"ja"}})
	for _, tc := range []struct {
		name, ar, accept, wantLang string
		wantLogin, wantWrong       string
		wantCode, wantWrongCode    string
	}{
		{"ui_locales beats Accept-Language", "ar-fr", "de", "fr",
			"Se connecter à app", "Nom d’utilisateur ou mot de passe incorrect.",
			"Saisissez votre code", "Ce code n’est pas correct."},
		{"Accept-Language when ui_locales has nothing supported", "ar-none", "es, de;q=0.8, en;q=0.5", "de",
			"Bei app anmelden", "Benutzername oder Passwort ist falsch.",
			"Code eingeben", "Dieser Code ist nicht richtig."},
		{"Accept-Language without a request", "", "de-CH", "de",
			"<h1>Anmelden</h1>", "Benutzername oder Passwort ist falsch.",
			"Code eingeben", "Dieser Code ist nicht richtig."},
		{"English otherwise", "", "pt-BR", "en",
			"<h1>Sign in</h1>", "Incorrect username or password.",
			"Enter your code", "That code is not right."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			b.ar, b.acceptLanguage = tc.ar, tc.accept
			wantLang := `<html lang="` + tc.wantLang + `">`
			check := func(step string, p page, want string) {
				t.Helper()
				if !strings.Contains(p.body, wantLang) || !strings.Contains(html.UnescapeString(p.body), want) {
					t.Errorf("%s: page lacks %s or %q:\n%s", step, wantLang, want, p.body)
				}
			}
			check("login page", b.get(loginURL(tc.ar)), tc.wantLogin)
			check("wrong password", b.passwordStep("alice", "wrong-pass-xyz"), tc.wantWrong)
			b.mustPass("alice", "pw-alice-1")
			check("code page", b.get("/login/totp"), tc.wantCode)
			wrong := b.post("/login/totp", url.Values{"csrf_token": {b.csrf()}, "code": {wrongCode(t, secret, e.clock.Now())}})
			if wrong.status != http.StatusUnprocessableEntity {
				t.Fatalf("wrong code: got %d, want 422", wrong.status)
			}
			check("wrong code", wrong, tc.wantWrongCode)
			check("bad form token", b.post("/login/totp", url.Values{"csrf_token": {"x"}, "code": {"123456"}}), "")
		})
	}
}
