package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/twostep/twostep/storage"
)

// introspection is the JSON of an introspection answer (RFC 7662 §2.2).
type introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id"`
	Subject   string `json:"sub"`
	Scope     string `json:"scope"`
	TokenType string `json:"token_type"`
	Error     string `json:"error"`
}

// introspect asks about token as the app, authenticated with c.
func (e *env) introspect(t *testing.T, token string, c credentials) (*httptest.ResponseRecorder, introspection) {
	t.Helper()
	rec := e.postForm("/oauth2/introspect", url.Values{"token": {token}}, c)
	var in introspection
	if err := json.Unmarshal(rec.Body.Bytes(), &in); err != nil {
		t.Fatalf("introspection response %q: %v", rec.Body, err)
	}
	return rec, in
}

// active reports whether the app's introspection says token is
// active.
func (e *env) active(t *testing.T, token string) bool {
	t.Helper()
	rec, in := e.introspect(t, token, basic(appID, appSecret))
	if rec.Code != http.StatusOK {
		t.Fatalf("introspect: got %d %s, want 200", rec.Code, rec.Body)
	}
	return in.Active
}

func TestTokenClientCredentials(t *testing.T) {
	tests := []struct {
		name string
		auth credentials
	}{
		{"client_secret_basic", basic(appID, appSecret)},
		{"client_secret_post", inForm(appID, appSecret)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(false)
			rec := e.postForm("/oauth2/token", url.Values{
				"grant_type": {"client_credentials"}, "scope": {"openid offline_access profile email"},
			}, tc.auth)
			tr := decodeToken(t, rec)
			if rec.Code != http.StatusOK || tr.AccessToken == "" {
				t.Fatalf("got %d %s, want 200 with an access token", rec.Code, rec.Body)
			}
			if !strings.EqualFold(tr.TokenType, "bearer") {
				t.Errorf("token_type: got %q, want bearer", tr.TokenType)
			}
			// A machine speaks for no user: no ID token, no refresh token,
			// never openid or offline_access.
			if tr.IDToken != "" || tr.RefreshToken != "" {
				t.Errorf("client_credentials issued id_token %q, refresh_token %q; want neither", tr.IDToken, tr.RefreshToken)
			}
			if got := strings.Fields(tr.Scope); !slices.Equal(got, []string{"profile", "email"}) {
				t.Errorf("granted scope: got %q, want profile email", tr.Scope)
			}
			_, in := e.introspect(t, tr.AccessToken, basic(appID, appSecret))
			if !in.Active || in.ClientID != appID || in.Subject != appID {
				t.Errorf("introspection: got %+v, want active, client_id and sub %s", in, appID)
			}
			if scopes := strings.Fields(in.Scope); slices.Contains(scopes, "openid") || slices.Contains(scopes, "offline_access") {
				t.Errorf("introspected scope: got %q, want no openid or offline_access", in.Scope)
			}
			e.audit.wantEvents(t, []storage.AuditEvent{
				{Event: "token.issued", Outcome: "success", ClientID: appID, Detail: "client_credentials"},
			}, appSecret, tr.AccessToken)
		})
	}
}

func TestTokenRefused(t *testing.T) {
	e := newEnv(t)
	e.addApp(false)
	pub := appClient("spa")
	pub.Public = true // registered with client_credentials anyway
	e.addClient(pub, "")
	tests := []struct {
		name       string
		form       url.Values
		auth       credentials
		wantStatus int
		wantError  string
	}{
		{"wrong secret, basic", url.Values{"grant_type": {"client_credentials"}}, basic(appID, "wrong"), http.StatusUnauthorized, "invalid_client"},
		{"wrong secret, post", url.Values{"grant_type": {"client_credentials"}}, inForm(appID, "wrong"), http.StatusUnauthorized, "invalid_client"},
		{"no secret", url.Values{"grant_type": {"client_credentials"}}, publicClient(appID), http.StatusUnauthorized, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}}, basic("nobody", appSecret), http.StatusUnauthorized, "invalid_client"},
		{"public client, client_credentials", url.Values{"grant_type": {"client_credentials"}}, publicClient("spa"), http.StatusBadRequest, "invalid_grant"},
		{"scope the client may not ask", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, basic(appID, appSecret), http.StatusBadRequest, "invalid_scope"},
		// No resource owner password credentials grant: it would skip the
		// second factor (RFC 6749 §5.2: unsupported_grant_type).
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw"}}, basic(appID, appSecret), http.StatusBadRequest, "unsupported_grant_type"},
		{"implicit as a grant", url.Values{"grant_type": {"implicit"}}, basic(appID, appSecret), http.StatusBadRequest, "unsupported_grant_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.postForm("/oauth2/token", tc.form, tc.auth)
			tr := decodeToken(t, rec)
			if rec.Code != tc.wantStatus || tr.Error != tc.wantError {
				t.Errorf("got %d %q, want %d %s", rec.Code, tr.Error, tc.wantStatus, tc.wantError)
			}
			if tr.AccessToken != "" {
				t.Errorf("got an access token, want none")
			}
		})
	}
	e.audit.wantEvents(t, nil)
}

