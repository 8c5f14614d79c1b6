package oidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

// discoveryDoc fetches and decodes the discovery document of e.
func (e *env) discoveryDoc(t *testing.T) map[string]any {
	t.Helper()
	rec := e.get("/.well-known/openid-configuration")
	doc := map[string]any{}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("discovery document %q: %v", rec.Body, err)
	}
	return doc
}

// stringList returns doc[field] as strings; nil when it is not a list.
func stringList(doc map[string]any, field string) []string {
	raw, ok := doc[field].([]any)
	if !ok {
		return nil
	}
	out := []string{}
	for _, v := range raw {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestDiscoveryConformance checks the metadata the OpenID Foundation's
// conformance suite reads (OpenID Connect Discovery 1.0 §3, RFC 8414,
// RFC 9207): every field twostep's behaviour depends on, saying what it
// does.
func TestDiscoveryConformance(t *testing.T) {
	e := newEnv(t)
	doc := e.discoveryDoc(t)
	lists := []struct {
		field string
		want  []string
	}{
		{"response_types_supported", []string{"code"}},
		{"response_modes_supported", []string{"query", "form_post"}},
		{"subject_types_supported", []string{"public"}},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post", "none"}},
		{"code_challenge_methods_supported", []string{"S256"}},
		{"claim_types_supported", []string{"normal"}},
		{"grant_types_supported", grantTypes},
		{"scopes_supported", SupportedScopes},
		{"acr_values_supported", []string{storage.ACRTOTP, storage.ACRRecoveryCode, storage.ACRRememberedDevice}},
		{"ui_locales_supported", []string{"en", "fr", "de"}},
	}
	for _, tc := range lists {
		if got := stringList(doc, tc.field); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.field, doc[tc.field], tc.want)
		}
	}
	if got := stringList(doc, "scopes_supported"); !slices.Contains(got, "openid") {
		t.Errorf("scopes_supported: got %v, want openid among them", got)
	}
	if got := stringList(doc, "id_token_signing_alg_values_supported"); len(got) == 0 || !slices.Contains(got, "RS256") || slices.Contains(got, "none") {
		t.Errorf("id_token_signing_alg_values_supported: got %v, want RS256 and never none", got)
	}
	// Every claim an ID token or userinfo may carry.
	claims := stringList(doc, "claims_supported")
	for _, c := range []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
		"name", "preferred_username", "email", "email_verified", "groups"} {
		if !slices.Contains(claims, c) {
			t.Errorf("claims_supported: got %v, want %s among them", claims, c)
		}
	}
	bools := []struct {
		field string
		want  bool
	}{
		{"authorization_response_iss_parameter_supported", true},
		{"claims_parameter_supported", true},
		{"request_parameter_supported", false},
		{"request_uri_parameter_supported", false},
	}
	for _, tc := range bools {
		if got, ok := doc[tc.field].(bool); !ok || got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.field, doc[tc.field], tc.want)
		}
	}
	// Absent, not a list without "none": strict clients (Authlib) want
	// none and RS256 in any list, and twostep takes no request objects.
	for _, absent := range []string{"request_object_signing_alg_values_supported", "registration_endpoint"} {
		if v, ok := doc[absent]; ok {
			t.Errorf("%s: got %v, want it absent", absent, v)
		}
	}
	// Every endpoint is under the issuer, so https when it is.
	for field, v := range doc {
		if !strings.HasSuffix(field, "_endpoint") && field != "jwks_uri" {
			continue
		}
		if s, _ := v.(string); !strings.HasPrefix(s, testIssuer+"/") {
			t.Errorf("%s: got %v, want a URL under %s", field, v, testIssuer)
		}
	}
	for _, required := range []string{"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"} {
		if _, ok := doc[required]; !ok {
			t.Errorf("%s: missing", required)
		}
	}
}

// TestTokenResponseNotCached: no token endpoint answer, tokens or error,
// may be cached (RFC 6749 §5.1, §5.2).
func TestTokenResponseNotCached(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)
	code := codeFrom(t, e.get(ar.url()), ar)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {ar.verifier}}
	tests := []struct {
		name       string
		form       url.Values
		auth       credentials
		wantStatus int
	}{
		{"code exchange", exchange, basic(appID, appSecret), http.StatusOK},
		{"code used again", exchange, basic(appID, appSecret), http.StatusBadRequest},
		{"client_credentials", url.Values{"grant_type": {"client_credentials"}}, basic(appID, appSecret), http.StatusOK},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}}, basic(appID, "wrong"), http.StatusUnauthorized},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, basic(appID, appSecret), http.StatusBadRequest},
		{"no grant_type", url.Values{}, basic(appID, appSecret), http.StatusBadRequest},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, basic(appID, appSecret), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.postForm("/oauth2/token", tc.form, tc.auth)
			if rec.Code != tc.wantStatus {
				t.Errorf("status: got %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
			for h, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache"} {
				if got := rec.Header().Values(h); !slices.Equal(got, []string{want}) {
					t.Errorf("%s: got %q, want [%s]", h, got, want)
				}
			}
		})
	}
}

