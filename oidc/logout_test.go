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
	tests := []struct {
		name   string
		method string
		form   url.Values
		want   string // "redirect", "signed out", "confirm" or "error"
	}{
		{"hint and registered redirect", http.MethodGet, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
		{"hint and registered redirect, POST", http.MethodPost, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
		{"hint without redirect", http.MethodGet, url.Values{"id_token_hint": {idToken}}, "signed out"},
		{"hint with its client_id", http.MethodGet, url.Values{"id_token_hint": {idToken}, "client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
		{"expired hint", http.MethodGet, url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
		{"hint with a single audience string", http.MethodGet, url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = appID })}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
		{"hint and unregistered redirect", http.MethodGet, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {state}}, "error"},
		{"hint and a login redirect_uri", http.MethodGet, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appRedirect}}, "error"},
		{"hint and redirect registered for another client", http.MethodGet, url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = []string{"nobody"} })}, "post_logout_redirect_uri": {appLogout}}, "error"},
		{"hint with another client_id", http.MethodGet, url.Values{"id_token_hint": {idToken}, "client_id": {"other"}, "post_logout_redirect_uri": {appLogout}}, "error"},
		{"hint from another issuer", http.MethodGet, url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })}, "post_logout_redirect_uri": {appLogout}}, "error"},
		{"hint for two audiences", http.MethodGet, url.Values{"id_token_hint": {hint(func(c jwt.MapClaims) { c["aud"] = []string{appID, "other"} })}, "post_logout_redirect_uri": {appLogout}}, "error"},
		{"hint signed by another key", http.MethodGet, url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {appLogout}}, "error"},
		{"hint that is not a JWT", http.MethodGet, url.Values{"id_token_hint": {"garbage"}}, "error"},
		{"redirect without a client", http.MethodGet, url.Values{"post_logout_redirect_uri": {appLogout}}, "error"},
		{"client_id and unregistered redirect", http.MethodPost, url.Values{"client_id": {appID}, "post_logout_redirect_uri": {"https://evil.example/"}}, "error"},
		{"GET without a hint", http.MethodGet, url.Values{}, "confirm"},
		{"GET with client_id and redirect, no hint", http.MethodGet, url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "confirm"},
		{"POST without a hint", http.MethodPost, url.Values{}, "signed out"},
		{"POST with client_id and redirect, no hint", http.MethodPost, url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {state}}, "redirect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.sessions.signIn(u.ID, e.clock.Now())
			before := e.sessions.logoutCount()
			var r *http.Request
			if tc.method == http.MethodPost {
				r = httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(tc.form.Encode()))
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
					if !strings.Contains(body, `name="`+k+`" value="`+tc.form.Get(k)+`"`) {
						t.Errorf("confirmation form does not carry %s=%s", k, tc.form.Get(k))
					}
				}
			case "error":
				wantErrorPage(t, rec, http.StatusBadRequest)
			}
			wantLoggedOut := 0
			if tc.want == "redirect" || tc.want == "signed out" {
				wantLoggedOut = 1
			}
			if loggedOut != wantLoggedOut {
				t.Errorf("Logout called %d times, want %d", loggedOut, wantLoggedOut)
			}
			if tc.want != "redirect" && rec.Header().Get("Location") != "" {
				t.Errorf("got a redirect to %q, want none", rec.Header().Get("Location"))
			}
		})
	}
}
