package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// logoutReceiver is a relying party's back-channel logout endpoint. Its
// first request waits until the test releases it, then fails with 500;
// later ones succeed. Every logout token it gets goes to tokens.
type logoutReceiver struct {
	srv     *httptest.Server
	release chan struct{}
	tokens  chan string

	mu        sync.Mutex
	requests  int
	abandoned bool // the first delivery gave up before it was released
}

func newLogoutReceiver(t *testing.T) *logoutReceiver {
	rc := &logoutReceiver{release: make(chan struct{}), tokens: make(chan string, 10)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		rc.tokens <- r.PostFormValue("logout_token")
		rc.mu.Lock()
		rc.requests++
		first := rc.requests == 1
		rc.mu.Unlock()
		if !first {
			w.WriteHeader(http.StatusOK)
			return
		}
		select {
		case <-rc.release:
		case <-r.Context().Done():
			rc.mu.Lock()
			rc.abandoned = true
			rc.mu.Unlock()
		}
		http.Error(w, "try again", http.StatusInternalServerError)
	}))
	t.Cleanup(func() {
		select {
		case <-rc.release:
		default:
			close(rc.release)
		}
		rc.srv.Close()
	})
	return rc
}

// nextToken waits for the next logout token.
func (rc *logoutReceiver) nextToken(t *testing.T, what string) string {
	t.Helper()
	select {
	case tok := <-rc.tokens:
		return tok
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no logout token within 15 s", what)
		return ""
	}
}

// TestBackchannelLogout: a user signs in to an application registered
// with a back-channel logout URI and signs out from it (RP-initiated
// logout); the application gets a logout token for the session its ID
// token named, in the background: the logout page comes back while the
// application still holds the first delivery, which then fails and is
// retried.
func TestBackchannelLogout(t *testing.T) {
	forEachDatabase(t, testBackchannelLogout)
}

func testBackchannelLogout(t *testing.T, database string, getenv func(string) string) {
	ctx := context.Background()
	in := startServer(t, database, getenv, "--backchannel-interval", "100ms")
	addUser(t, in, "alice", racePassword)
	rc := newLogoutReceiver(t)
	rp := newRelyingParty(t, in, "--skip-consent", "--backchannel-logout-uri", rc.srv.URL+"/backchannel-logout")
	if out, err := in.cli(t, "", "client", "show", rp.config.ClientID); err != nil || !strings.Contains(out, rc.srv.URL+"/backchannel-logout") {
		t.Errorf("client show: got %v, %q; want the back-channel logout URI", err, out)
	}

	e := enrol(t, rp, "alice")
	code, ar := newCode(t, e.b, rp)
	tok, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken := verifyIDToken(t, rp, tok, ar)
	var idClaims struct {
		SID string `json:"sid"`
	}
	if err := idToken.Claims(&idClaims); err != nil || len(idClaims.SID) < 22 {
		t.Fatalf("ID token sid: got %q, %v; want a random session ID", idClaims.SID, err)
	}

	// RP-initiated logout: the page comes back while the application
	// holds the first delivery (it would time out, not succeed, if the
	// page waited for it).
	p := e.b.get(in.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode())
	if p.status != http.StatusOK || !strings.Contains(p.body, "You are signed out") {
		t.Fatalf("logout: got %s, want the signed-out page\n%s", p, p.body)
	}
	close(rc.release)
	first := rc.nextToken(t, "first delivery")
	second := rc.nextToken(t, "retry after a 500")
	rc.mu.Lock()
	abandoned := rc.abandoned
	rc.mu.Unlock()
	if abandoned {
		t.Errorf("the first delivery gave up before the logout page came back: the page waited for it")
	}

	keys := gooidc.NewRemoteKeySet(ctx, in.issuer+"/.well-known/jwks.json")
	jtis := map[string]bool{}
	for _, raw := range []string{first, second} {
		jtis[checkLogoutTokenE2E(t, ctx, keys, raw, in.issuer, rp.config.ClientID, idToken.Subject, idClaims.SID)] = true
	}
	if len(jtis) != 2 {
		t.Errorf("the retry carried the first token's jti: want a fresh token")
	}

	// The twostep session is over, and the audit log says the logout
	// token was delivered.
	ar2 := rp.newAuthRequest()
	if p := e.b.get(ar2.url); p.url.Path != "/login" {
		t.Errorf("authorize after logout: got %s, want the /login page", p)
	}
	out, err := in.cli(t, "", "audit", "--json")
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	var delivered bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev auditLine
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.Event == "backchannel_logout" && ev.Outcome == "success" && ev.ClientID == rp.config.ClientID && ev.UserID == idToken.Subject {
			delivered = true
		}
	}
	if !delivered {
		t.Errorf("audit: no backchannel_logout success for %s in\n%s", rp.config.ClientID, out)
	}
}