// descriptionRE is the error_description syntax of RFC 6749 §4.1.2.1 and
// §5.2: printable ASCII but '"' and '\'.
var descriptionRE = regexp.MustCompile(`^[\x20\x21\x23-\x5B\x5D-\x7E]*$`)

func TestErrorDescription(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`The scope "admin" is unknown.`, "The scope 'admin' is unknown."},
		{`C:\path`, "C:/path"},
		{"RFC 6749 §4.1.1.", "RFC 6749 section 4.1.1."},
		{"RFC 6749 § 4.1.1.", "RFC 6749 section 4.1.1."},
		{"line\nbreak\ttab", "line break tab"},
		{"café\x00\x7f", "caf???"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := errorDescription(tc.in)
			if got != tc.want {
				t.Errorf("errorDescription(%q): got %q, want %q", tc.in, got, tc.want)
			}
			if !descriptionRE.MatchString(got) {
				t.Errorf("errorDescription(%q) = %q has characters RFC 6749 forbids", tc.in, got)
			}
		})
	}
}

// TestErrorDescriptionsSent: the errors twostep and fosite describe with
// quotes or section signs reach the client with a valid description, at
// the authorization, token and introspection endpoints.
func TestErrorDescriptionsSent(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)
	authorize := []struct {
		name, wantError string
		ar              authRequest
	}{
		// fosite quotes the scope; twostep's hints cite sections.
		{"fosite's quoted hint", "invalid_scope", ar.with("scope", "openid admin")},
		{"twostep's § hint", "unsupported_response_type", ar.with("response_type", "token")},
		{"plain PKCE", "invalid_request", ar.with("code_challenge_method", "plain")},
		{"unknown prompt", "invalid_request", ar.with("prompt", "none login")},
		{"response_mode", "unsupported_response_mode", ar.with("response_mode", "fragment")},
		{"short state", "invalid_state", ar.with("state", "short")},
	}
	for _, tc := range authorize {
		t.Run("authorize/"+tc.name, func(t *testing.T) {
			q := clientRedirect(t, e.get(tc.ar.url()))
			if q.Get("error") != tc.wantError {
				t.Errorf("error: got %q (%s), want %s", q.Get("error"), q.Get("error_description"), tc.wantError)
			}
			if d := q.Get("error_description"); d == "" || !descriptionRE.MatchString(d) {
				t.Errorf("error_description %q is empty or has characters RFC 6749 forbids", d)
			}
		})
	}
	token := []struct {
		name string
		form url.Values
		auth credentials
	}{
		{"unsupported grant, quoted by twostep", url.Values{"grant_type": {"password"}}, basic(appID, appSecret)},
		{"scope, quoted by fosite", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, basic(appID, appSecret)},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}}, basic(appID, "wrong")},
		{"bad code", url.Values{"grant_type": {"authorization_code"}, "code": {`x"\y`}, "redirect_uri": {appRedirect}}, basic(appID, appSecret)},
	}
	for _, tc := range token {
		t.Run("token/"+tc.name, func(t *testing.T) {
			rec := e.postForm("/oauth2/token", tc.form, tc.auth)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("got %d %s, want a JSON error", rec.Code, rec.Body)
			}
			if !descriptionRE.MatchString(body.Description) {
				t.Errorf("error_description %q has characters RFC 6749 forbids", body.Description)
			}
		})
	}
	t.Run("introspect", func(t *testing.T) {
		rec := e.postForm("/oauth2/introspect", url.Values{"token": {"x"}}, inForm(appID, appSecret))
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
			t.Fatalf("got %d %s, want a JSON error", rec.Code, rec.Body)
		}
		if !descriptionRE.MatchString(body.Description) {
			t.Errorf("error_description %q has characters RFC 6749 forbids", body.Description)
		}
	})
}

// errTest is an error that is not fosite's.
var errTest = errors.New("secret-debug: the database said no")

