package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
)

func TestDiscovery(t *testing.T) {
	clock := newFakeClock()
	store := storagetest.New(t, storagetest.SQLiteDSN(t), clock.Now)
	pages := parsePages(t)
	tests := []struct {
		configured, want string
	}{
		{"https://id.example.com", "https://id.example.com"},
		{"https://id.example.com/", "https://id.example.com"},
		{"https://example.com/sso", "https://example.com/sso"},
	}
	for _, tc := range tests {
		t.Run(tc.configured, func(t *testing.T) {
			cfg := testConfig(store, clock, &fakeSessions{}, nil, pages)
			cfg.Issuer = tc.configured
			p, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			rec := httptest.NewRecorder()
			p.Discovery().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("discovery document is not JSON: %v\n%s", err, rec.Body)
			}
			if doc["issuer"] != tc.want {
				t.Errorf("issuer: got %v, want %q", doc["issuer"], tc.want)
			}
			for field, path := range map[string]string{
				"authorization_endpoint":                "/oauth2/auth",
				"token_endpoint":                        "/oauth2/token",
				"userinfo_endpoint":                     "/userinfo",
				"jwks_uri":                              "/.well-known/jwks.json",
				"revocation_endpoint":                   "/oauth2/revoke",
				"introspection_endpoint":                "/oauth2/introspect",
				"end_session_endpoint":                  "/oauth2/logout",
				"pushed_authorization_request_endpoint": "/oauth2/par",
			} {
				if got := doc[field]; got != tc.want+path {
					t.Errorf("%s: got %v, want %s", field, got, tc.want+path)
				}
			}
			list := func(field string) []string {
				t.Helper()
				raw, ok := doc[field].([]any)
				if !ok {
					t.Errorf("%s: got %v, want a list", field, doc[field])
					return nil
				}
				var out []string
				for _, v := range raw {
					s, _ := v.(string)
					out = append(out, s)
				}
				return out
			}
			if got := list("response_types_supported"); !slices.Equal(got, []string{"code"}) {
				t.Errorf("response_types_supported: got %v, want [code] (no token, no id_token)", got)
			}
			if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
				t.Errorf("code_challenge_methods_supported: got %v, want [S256] (no plain)", got)
			}
			if got := list("id_token_signing_alg_values_supported"); !slices.Equal(got, []string{"RS256", "ES256"}) {
				t.Errorf("id_token_signing_alg_values_supported: got %v, want [RS256 ES256] (RS256 first: every client has it)", got)
			}
			// Clients may push (RFC 9126 §5); only some must, per client.
			if got, ok := doc["require_pushed_authorization_requests"]; !ok || got != false {
				t.Errorf("require_pushed_authorization_requests: got %v, want false", got)
			}
			grants := list("grant_types_supported")
			for _, refused := range []string{"password", "implicit"} {
				if slices.Contains(grants, refused) {
					t.Errorf("grant_types_supported: got %v, want no %s", grants, refused)
				}
			}
			if !slices.Contains(grants, "authorization_code") {
				t.Errorf("grant_types_supported: got %v, want authorization_code", grants)
			}
			if got := list("response_modes_supported"); slices.Contains(got, "fragment") {
				t.Errorf("response_modes_supported: got %v, want no fragment (no implicit flow)", got)
			}
			if got := list("scopes_supported"); !slices.Equal(got, SupportedScopes) {
				t.Errorf("scopes_supported: got %v, want %v", got, SupportedScopes)
			}
			// The TOTP class first: the one every client may rely on.
			wantACRs := []string{storage.ACRTOTP, storage.ACRRecoveryCode, storage.ACRRememberedDevice}
			if got := list("acr_values_supported"); !slices.Equal(got, wantACRs) {
				t.Errorf("acr_values_supported: got %v, want %v", got, wantACRs)
			}
			if got := list("claims_supported"); !slices.Contains(got, "acr") || !slices.Contains(got, "amr") {
				t.Errorf("claims_supported: got %v, want acr and amr among them", got)
			}
			if got := list("ui_locales_supported"); !slices.Equal(got, []string{"en", "fr", "de"}) {
				t.Errorf("ui_locales_supported: got %v, want [en fr de]", got)
			}
		})
	}
}