// TestTokenAuthorizationCode checks the PKCE verifier and the client at
// the code exchange; reuse of a code is covered end to end.
func TestTokenAuthorizationCode(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(form url.Values)
		auth      credentials
		wantError string // "" for success
	}{
		{"right verifier", func(url.Values) {}, basic(appID, appSecret), ""},
		{"client_secret_post", func(url.Values) {}, inForm(appID, appSecret), ""},
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 64)) }, basic(appID, appSecret), "invalid_grant"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, basic(appID, appSecret), "invalid_grant"},
		{"other redirect_uri", func(f url.Values) { f.Set("redirect_uri", "https://app.example.com/other") }, basic(appID, appSecret), "invalid_grant"},
		{"wrong secret", func(url.Values) {}, basic(appID, "wrong"), "invalid_client"},
		{"another client", func(url.Values) {}, basic("other", appSecret), "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			e.addClient(appClient("other"), appSecret)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now())
			ar := newAuthRequest(t, appID)
			c := codeFrom(t, e.get(ar.url()), ar)
			form := url.Values{
				"grant_type": {"authorization_code"}, "code": {c},
				"redirect_uri": {appRedirect}, "code_verifier": {ar.verifier},
			}
			tc.edit(form)
			rec := e.postForm("/oauth2/token", form, tc.auth)
			tr := decodeToken(t, rec)
			if tc.wantError == "" {
				if rec.Code != http.StatusOK || tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
					t.Fatalf("got %d %s, want access, ID and refresh tokens", rec.Code, rec.Body)
				}
				e.audit.wantEvents(t, []storage.AuditEvent{
					{Event: "token.issued", Outcome: "success", UserID: u.ID, ClientID: appID, Detail: "authorization_code"},
				}, appSecret, c, ar.verifier, tr.AccessToken, tr.RefreshToken, tr.IDToken)
				return
			}
			if tr.Error != tc.wantError || tr.AccessToken != "" {
				t.Errorf("got %d %s, want %s and no token", rec.Code, rec.Body, tc.wantError)
			}
			e.audit.wantEvents(t, nil)
		})
	}
}

func TestIntrospect(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	spa := appClient("spa")
	spa.Public = true
	e.addClient(spa, "")
	u := e.addUser("alice")
	tr := e.tokensFor(t, u.ID, "openid profile offline_access")

	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	basicAuth := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	tests := []struct {
		name       string
		query      string
		form       url.Values
		auth       func(*http.Request)
		wantStatus int
		wantActive bool
	}{
		{"no authentication", "", url.Values{"token": {tr.AccessToken}}, func(*http.Request) {}, http.StatusUnauthorized, false},
		{"a bearer token as authentication", "", url.Values{"token": {tr.RefreshToken}}, bearer(tr.AccessToken), http.StatusUnauthorized, false},
		{"client_secret_post", "", url.Values{"token": {tr.AccessToken}, "client_id": {appID}, "client_secret": {appSecret}}, func(*http.Request) {}, http.StatusUnauthorized, false},
		{"wrong secret", "", url.Values{"token": {tr.AccessToken}}, basicAuth(appID, "wrong"), http.StatusUnauthorized, false},
		{"public client without a secret", "", url.Values{"token": {tr.AccessToken}}, basicAuth("spa", ""), http.StatusUnauthorized, false},
		// fosite takes an access_token parameter as the caller's bearer
		// credential before it looks at Basic; a Basic header must not
		// let that through.
		{"bogus Basic with an access_token parameter", "", url.Values{"token": {tr.RefreshToken}, "access_token": {tr.AccessToken}}, basicAuth("nobody", "nothing"), http.StatusUnauthorized, false},
		{"bogus Basic with access_token in the query", "?access_token=" + url.QueryEscape(tr.AccessToken), url.Values{"token": {tr.RefreshToken}}, basicAuth("nobody", "nothing"), http.StatusUnauthorized, false},
		{"access token", "", url.Values{"token": {tr.AccessToken}}, basicAuth(appID, appSecret), http.StatusOK, true},
		{"refresh token", "", url.Values{"token": {tr.RefreshToken}}, basicAuth(appID, appSecret), http.StatusOK, true},
		{"garbage", "", url.Values{"token": {"garbage.garbage"}}, basicAuth(appID, appSecret), http.StatusOK, false},
		{"no token", "", url.Values{"token_type_hint": {"access_token"}}, basicAuth(appID, appSecret), http.StatusOK, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect"+tc.query, strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			tc.auth(r)
			rec := e.serve(r)
			var in introspection
			if err := json.Unmarshal(rec.Body.Bytes(), &in); err != nil {
				t.Fatalf("response %q: %v", rec.Body, err)
			}
			if rec.Code != tc.wantStatus || in.Active != tc.wantActive {
				t.Errorf("got %d active=%v (%s), want %d active=%v", rec.Code, in.Active, rec.Body, tc.wantStatus, tc.wantActive)
			}
			if tc.wantStatus == http.StatusUnauthorized && in.Subject != "" {
				t.Errorf("refused introspection leaked sub %q", in.Subject)
			}
			if tc.wantActive && (in.Subject != u.ID || in.ClientID != appID) {
				t.Errorf("got sub %q client_id %q, want %s, %s", in.Subject, in.ClientID, u.ID, appID)
			}
		})
	}
}