// fositeInvalidScope is a fosite error with a quoting hint and a debug
// detail.
func fositeInvalidScope() error {
	return fosite.ErrInvalidScope.WithHint(`The scope "admin" is not allowed.`).WithDebug("secret-debug")
}

// TestOAuthError: an error that is not fosite's is a server_error, and
// fosite's keep their code and status and lose their debug detail.
func TestOAuthError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantError  string
		wantStatus int
	}{
		{"plain error", errTest, "server_error", http.StatusInternalServerError},
		{"fosite error with debug", fositeInvalidScope(), "invalid_scope", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := oauthError(tc.err)
			if got.ErrorField != tc.wantError || got.CodeField != tc.wantStatus {
				t.Errorf("got %s %d, want %s %d", got.ErrorField, got.CodeField, tc.wantError, tc.wantStatus)
			}
			if strings.Contains(got.GetDescription(), "secret-debug") || got.DebugField != "" {
				t.Errorf("description %q or debug %q carries the debug detail", got.GetDescription(), got.DebugField)
			}
			if !descriptionRE.MatchString(got.GetDescription()) {
				t.Errorf("description %q has characters RFC 6749 forbids", got.GetDescription())
			}
		})
	}
}

// TestIDTokenClaimSet: an ID token carries the claims OpenID Connect
// defines and those of the granted scopes, nothing else (no fosite
// `rat`), in the first token and in those the refresh grant issues;
// auth_time is the whole second the second factor succeeded.
func TestIDTokenClaimSet(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	authTime := e.clock.Now().Add(-90 * time.Second).Add(700 * time.Millisecond)
	e.sessions.signIn(u.ID, authTime)
	ar := newAuthRequest(t, appID).with("max_age", "600")
	rec, tr := e.exchange(t, ar, codeFrom(t, e.get(ar.url()), ar), basic(appID, appSecret))
	if rec.Code != http.StatusOK {
		t.Fatalf("exchange: got %d %s", rec.Code, rec.Body)
	}
	rec = e.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, basic(appID, appSecret))
	refreshed := decodeToken(t, rec)
	if rec.Code != http.StatusOK || refreshed.IDToken == "" {
		t.Fatalf("refresh: got %d %s, want an ID token", rec.Code, rec.Body)
	}
	supported := stringList(e.discoveryDoc(t), "claims_supported")
	for which, raw := range map[string]string{"first": tr.IDToken, "refreshed": refreshed.IDToken} {
		claims := jwtClaims(t, raw)
		if _, ok := claims["rat"]; ok {
			t.Errorf("%s ID token has rat", which)
		}
		for name := range claims {
			// jti is RFC 7519's, which fosite adds to every token.
			if name != "jti" && !slices.Contains(supported, name) {
				t.Errorf("%s ID token has %q, which claims_supported does not list", which, name)
			}
		}
		for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "name", "email", "groups"} {
			if _, ok := claims[name]; !ok {
				t.Errorf("%s ID token lacks %s", which, name)
			}
		}
		if got, ok := claims["auth_time"].(float64); !ok || got != float64(authTime.Unix()) {
			t.Errorf("%s ID token auth_time: got %v, want %d", which, claims["auth_time"], authTime.Unix())
		}
	}
	if got := jwtClaims(t, tr.IDToken)["nonce"]; got != ar.params.Get("nonce") {
		t.Errorf("nonce: got %v, want %q", got, ar.params.Get("nonce"))
	}
}

// TestIDTokenPromptLoginSameSecond: a login that completes in the second
// the request arrived satisfies prompt=login and max_age=0: fosite checks
// auth_time, which the token carries in whole seconds, against the
// request's arrival, which must then be in whole seconds too.
func TestIDTokenPromptLoginSameSecond(t *testing.T) {
	for _, tc := range []struct{ param, value string }{{"prompt", "login"}, {"max_age", "0"}} {
		t.Run(tc.param, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			ar := newAuthRequest(t, appID).with(tc.param, tc.value)
			id := pendingID(t, e.get(ar.url()), "/login")
			kept, err := e.store.GetAuthRequest(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			// Later than the arrival, in the same second.
			e.sessions.signIn(u.ID, kept.RequestedAt.Add(time.Microsecond))
			rec, tr := e.exchange(t, ar, codeFrom(t, e.resume(id), ar), basic(appID, appSecret))
			if rec.Code != http.StatusOK || tr.IDToken == "" {
				t.Fatalf("exchange: got %d %s, want an ID token", rec.Code, rec.Body)
			}
		})
	}
}
