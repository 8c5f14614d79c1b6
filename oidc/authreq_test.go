package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// idToken signs claims for a user with s, as an ID token of appID from
// twostep; edit changes them first.
func idToken(t *testing.T, s jwt.Signer, sub string, edit func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": testIssuer, "sub": sub, "aud": []string{appID},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(claims)
	}
	raw, _, err := s.Generate(context.Background(), claims, &jwt.Headers{})
	if err != nil {
		t.Fatalf("sign ID token: %v", err)
	}
	return raw
}

// foreignSigner signs with a key twostep never had, under the kid of
// twostep's current key.
func foreignSigner(t *testing.T, kid string) jwt.Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return kidSigner{&jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}, kid}
}

// kidSigner adds a kid to the header of what it signs.
type kidSigner struct {
	jwt.Signer
	kid string
}

func (s kidSigner) Generate(ctx context.Context, claims jwt.MapClaims, _ jwt.Mapper) (string, string, error) {
	return s.Signer.Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"kid": s.kid}})
}

// unsigned returns a JWT with alg none.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	part := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return part(map[string]any{"alg": "none", "typ": "JWT"}) + "." + part(claims) + "."
}

// TestAuthorizeIDTokenHint: id_token_hint names the user the client
// expects (OpenID Connect Core §3.1.2.1). Someone else signed in must log
// in again, or with prompt=none gets login_required; a hint twostep did
// not issue is an invalid request.
func TestAuthorizeIDTokenHint(t *testing.T) {
	tests := []struct {
		name   string
		hint   func(e *env) string
		signIn string // username signed in an hour ago, "" for nobody
		prompt string
		want   string // "code", "login" or an error code
	}{
		{"the signed-in user, prompt=none", func(e *env) string { return idToken(t, e.p.Keys(), "sub-alice", nil) }, "alice", "none", "code"},
		{"the signed-in user", func(e *env) string { return idToken(t, e.p.Keys(), "sub-alice", nil) }, "alice", "", "code"},
		{"expired, the signed-in user", func(e *env) string {
			return idToken(t, e.p.Keys(), "sub-alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}, "alice", "none", "code"},
		{"someone else, prompt=none", func(e *env) string { return idToken(t, e.p.Keys(), "sub-bob", nil) }, "alice", "none", "login_required"},
		{"someone else", func(e *env) string { return idToken(t, e.p.Keys(), "sub-bob", nil) }, "alice", "", "login"},
		{"nobody signed in, prompt=none", func(e *env) string { return idToken(t, e.p.Keys(), "sub-alice", nil) }, "", "none", "login_required"},
		{"nobody signed in", func(e *env) string { return idToken(t, e.p.Keys(), "sub-alice", nil) }, "", "", "login"},
		{"not a JWT", func(*env) string { return "not-a-jwt" }, "alice", "none", "invalid_request"},
		{"alg none", func(*env) string {
			return unsigned(t, map[string]any{"iss": testIssuer, "sub": "sub-alice", "aud": appID, "exp": time.Now().Add(time.Hour).Unix()})
		}, "alice", "none", "invalid_request"},
		{"a foreign key", func(e *env) string {
			kid, _ := jwtHeader(t, idToken(t, e.p.Keys(), "sub-alice", nil))["kid"].(string)
			return idToken(t, foreignSigner(t, kid), "sub-alice", nil)
		}, "alice", "none", "invalid_request"},
		{"an unknown key", func(e *env) string { return idToken(t, foreignSigner(t, "no-such-kid"), "sub-alice", nil) }, "alice", "none", "invalid_request"},
		{"another issuer", func(e *env) string {
			return idToken(t, e.p.Keys(), "sub-alice", func(c jwt.MapClaims) { c["iss"] = "https://other.example.com" })
		}, "alice", "none", "invalid_request"},
		{"no subject", func(e *env) string {
			return idToken(t, e.p.Keys(), "", nil)
		}, "alice", "none", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			users := map[string]storage.User{"alice": e.addUser("alice"), "bob": e.addUser("bob")}
			if tc.signIn != "" {
				e.sessions.signIn(users[tc.signIn].ID, e.clock.Now().Add(-time.Hour))
			}
			ar := newAuthRequest(t, appID).with("id_token_hint", tc.hint(e)).with("prompt", tc.prompt)
			rec := e.get(ar.url())
			switch tc.want {
			case "login":
				pendingID(t, rec, "/login")
			case "code":
				// fosite checks the hint again when it issues the ID token.
				rec, tr := e.exchange(t, ar, codeFrom(t, rec, ar), basic(appID, appSecret))
				if rec.Code != http.StatusOK || tr.IDToken == "" {
					t.Errorf("exchange: got %d %s, want an ID token", rec.Code, rec.Body)
				}
			default:
				wantErrorRedirect(t, rec, ar, tc.want)
			}
		})
	}
}

// TestAuthorizeIDTokenHintAfterLogin: after a hint for someone else sent
// the browser to the login, the hinted user gets a code; anyone else,
// though freshly signed in, login_required rather than another login.
func TestAuthorizeIDTokenHintAfterLogin(t *testing.T) {
	for _, tc := range []struct {
		loginAs, want string
	}{
		{"bob", "code"},
		{"alice", "login_required"},
	} {
		t.Run(tc.loginAs, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			users := map[string]storage.User{"alice": e.addUser("alice"), "bob": e.addUser("bob")}
			e.sessions.signIn(users["alice"].ID, e.clock.Now().Add(-time.Hour))
			ar := newAuthRequest(t, appID).with("id_token_hint", idToken(t, e.p.Keys(), users["bob"].ID, nil))
			id := pendingID(t, e.get(ar.url()), "/login")
			kept, err := e.store.GetAuthRequest(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			e.sessions.signIn(users[tc.loginAs].ID, kept.RequestedAt.Add(time.Second))
			rec := e.resume(id)
			if tc.want == "code" {
				codeFrom(t, rec, ar)
				return
			}
			if q := clientRedirect(t, rec); q.Get("error") != tc.want || q.Has("code") {
				t.Errorf("got %v, want error=%s and no code", q, tc.want)
			}
		})
	}
}

// TestAuthorizeRequestObject: twostep takes no request objects (discovery
// says so); a request with one gets request_not_supported or
// request_uri_not_supported at the client (OpenID Connect Core §6), or,
// with an unverified client or redirect_uri, twostep's error page.
func TestAuthorizeRequestObject(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)
	object := unsigned(t, map[string]any{"client_id": appID, "response_type": "code"})
	tests := []struct {
		name string
		ar   authRequest
		want string // an error code, or "page"
	}{
		{"request", ar.with("request", object), "request_not_supported"},
		{"request, without openid", ar.with("request", object).with("scope", "profile"), "request_not_supported"},
		{"request_uri", ar.with("request_uri", "https://app.example.com/request.jwt"), "request_uri_not_supported"},
		{"request_uri, without openid", ar.with("request_uri", "https://app.example.com/request.jwt").with("scope", "profile"), "request_uri_not_supported"},
		{"request and request_uri", ar.with("request", object).with("request_uri", "https://app.example.com/request.jwt"), "request_not_supported"},
		{"request, and an unregistered redirect_uri", ar.with("request", object).with("redirect_uri", "https://evil.example/cb"), "page"},
		{"request, and an unknown client", ar.with("request", object).with("client_id", "nobody"), "page"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.get(tc.ar.url())
			if tc.want == "page" {
				wantErrorPage(t, rec, http.StatusBadRequest)
				return
			}
			q := clientRedirect(t, rec)
			if q.Get("error") != tc.want || q.Get("state") != tc.ar.state() || q.Get("iss") != testIssuer || q.Has("code") {
				t.Errorf("got %v, want error=%s with the state and iss, and no code", q, tc.want)
			}
		})
	}
	if n := e.countAuthRequests(t); n != 0 {
		t.Errorf("kept %d requests with request objects, want 0", n)
	}
}

