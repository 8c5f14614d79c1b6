package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

func TestLogout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addApp(true)
	e.addClient(appClient("other"), appSecret)
	u := e.addUser("alice")
	idToken := e.tokensFor(t, u.ID, "openid").IDToken
	if idToken == "" {
		t.Fatal("no ID token to use as a hint")
	}

	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": testIssuer, "sub": u.ID, "aud": []string{appID}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		edit(c)
		return c
	}
	hint := func(edit func(jwt.MapClaims)) string {
		raw, _, err := e.p.Keys().Generate(ctx, claims(edit), &jwt.Headers{})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := kids(jwks(t, e.p.Keys()))[0]
	forged, _, err := (&jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return foreign, nil }}).
		Generate(ctx, claims(func(jwt.MapClaims) {}), kidHeader{Mapper: &jwt.Headers{}, kid: kid})
	if err != nil {
		t.Fatal(err)
	}

	const state = "logout-state-123"
	csrf := csrfTokenOf(u.ID)
	mallorys := hint(func(c jwt.MapClaims) { c["sub"] = "sub-mallory" })
	tests := []struct {
		name   string
		method string
		form   url.Values
		nobody bool       // nobody is signed in
		want   string     // "redirect", "signed out", "confirm", "forbidden" or "error"
		hinted bool       // the client is known from the id_token_hint
		query  url.Values // of a POST
	}{
		{name: "hint and registered redirect", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "redirect", hinted: true},
		{name: "hint and registered redirect, POST", method: http.MethodPost, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "redirect", hinted: true},
		{name: "hint without redirect", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}}, want: "signed out", hinted: true},
		{name: "hint with its client_id", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "redirect", hinted: true},
		{name: "expired hint", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "redirect", hinted: true},
		{name: "hint with a single audience string", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = appID })}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "redirect", hinted: true},
		{name: "hint, nobody signed in", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, nobody: true, want: "redirect", hinted: true},
		// Another user's ID token must not sign this user out unasked
		// (RP-Initiated Logout §6).
		{name: "hint of another user", method: http.MethodGet, form: url.Values{"id_token_hint": {mallorys}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "confirm"},
		{name: "hint of another user, POST without CSRF token", method: http.MethodPost, form: url.Values{"id_token_hint": {mallorys}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "forbidden"},
		{name: "hint of another user, confirmed", method: http.MethodPost, form: url.Values{"id_token_hint": {mallorys}, "post_logout_redirect_uri": {appLogout}, "state": {state}, "csrf_token": {csrf}}, want: "redirect", hinted: true},
		{name: "hint without a subject", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { delete(c, "sub") })}}, want: "confirm"},
		{name: "hint and unregistered redirect", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {state}}, want: "error"},
		{name: "hint and a login redirect_uri", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appRedirect}}, want: "error"},
		// Registered means the exact string: no prefix, suffix, query,
		// case or scheme variant.
		{name: "redirect with a trailing slash", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout + "/"}}, want: "error"},
		{name: "redirect with a longer path", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout + "/evil"}}, want: "error"},
		{name: "redirect with a query added", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout + "?next=https://evil.example/"}}, want: "error"},
		{name: "redirect with a fragment added", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout + "#x"}}, want: "error"},
		{name: "redirect with the host in capitals", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://APP.example.com/signed-out"}}, want: "error"},
		{name: "redirect over http", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://app.example.com/signed-out"}}, want: "error"},
		{name: "redirect with user info", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://app.example.com@evil.example/signed-out"}}, want: "error"},
		{name: "hint and redirect registered for another client", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = []string{"nobody"} })}, "post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "hint with another client_id", method: http.MethodGet, form: url.Values{"id_token_hint": {idToken}, "client_id": {"other"}, "post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "hint from another issuer", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })}, "post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "hint for two audiences", method: http.MethodGet, form: url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = []string{appID, "other"} })}, "post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "hint signed by another key", method: http.MethodGet, form: url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "hint that is not a JWT", method: http.MethodGet, form: url.Values{"id_token_hint": {"garbage"}}, want: "error"},
		{name: "redirect without a client", method: http.MethodGet, form: url.Values{"post_logout_redirect_uri": {appLogout}}, want: "error"},
		{name: "client_id and unregistered redirect", method: http.MethodPost, form: url.Values{"client_id": {appID}, "post_logout_redirect_uri": {"https://evil.example/"}, "csrf_token": {csrf}}, want: "error"},
		{name: "unknown client_id and redirect", method: http.MethodPost, form: url.Values{"client_id": {"nobody"}, "post_logout_redirect_uri": {appLogout}, "csrf_token": {csrf}}, want: "error"},
		{name: "GET without a hint", method: http.MethodGet, form: url.Values{}, want: "confirm"},
		{name: "GET with client_id and redirect, no hint", method: http.MethodGet, form: url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "confirm"},
		{name: "GET with a forged CSRF token", method: http.MethodGet, form: url.Values{"csrf_token": {"forged"}}, want: "confirm"},
		{name: "GET without a hint, nobody signed in", method: http.MethodGet, form: url.Values{}, nobody: true, want: "confirm"},
		{name: "POST without a hint", method: http.MethodPost, form: url.Values{"csrf_token": {csrf}}, want: "signed out"},
		{name: "POST with client_id and redirect, no hint", method: http.MethodPost, form: url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}, "csrf_token": {csrf}}, want: "redirect"},
		{name: "POST without a CSRF token", method: http.MethodPost, form: url.Values{}, want: "forbidden"},
		{name: "POST with a wrong CSRF token", method: http.MethodPost, form: url.Values{"csrf_token": {csrfTokenOf("sub-mallory")}}, want: "forbidden"},
		{name: "POST with the CSRF token in the query", method: http.MethodPost, form: url.Values{}, query: url.Values{"csrf_token": {csrf}}, want: "forbidden"},
		{name: "POST with client_id and redirect, no CSRF token", method: http.MethodPost, form: url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, want: "forbidden"},
		{name: "POST without a CSRF token, nobody signed in", method: http.MethodPost, form: url.Values{}, nobody: true, want: "signed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.sessions.signIn(u.ID, e.clock.Now())
			if tc.nobody {
				e.sessions.signOut()
			}
			e.audit.take()
			before := e.sessions.logoutCount()
			var r *http.Request
			if tc.method == http.MethodPost {
				r = httptest.NewRequest(http.MethodPost, "/oauth2/logout?"+tc.query.Encode(), strings.NewReader(tc.form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(http.MethodGet, "/oauth2/logout?"+tc.form.Encode(), nil)
			}
			rec := e.serve(r)
			loggedOut := e.sessions.logoutCount() - before
			body := rec.Body.String()

			switch tc.want {
			case "redirect":
				loc := mustRedirect(t, rec)
				if want := appLogout + "?state=" + state; loc.String() != want {
					t.Errorf("redirect: got %q, want %q", loc, want)
				}
			case "signed out":
				if rec.Code != http.StatusOK || !strings.Contains(body, "You are signed out") {
					t.Errorf("got %d, want the signed-out page:\n%s", rec.Code, body)
				}
			case "confirm":
				if rec.Code != http.StatusOK || !strings.Contains(body, `<form method="post" action="/oauth2/logout">`) {
					t.Errorf("got %d, want the confirmation form:\n%s", rec.Code, body)
				}
				for k := range tc.form {
					if k != "csrf_token" && !strings.Contains(body, `name="`+k+`" value="`+tc.form.Get(k)+`"`) {
						t.Errorf("confirmation form does not carry %s=%s", k, tc.form.Get(k))
					}
				}
				// The form carries the login session's CSRF token, and no
				// other.
				hasToken := strings.Contains(body, `name="csrf_token" value="`+csrf+`"`)
				if hasToken == tc.nobody {
					t.Errorf("confirmation form carries the CSRF token: %v, want %v", hasToken, !tc.nobody)
				}
				if n := strings.Count(body, `name="csrf_token"`); n > 1 || strings.Contains(body, "forged") {
					t.Errorf("confirmation form carries %d CSRF tokens, or the forged one:\n%s", n, body)
				}
			case "forbidden":
				wantErrorPage(t, rec, http.StatusForbidden)
			case "error":
				wantErrorPage(t, rec, http.StatusBadRequest)
			}
			wantLoggedOut := 0
			var wantEvents []storage.AuditEvent
			if tc.want == "redirect" || tc.want == "signed out" {
				wantLoggedOut = 1
				ev := storage.AuditEvent{Event: "logout", Outcome: "success", UserID: u.ID}
				if tc.nobody {
					ev.UserID = ""
				}
				if tc.hinted {
					ev.ClientID = appID
				}
				wantEvents = append(wantEvents, ev)
			}
			if loggedOut != wantLoggedOut {
				t.Errorf("Logout called %d times, want %d", loggedOut, wantLoggedOut)
			}
			e.audit.wantEvents(t, wantEvents, idToken, mallorys, csrf)
			if tc.want != "redirect" && rec.Header().Get("Location") != "" {
				t.Errorf("got a redirect to %q, want none", rec.Header().Get("Location"))
			}
		})
	}
}

