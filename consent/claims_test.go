package consent

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

// TestClaimsParameterScopes: the user claims a claims parameter asks for
// (OpenID Connect Core §5.5) are released on this consent, so the page
// asks for their scopes and the grant remembers them; only where the
// client is registered for the scope, as the authorization endpoint
// releases them.
func TestClaimsParameterScopes(t *testing.T) {
	tests := []struct {
		name         string
		claims       string
		clientScopes []string
		want         []string // the grant, sorted
	}{
		{"no claims parameter", "", nil, []string{"openid"}},
		{"userinfo name", `{"userinfo":{"name":{"essential":true}}}`, nil, []string{"openid", "profile"}},
		{"id_token email and userinfo groups", `{"id_token":{"email":null},"userinfo":{"groups":null}}`, nil, []string{"email", "groups", "openid"}},
		{"claims twostep does not hold", `{"userinfo":{"phone_number":null,"sub":null}}`, nil, []string{"openid"}},
		{"scope the client is not registered for", `{"userinfo":{"name":null,"email":null}}`, []string{"openid", "email"}, []string{"email", "openid"}},
		{"not JSON (the authorization endpoint refuses it)", `{"userinfo":`, nil, []string{"openid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			client := clientID
			if tc.clientScopes != nil {
				client = "narrow"
				err := e.store.CreateClient(context.Background(), &storage.Client{
					ID: client, RedirectURIs: []string{"https://app.example.com/cb"},
					GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: tc.clientScopes,
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			e.signIn()
			err := e.store.CreateAuthRequest(context.Background(), storage.AuthRequest{
				ID: "req-1", ClientID: client, RequestedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(30 * time.Minute),
				Form: url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid"}, "state": {"state-123456"}, "claims": {tc.claims}},
			})
			if err != nil {
				t.Fatal(err)
			}
			rec := e.show("req-1")
			wantPage(t, rec, http.StatusOK)
			for _, s := range []string{"openid", "profile", "email", "groups"} {
				if got, want := strings.Contains(rec.Body.String(), scope(t, s)), slices.Contains(tc.want, s); got != want {
					t.Errorf("page lists %s: got %v, want %v", s, got, want)
				}
			}
			if rec := e.decide("req-1", csrfToken, "allow"); rec.Code != http.StatusSeeOther {
				t.Fatalf("allow: got %d, want 303", rec.Code)
			}
			g, err := e.store.GetGrant(context.Background(), userID, client)
			if err != nil {
				t.Fatal(err)
			}
			if got := sortedCopy(g.Scopes); !slices.Equal(got, tc.want) {
				t.Errorf("grant: got %v, want %v", got, tc.want)
			}
		})
	}
}