func TestRequestObjectError(t *testing.T) {
	tests := []struct {
		name string
		form url.Values
		want string // "" for none
	}{
		{"neither", url.Values{}, ""},
		{"empty request", url.Values{"request": {""}}, ""},
		{"request", url.Values{"request": {"x.y.z"}}, "request_not_supported"},
		{"request_uri", url.Values{"request_uri": {"https://app.example.com/r"}}, "request_uri_not_supported"},
		{"pushed request's request_uri", url.Values{"request_uri": {parURIPrefix + "abc"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := requestObjectError(tc.form)
			got := ""
			if err != nil {
				got = oauthError(err).ErrorField
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuthorizePromptNoneAlone: prompt=none with another value is an
// invalid request (OpenID Connect Core §3.1.2.1), before any login.
func TestAuthorizePromptNoneAlone(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	for _, prompt := range []string{"none login", "consent none", "none none login"} {
		t.Run(prompt, func(t *testing.T) {
			ar := newAuthRequest(t, appID).with("prompt", prompt)
			if q := clientRedirect(t, e.get(ar.url())); q.Get("error") != "invalid_request" {
				t.Errorf("got %v, want error=invalid_request", q)
			}
		})
	}
}

// TestClaimsParameter: the claims parameter (OpenID Connect Core §5.5)
// releases the user claims it names in userinfo or in the ID token, with
// or without their scope, where the client is registered for the scope;
// what userinfo releases stays with the tokens the refresh grant issues.
func TestClaimsParameter(t *testing.T) {
	tests := []struct {
		name         string
		scope        string
		claims       string
		clientScopes []string
		wantUserInfo []string // claims besides sub
		wantIDToken  []string // user claims
	}{
		{"userinfo name, essential", "openid", `{"userinfo":{"name":{"essential":true}}}`, nil, []string{"name"}, nil},
		{"id_token email", "openid", `{"id_token":{"email":null}}`, nil, nil, []string{"email"}},
		{"both, and a scope", "openid groups", `{"userinfo":{"email_verified":null},"id_token":{"preferred_username":{"essential":false}}}`, nil,
			[]string{"email_verified", "groups"}, []string{"groups", "preferred_username"}},
		{"claims twostep does not hold", "openid", `{"userinfo":{"phone_number":null,"address":{"essential":true}},"id_token":{"birthdate":null}}`, nil, nil, nil},
		{"scope the client is not registered for", "openid", `{"userinfo":{"name":null,"email":null}}`, []string{"openid", "email", "offline_access"}, []string{"email"}, nil},
		{"other members", "openid", `{"userinfo":{"name":null},"other":{"email":null}}`, nil, []string{"name"}, nil},
		{"JSON null", "openid", `null`, nil, nil, nil},
	}
	userKeys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			if slices.Contains(storage.UserClaims(), k) {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := appClient(appID)
			c.SkipConsent = true
			if tc.clientScopes != nil {
				c.Scopes = tc.clientScopes
			}
			e.addClient(c, appSecret)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			ar := newAuthRequest(t, appID).with("scope", tc.scope+" offline_access").with("claims", tc.claims)
			rec, tr := e.exchange(t, ar, codeFrom(t, e.get(ar.url()), ar), basic(appID, appSecret))
			if rec.Code != http.StatusOK {
				t.Fatalf("exchange: got %d %s", rec.Code, rec.Body)
			}
			if got := userKeys(jwtClaims(t, tr.IDToken)); !slices.Equal(got, tc.wantIDToken) {
				t.Errorf("ID token user claims: got %v, want %v", got, tc.wantIDToken)
			}
			for _, which := range []string{"first", "refreshed"} {
				token := tr.AccessToken
				if which == "refreshed" {
					// The refresh revokes the first access token.
					rec := e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, basic(appID, appSecret))
					if rec.Code != http.StatusOK {
						t.Fatalf("refresh: got %d %s", rec.Code, rec.Body)
					}
					token = decodeToken(t, rec).AccessToken
				}
				rec, body := e.userinfo(t, userinfoGET(token))
				if rec.Code != http.StatusOK || body["sub"] != u.ID {
					t.Fatalf("%s userinfo: got %d %v, want 200 with sub", which, rec.Code, body)
				}
				if got := userKeys(body); !slices.Equal(got, tc.wantUserInfo) {
					t.Errorf("%s userinfo claims: got %v, want %v", which, got, tc.wantUserInfo)
				}
				if v, ok := body["name"]; ok && v != u.Name {
					t.Errorf("%s userinfo name: got %v, want %q", which, v, u.Name)
				}
			}
		})
	}
}

// TestClaimsParameterRefused: a claims parameter that is not a JSON claims
// request is an invalid request; one naming another subject is treated as
// an id_token_hint for it.
func TestClaimsParameterRefused(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	tests := []struct {
		name, claims, prompt, want string
	}{
		{"not JSON", `{"userinfo":`, "", "invalid_request"},
		{"a member that is not an object", `{"userinfo":{"name":5}}`, "", "invalid_request"},
		{"userinfo not an object", `{"userinfo":["name"]}`, "", "invalid_request"},
		{"another subject, prompt=none", `{"id_token":{"sub":{"value":"sub-bob"}}}`, "none", "login_required"},
		{"the signed-in subject, prompt=none", `{"id_token":{"sub":{"value":"` + u.ID + `"}}}`, "none", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar := newAuthRequest(t, appID).with("claims", tc.claims).with("prompt", tc.prompt)
			q := clientRedirect(t, e.get(ar.url()))
			if q.Get("error") != tc.want || q.Get("state") != ar.state() {
				t.Errorf("got %v, want error=%q with the state", q, tc.want)
			}
		})
	}
}

// TestClaimsParameterConsent: a remembered grant must cover the scopes of
// the claims asked for, or the user is asked.
func TestClaimsParameterConsent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant []string
		want  string // "consent" or "code"
	}{
		{"grant without the claim's scope", []string{"openid"}, "consent"},
		{"grant with it", []string{"openid", "profile"}, "code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(false)
			u := e.addUser("alice")
			if err := e.store.SaveGrant(context.Background(), u.ID, appID, tc.grant); err != nil {
				t.Fatal(err)
			}
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			ar := newAuthRequest(t, appID).with("scope", "openid").with("claims", `{"userinfo":{"name":{"essential":true}}}`)
			rec := e.get(ar.url())
			if tc.want == "consent" {
				pendingID(t, rec, "/consent")
				return
			}
			codeFrom(t, rec, ar)
		})
	}
}
