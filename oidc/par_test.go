package oidc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// parResponse is the JSON of a pushed authorization request answer.
type parResponse struct {
	RequestURI       string `json:"request_uri"`
	ExpiresIn        int    `json:"expires_in"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// push posts ar to the pushed authorization request endpoint as c.
func (e *env) push(t *testing.T, ar authRequest, c credentials) (*http.Response, parResponse) {
	t.Helper()
	rec := e.postForm("/oauth2/par", ar.params, c)
	var pr parResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &pr); err != nil {
		t.Fatalf("PAR response %d %q: %v", rec.Code, rec.Body, err)
	}
	return rec.Result(), pr
}

// mustPush pushes ar and returns its request_uri.
func (e *env) mustPush(t *testing.T, ar authRequest, c credentials) string {
	t.Helper()
	res, pr := e.push(t, ar, c)
	if res.StatusCode != http.StatusCreated || pr.RequestURI == "" {
		t.Fatalf("push: got %d %+v, want 201 with a request_uri", res.StatusCode, pr)
	}
	return pr.RequestURI
}

// byReference is the authorization request that sends the browser to a
// pushed request.
func byReference(clientID, requestURI string) string {
	return "/oauth2/auth?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

// TestPARCodeFlow: push, authorize with only client_id and request_uri,
// get a code for the pushed parameters, redeem it with the pushed PKCE
// challenge's verifier.
func TestPARCodeFlow(t *testing.T) {
	for _, c := range []credentials{basic(appID, appSecret), inForm(appID, appSecret)} {
		name := "client_secret_basic"
		if c.post {
			name = "client_secret_post"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.addApp(true)
			u := e.addUser("alice")
			e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
			ar := newAuthRequest(t, appID)

			res, pr := e.push(t, ar, c)
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("push: got %d %+v, want 201", res.StatusCode, pr)
			}
			if !strings.HasPrefix(pr.RequestURI, "urn:ietf:params:oauth:request_uri:") || len(pr.RequestURI) < 60 {
				t.Errorf("request_uri: got %q, want urn:ietf:params:oauth:request_uri: and 256 random bits", pr.RequestURI)
			}
			if pr.ExpiresIn != int(parLifetime.Seconds()) {
				t.Errorf("expires_in: got %d, want %d", pr.ExpiresIn, int(parLifetime.Seconds()))
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}

			code := codeFrom(t, e.get(byReference(appID, pr.RequestURI)), ar)
			rec, tr := e.exchange(t, ar, code, basic(appID, appSecret))
			if rec.Code != http.StatusOK || tr.IDToken == "" {
				t.Fatalf("exchange: got %d %s, want 200 with an ID token", rec.Code, rec.Body)
			}
			claims := jwtClaims(t, tr.IDToken)
			if claims["nonce"] != ar.params.Get("nonce") || claims["sub"] != u.ID {
				t.Errorf("ID token: got nonce %v sub %v, want the pushed %q and %s", claims["nonce"], claims["sub"], ar.params.Get("nonce"), u.ID)
			}
			if tr.Scope != ar.params.Get("scope") {
				t.Errorf("scope: got %q, want the pushed %q", tr.Scope, ar.params.Get("scope"))
			}
			// The client's secret was not kept with the request.
			var n int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM oauth2_sessions WHERE request LIKE ?`, "%"+appSecret+"%").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d stored requests hold the client secret, want 0", n)
			}

			// The request_uri is used once.
			wantErrorPage(t, e.get(byReference(appID, pr.RequestURI)), http.StatusBadRequest)
		})
	}
}