// TestRevoke: fosite revokes the whole grant a token belongs to (RFC 7009
// §2.1 requires it for a refresh token and allows it for an access token);
// another client's request changes nothing.
func TestRevoke(t *testing.T) {
	accessToken := func(tr tokenResponse) string { return tr.AccessToken }
	tests := []struct {
		name       string
		revoke     func(tr tokenResponse) string
		auth       credentials
		wantStatus int
		wantActive bool // the tokens are active after
		wantAudit  bool // "token.revoked" is recorded
	}{
		{"access token", accessToken, basic(appID, appSecret), http.StatusOK, false, true},
		{"refresh token", func(tr tokenResponse) string { return tr.RefreshToken }, basic(appID, appSecret), http.StatusOK, false, true},
		{"by client_secret_post", accessToken, inForm(appID, appSecret), http.StatusOK, false, true},
		// 200 too: another client learns nothing about the token.
		{"by another client", accessToken, basic("other", appSecret), http.StatusOK, true, false},
		{"with a wrong secret", accessToken, basic(appID, "wrong"), http.StatusUnauthorized, true, false},
		// An unknown token counts as revoked (RFC 7009 §2.2).
		{"unknown token", func(tokenResponse) string { return "unknown.token" }, basic(appID, appSecret), http.StatusOK, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			e.addClient(appClient("other"), appSecret)
			u := e.addUser("alice")
			tr := e.tokensFor(t, u.ID, "openid offline_access")
			if !e.active(t, tr.AccessToken) || !e.active(t, tr.RefreshToken) {
				t.Fatal("fresh tokens are not active")
			}
			e.audit.take()
			rec := e.postForm("/oauth2/revoke", url.Values{"token": {tc.revoke(tr)}}, tc.auth)
			if rec.Code != tc.wantStatus {
				t.Errorf("revoke: got %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			var want []storage.AuditEvent
			if tc.wantAudit {
				want = []storage.AuditEvent{{Event: "token.revoked", Outcome: "success", ClientID: appID}}
			}
			e.audit.wantEvents(t, want, appSecret, tr.AccessToken, tr.RefreshToken)
			if got := e.active(t, tr.AccessToken); got != tc.wantActive {
				t.Errorf("access token active after: got %v, want %v", got, tc.wantActive)
			}
			if got := e.active(t, tr.RefreshToken); got != tc.wantActive {
				t.Errorf("refresh token active after: got %v, want %v", got, tc.wantActive)
			}
			// What introspection says, userinfo does.
			r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
			r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			wantStatus := http.StatusUnauthorized
			if tc.wantActive {
				wantStatus = http.StatusOK
			}
			if rec := e.serve(r); rec.Code != wantStatus {
				t.Errorf("userinfo after: got %d, want %d", rec.Code, wantStatus)
			}
			// And the refresh grant.
			rec = e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, basic(appID, appSecret))
			if got := rec.Code == http.StatusOK; got != tc.wantActive {
				t.Errorf("refresh after: got %d %s, want success %v", rec.Code, rec.Body, tc.wantActive)
			}
			var wantIssued []storage.AuditEvent
			if tc.wantActive {
				wantIssued = []storage.AuditEvent{{Event: "token.issued", Outcome: "success", UserID: u.ID, ClientID: appID, Detail: "refresh_token"}}
			}
			e.audit.wantEvents(t, wantIssued, appSecret, tr.AccessToken, tr.RefreshToken)
		})
	}
}
