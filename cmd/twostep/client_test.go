package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"golang.org/x/oauth2"
)

// TestClientAddPARAndAlg: `client add --require-par --id-token-alg`
// registers both, `client show` prints them, and an unknown algorithm is
// refused before anything is stored.
func TestClientAddPARAndAlg(t *testing.T) {
	in := cliInstance(t)
	mustCLI(t, in, "", "client", "add", "--id", "pushed", "--redirect-uri", "https://app.example/cb", "--require-par", "--id-token-alg", "ES256")
	mustCLI(t, in, "", "client", "add", "--id", "plain", "--redirect-uri", "https://app.example/cb")
	for _, tc := range []struct {
		id, par, alg string
	}{
		{"pushed", "true", "ES256"},
		{"plain", "false", "RS256"},
	} {
		out := mustCLI(t, in, "", "client", "show", tc.id)
		if got := showField(out, "par required:"); got != tc.par {
			t.Errorf("client show %s: par required %q, want %q\n%s", tc.id, got, tc.par, out)
		}
		if got := showField(out, "id token alg:"); got != tc.alg {
			t.Errorf("client show %s: id token alg %q, want %q\n%s", tc.id, got, tc.alg, out)
		}
	}
	for _, alg := range []string{"HS256", "es256", "none", ""} {
		_, _, err := runCLI(in, "", "client", "add", "--id", "bad", "--redirect-uri", "https://app.example/cb", "--id-token-alg", alg)
		if err == nil || !strings.Contains(err.Error(), "--id-token-alg") {
			t.Errorf("client add --id-token-alg %q: got %v, want an error about --id-token-alg", alg, err)
		}
	}
	if _, _, err := runCLI(in, "", "client", "show", "bad"); err == nil {
		t.Error("a client with a refused --id-token-alg was stored")
	}
}

// TestPushedES256EndToEnd runs the code flow of a client registered with
// --require-par and --id-token-alg ES256 against `twostep serve`: the
// authorization request without a request_uri is refused at the client's
// redirect_uri; pushed to the discovered endpoint, it goes through the
// login (which keeps it server-side) to a code, and go-oidc, configured
// from discovery, verifies the ES256 ID token against the JWKS.
func TestPushedES256EndToEnd(t *testing.T) {
	in := startServer(t, "", nil)
	addUser(t, in, "alice", "correct horse battery staple")
	rp := newRelyingParty(t, in, "--require-par", "--id-token-alg", "ES256", "--skip-consent")
	ctx := context.Background()
	c := http.DefaultClient

	disco := doOAuth(c, mustRequest(t, http.MethodGet, in.issuer+"/.well-known/openid-configuration"))
	parEndpoint := disco.field("pushed_authorization_request_endpoint")
	if parEndpoint != in.issuer+"/oauth2/par" {
		t.Fatalf("discovery: pushed_authorization_request_endpoint %q, want %s/oauth2/par", parEndpoint, in.issuer)
	}

	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := b.get(ar.url)
	loc, _ := url.Parse(p.header.Get("Location"))
	if loc == nil || !strings.HasPrefix(loc.String(), testRedirect) || loc.Query().Get("error") != "invalid_request" ||
		!strings.Contains(loc.Query().Get("error_description"), "pushed authorization requests") {
		t.Fatalf("unpushed request: got %s (Location %q), want invalid_request at the redirect_uri", p, p.header.Get("Location"))
	}

	// Push what x/oauth2 would have put in the URL.
	u, err := url.Parse(ar.url)
	if err != nil {
		t.Fatal(err)
	}
	pushed := postOAuth(c, parEndpoint, rp.config.ClientID, rp.config.ClientSecret, u.Query())
	requestURI := pushed.field("request_uri")
	if pushed.status != http.StatusCreated || !strings.HasPrefix(requestURI, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("push: got %s, want 201 with a request_uri", pushed)
	}
	byRef := in.issuer + "/oauth2/auth?" + url.Values{"client_id": {rp.config.ClientID}, "request_uri": {requestURI}}.Encode()

	waitForFreshStep()
	p = b.get(byRef)
	if p.url.Path != "/login" {
		t.Fatalf("pushed request without a session: got %s, want the /login page", p)
	}
	p = b.submit(p, map[string]string{"username": "alice", "password": "correct horse battery staple"})
	key, err := otp.NewKeyFromURL(otpauthURI(p.body))
	if err != nil {
		t.Fatalf("enrolment page: %v\n%s", err, p.body)
	}
	p = b.submit(p, map[string]string{"code": codeAt(t, key, time.Now())})
	_, p = b.recoveryCodes(p)
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("after the login: got %s (Location %q), want a code", p, p.header.Get("Location"))
	}
	tok, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken := verifyIDToken(t, rp, tok, ar)
	raw, _ := tok.Extra("id_token").(string)
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	part, _, _ := strings.Cut(raw, ".")
	if b, err := base64.RawURLEncoding.DecodeString(part); err != nil || json.Unmarshal(b, &header) != nil {
		t.Fatalf("ID token header %q: %v", part, err)
	}
	if header.Alg != "ES256" || !has(jwksKeyIDs(t, in.issuer), header.Kid) {
		t.Errorf("ID token header: got alg %q kid %q, want ES256 and a published kid", header.Alg, header.Kid)
	}
	if idToken.Subject == "" {
		t.Error("ID token without a subject")
	}

	// The request_uri was used once.
	p = b.get(byRef)
	if p.status != http.StatusBadRequest {
		t.Errorf("request_uri used again: got %s, want 400", p)
	}
}