// TestLogoutLanguage: the confirmation follows ui_locales (RP-Initiated
// Logout 1.0 §2) and carries it to the signed-out page.
func TestLogoutLanguage(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now())
	r := httptest.NewRequest(http.MethodGet, "/oauth2/logout?ui_locales=fr", nil)
	r.Header.Set("Accept-Language", "de")
	rec := e.serve(r)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, `name="ui_locales" value="fr"`) {
		t.Fatalf("got %d, want the French confirmation carrying ui_locales:\n%s", rec.Code, body)
	}
	form := url.Values{"ui_locales": {"fr"}, "csrf_token": {csrfTokenOf(u.ID)}}
	r = httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept-Language", "de")
	rec = e.serve(r)
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "Vous êtes déconnecté") {
		t.Errorf("got %d, want the French signed-out page:\n%s", rec.Code, body)
	}
}

// TestLogoutStoreUnavailable: a database outage is a 503, not "the
// redirect is not registered".
func TestLogoutStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now())
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "csrf_token": {csrfTokenOf(u.ID)}}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantErrorPage(t, e.serve(r), http.StatusServiceUnavailable)
	if n := e.sessions.logoutCount(); n != 0 {
		t.Errorf("Logout called %d times, want 0", n)
	}
	e.audit.wantEvents(t, nil)
}