// checkLogoutTokenE2E verifies a logout token as a relying party would
// (Back-Channel Logout 1.0 §2.6): signed with a key of the JWKS, typ
// logout+jwt, the issuer, the client as audience, the user and the
// session, the logout event, a short life and no nonce. It returns the jti.
func checkLogoutTokenE2E(t *testing.T, ctx context.Context, keys *gooidc.RemoteKeySet, raw, issuer, clientID, sub, sid string) string {
	t.Helper()
	payload, err := keys.VerifySignature(ctx, raw)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	obj, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := obj.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("logout token typ: got %v, want logout+jwt", typ)
	}
	var c struct {
		Iss    string                     `json:"iss"`
		Aud    string                     `json:"aud"`
		Sub    string                     `json:"sub"`
		SID    string                     `json:"sid"`
		Iat    int64                      `json:"iat"`
		Exp    int64                      `json:"exp"`
		JTI    string                     `json:"jti"`
		Nonce  *string                    `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	event, ok := c.Events["http://schemas.openid.net/event/backchannel-logout"]
	if c.Iss != issuer || c.Aud != clientID || c.Sub != sub || c.SID != sid || c.JTI == "" || c.Nonce != nil ||
		!ok || string(event) != "{}" || len(c.Events) != 1 {
		t.Errorf("logout token claims: got %s, want iss %s, aud %s, sub %s, sid %s, a jti, the logout event and no nonce",
			payload, issuer, clientID, sub, sid)
	}
	if now := time.Now().Unix(); c.Iat > now+1 || c.Iat < now-60 || c.Exp-c.Iat != 120 {
		t.Errorf("logout token: got iat %d exp %d at %d, want issued just now for 2 minutes", c.Iat, c.Exp, now)
	}
	return c.JTI
}

// TestClientBackchannelURI: the back-channel logout URI must be https, or
// http on loopback, without a fragment, like a redirect URI.
func TestClientBackchannelURI(t *testing.T) {
	in := cliInstance(t)
	for _, uri := range []string{"http://rp.example/logout", "https://rp.example/logout#x", "rp.example/logout", "ftp://rp.example/"} {
		out, errOut, err := runCLI(in, "", "client", "add", "--id", "x", "--redirect-uri", "https://rp.example/cb", "--backchannel-logout-uri", uri)
		if err == nil || !strings.Contains(err.Error(), "--backchannel-logout-uri") {
			t.Errorf("client add --backchannel-logout-uri %s: got %v (%s%s), want it refused", uri, err, out, errOut)
		}
	}
	for i, uri := range []string{"https://rp.example/logout?tenant=1", "http://127.0.0.1:8081/logout", "http://localhost/logout"} {
		id := "rp-" + string(rune('a'+i))
		mustCLI(t, in, "", "client", "add", "--id", id, "--redirect-uri", "https://rp.example/cb", "--backchannel-logout-uri", uri)
		if got := showField(mustCLI(t, in, "", "client", "show", id), "backchannel logout uri:"); got != uri {
			t.Errorf("client show %s: got back-channel logout URI %q, want %q", id, got, uri)
		}
	}
}

// showField returns the value of the line of a `show` output that starts
// with label.
func showField(out, label string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, label); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
