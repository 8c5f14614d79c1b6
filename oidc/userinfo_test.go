package oidc

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// userinfo sends r and decodes the JSON answer.
func (e *env) userinfo(t *testing.T, r *http.Request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	rec := e.serve(r)
	body := map[string]any{}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("userinfo answered %d %q: %v", rec.Code, rec.Body, err)
	}
	return rec, body
}

func userinfoGET(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// wantBearerError checks an RFC 6750 §3 error answer.
func wantBearerError(t *testing.T, rec *httptest.ResponseRecorder, body map[string]any, status int, code string) {
	t.Helper()
	if rec.Code != status || body["error"] != code {
		t.Errorf("got %d %v, want %d %s", rec.Code, body["error"], status, code)
	}
	if h := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") || !strings.Contains(h, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate: got %q, want Bearer error=%q", h, code)
	}
	if _, ok := body["sub"]; ok {
		t.Errorf("error answer leaks sub %v", body["sub"])
	}
}

// TestUserInfoTokenTransport: the header (GET or POST) and the form body
// (POST) carry the token (RFC 6750 §2.1, §2.2); the query string does not.
func TestUserInfoTokenTransport(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	token := e.tokensFor(t, u.ID, "openid email").AccessToken
	form := func(method, target string, values url.Values) *http.Request {
		r := httptest.NewRequest(method, target, strings.NewReader(values.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	withHeader := func(r *http.Request, v string) *http.Request {
		r.Header.Set("Authorization", v)
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		ok   bool
	}{
		{"GET with the header", userinfoGET(token), true},
		{"GET with a lower-case scheme", withHeader(httptest.NewRequest(http.MethodGet, "/userinfo", nil), "bearer "+token), true},
		{"POST with the header", withHeader(form(http.MethodPost, "/userinfo", url.Values{}), "Bearer "+token), true},
		{"POST with access_token in the body", form(http.MethodPost, "/userinfo", url.Values{"access_token": {token}}), true},
		{"GET with access_token in the query", httptest.NewRequest(http.MethodGet, "/userinfo?access_token="+url.QueryEscape(token), nil), false},
		{"POST with access_token in the query", form(http.MethodPost, "/userinfo?access_token="+url.QueryEscape(token), url.Values{}), false},
		{"GET without a token", httptest.NewRequest(http.MethodGet, "/userinfo", nil), false},
		{"Basic instead of Bearer", withHeader(httptest.NewRequest(http.MethodGet, "/userinfo", nil), "Basic "+token), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, body := e.userinfo(t, tc.req)
			if !tc.ok {
				if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("got %d, WWW-Authenticate %q; want 401 with a Bearer challenge", rec.Code, rec.Header().Get("WWW-Authenticate"))
				}
				if _, ok := body["sub"]; ok {
					t.Errorf("refused request got sub %v", body["sub"])
				}
				return
			}
			if rec.Code != http.StatusOK || body["sub"] != u.ID || body["email"] != u.Email {
				t.Errorf("got %d %v, want 200 with sub %s and email %s", rec.Code, body, u.ID, u.Email)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
		})
	}
}

func TestUserInfoRefuses(t *testing.T) {
	tests := []struct {
		name       string
		token      func(t *testing.T, e *env) string
		wantStatus int
		wantError  string
	}{
		{"unknown token", func(*testing.T, *env) string { return "unknown.token" }, http.StatusUnauthorized, "invalid_token"},
		{"refresh token", func(t *testing.T, e *env) string {
			return e.tokensFor(t, "sub-alice", "openid offline_access").RefreshToken
		}, http.StatusUnauthorized, "invalid_token"},
		{"token without openid", func(t *testing.T, e *env) string {
			return e.tokensFor(t, "sub-alice", "profile email").AccessToken
		}, http.StatusForbidden, "insufficient_scope"},
		{"client_credentials token", func(t *testing.T, e *env) string {
			rec := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}, basic(appID, appSecret))
			return decodeToken(t, rec).AccessToken
		}, http.StatusForbidden, "insufficient_scope"},
		{"user disabled", func(t *testing.T, e *env) string {
			token := e.tokensFor(t, "sub-alice", "openid profile").AccessToken
			if err := e.store.SetUserDisabled(context.Background(), "sub-alice", true); err != nil {
				t.Fatal(err)
			}
			return token
		}, http.StatusUnauthorized, "invalid_token"},
		// Disabled behind the Store's back, so the token itself survives:
		// userinfo must still look at the user.
		{"user disabled, token kept", func(t *testing.T, e *env) string {
			token := e.tokensFor(t, "sub-alice", "openid profile").AccessToken
			if _, err := e.store.DB().Exec(`UPDATE users SET disabled = TRUE WHERE id = ?`, "sub-alice"); err != nil {
				t.Fatal(err)
			}
			if !e.active(t, token) {
				t.Fatal("token inactive after the raw update; the case tests nothing")
			}
			return token
		}, http.StatusUnauthorized, "invalid_token"},
		{"user deleted, token kept", func(t *testing.T, e *env) string {
			token := e.tokensFor(t, "sub-alice", "openid profile").AccessToken
			if _, err := e.store.DB().Exec(`DELETE FROM users WHERE id = ?`, "sub-alice"); err != nil {
				t.Fatal(err)
			}
			return token
		}, http.StatusUnauthorized, "invalid_token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			e.addUser("alice")
			token := tc.token(t, e)
			if token == "" {
				t.Fatal("no token to present")
			}
			rec, body := e.userinfo(t, userinfoGET(token))
			wantBearerError(t, rec, body, tc.wantStatus, tc.wantError)
		})
	}
}

// TestUserInfoClaims: each scope releases its claims and no others
// (OpenID Connect Core §5.4).
func TestUserInfoClaims(t *testing.T) {
	tests := []struct {
		scope string
		want  []string
	}{
		{"openid", []string{"sub"}},
		{"openid email", []string{"sub", "email", "email_verified"}},
		{"openid profile", []string{"sub", "name", "preferred_username"}},
		{"openid groups", []string{"sub", "groups"}},
		{"openid offline_access", []string{"sub"}},
		{"openid profile email groups", []string{"sub", "email", "email_verified", "name", "preferred_username", "groups"}},
	}
	for _, tc := range tests {
		t.Run(tc.scope, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			rec, body := e.userinfo(t, userinfoGET(e.tokensFor(t, u.ID, tc.scope).AccessToken))
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d %v, want 200", rec.Code, body)
			}
			got := slices.Sorted(maps.Keys(body))
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("claims: got %v, want %v", got, want)
			}
			wantValues := map[string]any{
				"sub": u.ID, "email": u.Email, "email_verified": true, "name": u.Name,
				"preferred_username": u.Username, "groups": []any{"staff", "admins"},
			}
			for k, v := range body {
				if w, ok := wantValues[k]; ok && !jsonEqual(v, w) {
					t.Errorf("%s: got %v, want %v", k, v, w)
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