// TestPARPublicClient: a public client pushes with its client_id alone.
func TestPARPublicClient(t *testing.T) {
	e := newEnv(t)
	c := appClient("spa")
	c.Public, c.SkipConsent = true, true
	c.GrantTypes = []string{"authorization_code", "refresh_token"}
	e.addClient(c, "")
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, "spa")
	requestURI := e.mustPush(t, ar, publicClient("spa"))
	code := codeFrom(t, e.get(byReference("spa", requestURI)), ar)
	if rec, tr := e.exchange(t, ar, code, publicClient("spa")); rec.Code != http.StatusOK || tr.IDToken == "" {
		t.Fatalf("exchange: got %d %s, want 200 with an ID token", rec.Code, rec.Body)
	}
}

// TestPARKeptRequest: a pushed request whose user must still sign in is
// kept with all its parameters; after the login it ends in a code, also
// for a client that must push, although the request_uri is spent.
func TestPARKeptRequest(t *testing.T) {
	for _, requirePAR := range []bool{false, true} {
		name := "PAR optional"
		if requirePAR {
			name = "PAR required"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			c := appClient(appID)
			c.SkipConsent, c.RequirePAR = true, requirePAR
			e.addClient(c, appSecret)
			u := e.addUser("alice")
			ar := newAuthRequest(t, appID).with("ui_locales", "fr").with("acr_values", "urn:example:acr")
			requestURI := e.mustPush(t, ar, basic(appID, appSecret))

			id := pendingID(t, e.get(byReference(appID, requestURI)), "/login")
			kept, err := e.store.GetAuthRequest(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "ui_locales", "acr_values"} {
				if got, want := kept.Form.Get(k), ar.params.Get(k); got != want {
					t.Errorf("kept %s: got %q, want the pushed %q", k, got, want)
				}
			}
			if kept.Form.Has("request_uri") {
				t.Errorf("kept request has the spent request_uri: %v", kept.Form)
			}

			e.sessions.signIn(u.ID, e.clock.Now())
			code := codeFrom(t, e.resume(id), ar)
			if rec, tr := e.exchange(t, ar, code, basic(appID, appSecret)); rec.Code != http.StatusOK || jwtClaims(t, tr.IDToken)["nonce"] != ar.params.Get("nonce") {
				t.Fatalf("exchange the code of a kept pushed request: got %d %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestPAROnlyPushedParameters: parameters sent beside the request_uri do
// not count (RFC 9126 §4): a prompt=none added there does not turn the
// login into an error, another state is not echoed.
func TestPAROnlyPushedParameters(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	u := e.addUser("alice")
	ar := newAuthRequest(t, appID)
	requestURI := e.mustPush(t, ar, basic(appID, appSecret))
	target := byReference(appID, requestURI) + "&" + url.Values{
		"prompt": {"none"}, "state": {"state-of-the-attacker"}, "redirect_uri": {"https://evil.example/cb"},
	}.Encode()
	id := pendingID(t, e.get(target), "/login")
	e.sessions.signIn(u.ID, e.clock.Now())
	codeFrom(t, e.resume(id), ar) // checks the pushed state
}

// TestPARAuthorizeRefuses: a request_uri that is unknown, expired, used,
// or sent with another client_id gives a page, never a redirect: the
// redirect_uri it would name is not known to be the client's.
func TestPARAuthorizeRefuses(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	other := appClient("other")
	other.SkipConsent = true
	e.addClient(other, appSecret)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)

	requestURI := e.mustPush(t, ar, basic(appID, appSecret))
	for _, target := range []string{
		byReference("other", requestURI),
		byReference("", requestURI),
		"/oauth2/auth?" + url.Values{"request_uri": {requestURI}}.Encode(),
		byReference(appID, requestURI+"x"),
		byReference(appID, "urn:ietf:params:oauth:request_uri:unknown"),
	} {
		rec := e.get(target)
		wantErrorPage(t, rec, http.StatusBadRequest)
		if loc := rec.Header().Get("Location"); loc != "" {
			t.Errorf("GET %s: redirected to %s, want a page", target, loc)
		}
	}
	// None of those used the request_uri up.
	codeFrom(t, e.get(byReference(appID, requestURI)), ar)
	wantErrorPage(t, e.get(byReference(appID, requestURI)), http.StatusBadRequest)

	// Expired.
	ar = newAuthRequest(t, appID)
	requestURI = e.mustPush(t, ar, basic(appID, appSecret))
	e.clock.Add(parLifetime + time.Minute) // fosite stamps the expiry with the wall clock
	wantErrorPage(t, e.get(byReference(appID, requestURI)), http.StatusBadRequest)
}

// TestPARRequired: a client registered with RequirePAR gets an error for
// an authorization request it did not push: at its redirect_uri when that
// is valid, as a page otherwise.
func TestPARRequired(t *testing.T) {
	e := newEnv(t)
	c := appClient(appID)
	c.SkipConsent, c.RequirePAR = true, true
	e.addClient(c, appSecret)
	u := e.addUser("alice")
	e.sessions.signIn(u.ID, e.clock.Now().Add(-time.Minute))
	ar := newAuthRequest(t, appID)

	q := clientRedirect(t, e.get(ar.url()))
	if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "must use pushed authorization requests") {
		t.Errorf("unpushed request: got error %q (%s), want invalid_request about pushed authorization requests", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("code") != "" || q.Get("state") != ar.state() {
		t.Errorf("unpushed request: got code %q state %q, want no code and state %q", q.Get("code"), q.Get("state"), ar.state())
	}
	wantErrorPage(t, e.get(ar.with("redirect_uri", "https://evil.example/cb").url()), http.StatusBadRequest)
	if n := e.countAuthRequests(t); n != 0 {
		t.Errorf("kept %d unpushed requests, want 0", n)
	}

	// Pushed, it works.
	codeFrom(t, e.get(byReference(appID, e.mustPush(t, ar, basic(appID, appSecret)))), ar)
}

// TestPARPushRefuses: the endpoint authenticates the client as the token
// endpoint does and refuses what the authorization endpoint would, before
// it hands out a request_uri.
func TestPARPushRefuses(t *testing.T) {
	e := newEnv(t)
	e.addApp(true)
	ar := newAuthRequest(t, appID)
	tests := []struct {
		name       string
		ar         authRequest
		c          credentials
		wantStatus int
		wantError  string
	}{
		{"wrong secret", ar, basic(appID, "wrong"), http.StatusUnauthorized, "invalid_client"},
		{"no credentials for a confidential client", ar, publicClient(appID), http.StatusUnauthorized, "invalid_client"},
		{"unknown client", ar.with("client_id", "nobody"), basic("nobody", appSecret), http.StatusUnauthorized, "invalid_client"},
		{"unregistered redirect_uri", ar.with("redirect_uri", "https://evil.example/cb"), basic(appID, appSecret), http.StatusBadRequest, "invalid_request"},
		{"response_type token", ar.with("response_type", "token"), basic(appID, appSecret), http.StatusBadRequest, "unsupported_response_type"},
		{"no code_challenge", ar.with("code_challenge", "").with("code_challenge_method", ""), basic(appID, appSecret), http.StatusBadRequest, "invalid_request"},
		{"plain code_challenge_method", ar.with("code_challenge_method", "plain"), basic(appID, appSecret), http.StatusBadRequest, "invalid_request"},
		{"request_uri inside", ar.with("request_uri", "urn:ietf:params:oauth:request_uri:x"), basic(appID, appSecret), http.StatusBadRequest, "invalid_request"},
		{"unknown scope", ar.with("scope", "openid admin"), basic(appID, appSecret), http.StatusBadRequest, "invalid_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, pr := e.push(t, tc.ar, tc.c)
			if res.StatusCode != tc.wantStatus || pr.Error != tc.wantError || pr.RequestURI != "" {
				t.Errorf("push: got %d %+v, want %d %s and no request_uri", res.StatusCode, pr, tc.wantStatus, tc.wantError)
			}
		})
	}
	var n int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM oauth2_sessions WHERE kind = 'par'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("stored %d pushed requests, want 0", n)
	}
}
