package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/pquerna/otp"
	"github.com/twostep/twostep/storage/storagetest"
	"golang.org/x/oauth2"
)

// instance is a twostep started through run, as `twostep serve` starts.
type instance struct {
	issuer   string
	database string
	getenv   func(string) string
	stderr   *syncBuffer
	// stop ends the server and waits for run to return; tests may call it
	// early, and cleanup calls it otherwise.
	stop func()
}

// syncBuffer is a bytes.Buffer safe for the server goroutine to write.
type syncBuffer struct {
	mu  chanMutex
	buf bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chanMutex, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.lock()
	defer b.mu.unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.lock()
	defer b.mu.unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer runs `twostep serve` on a free port with the given database
// (a temp SQLite file when empty) and waits for /healthz.
// Extra args go to serve.
func startServer(t *testing.T, database string, getenv func(string) string, args ...string) *instance {
	t.Helper()
	in, _ := startInstance(t, database, getenv, "", args...)
	return in
}

// startInstance is startServer for one of several instances behind one
// issuer, as a load balancer presents them: it listens on a free port of
// its own but announces issuer ("" for its own address). It returns the
// instance, whose issuer field is the announced issuer, and the base URL
// where this instance itself answers. database "" is a temp SQLite file,
// and getenv nil an empty environment. Extra args go to serve.
func startInstance(t *testing.T, database string, getenv func(string) string, issuer string, args ...string) (*instance, string) {
	t.Helper()
	if database == "" {
		database = "sqlite:" + filepath.Join(t.TempDir(), "twostep.db")
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	addr := freeAddr(t)
	base := "http://" + addr
	if issuer == "" {
		issuer = base
	}
	in := &instance{issuer: issuer, database: database, getenv: getenv, stderr: newSyncBuffer()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", addr, "--issuer", issuer, "--database", database}, args...),
			getenv, strings.NewReader(""), io.Discard, in.stderr)
	}()
	in.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve on %s returned %v", addr, err)
		}
	})
	t.Cleanup(in.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err // for stop
			t.Fatalf("serve on %s exited early: %v\n%s", addr, err, in.stderr)
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in, base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance on %s did not become healthy: %v\n%s", addr, err, in.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cli runs one twostep command against the instance's database.
func (in *instance) cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--database", in.database)
	err := run(context.Background(), args, in.getenv, strings.NewReader(stdin), &out, &errOut)
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

// relyingParty is an application registered with twostep, using go-oidc
// and x/oauth2 as a real one would.
type relyingParty struct {
	provider *gooidc.Provider
	config   oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

const testRedirect = "http://127.0.0.1:9/callback"

func newRelyingParty(t *testing.T, in *instance, extraArgs ...string) *relyingParty {
	t.Helper()
	id := fmt.Sprintf("app-%d", time.Now().UnixNano())
	out, err := in.cli(t, "", append([]string{"client", "add", "--id", id, "--redirect-uri", testRedirect, "--name", "Test App", "--json"}, extraArgs...)...)
	if err != nil {
		t.Fatalf("client add: %v: %s", err, out)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		t.Fatalf("client add --json printed %q: %v", out, err)
	}
	if creds.ClientID != id {
		t.Fatalf("client_id: got %q, want %q", creds.ClientID, id)
	}
	provider, err := gooidc.NewProvider(context.Background(), in.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		provider: provider,
		config: oauth2.Config{
			ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: testRedirect,
			Scopes:      []string{gooidc.ScopeOpenID, "profile", "email", "groups", gooidc.ScopeOfflineAccess},
		},
		verifier: provider.Verifier(&gooidc.Config{ClientID: creds.ClientID}),
	}
}

// authRequest is one authorization request with its PKCE verifier and
// nonce.
type authRequest struct {
	url, state, nonce, verifier string
}

func (rp *relyingParty) newAuthRequest(opts ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{state: randomHex(), nonce: randomHex(), verifier: oauth2.GenerateVerifier()}
	opts = append(opts, gooidc.Nonce(ar.nonce), oauth2.S256ChallengeOption(ar.verifier))
	ar.url = rp.config.AuthCodeURL(ar.state, opts...)
	return ar
}

func randomHex() string {
	s, _ := randomString(12)
	return s
}

// codeFrom returns the authorization code of a response that redirected to
// the relying party, checking state; ok=false when there is none.
func codeFrom(t *testing.T, p page, ar authRequest) (string, bool) {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther {
		return "", false
	}
	loc, err := url.Parse(p.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), testRedirect) {
		return "", false
	}
	q := loc.Query()
	if q.Get("error") != "" {
		return "", false
	}
	if got := q.Get("state"); got != ar.state {
		t.Fatalf("state: got %q, want %q", got, ar.state)
	}
	return q.Get("code"), q.Get("code") != ""
}

func addUser(t *testing.T, in *instance, name, password string) {
	t.Helper()
	out, err := in.cli(t, password+"\n", "user", "add", name, "--email", name+"@example.com", "--email-verified",
		"--name", "Alice Example", "--groups", "staff,admins", "--password-stdin")
	if err != nil {
		t.Fatalf("user add: %v: %s", err, out)
	}
}

// waitForFreshStep sleeps past a TOTP step boundary when one is near, so a
// test that uses the codes of three consecutive steps (the previous, the
// current and the next, all within the one-step skew) finishes inside one
// step.
func waitForFreshStep() {
	if rem := 30 - time.Now().Unix()%30; rem < 12 {
		time.Sleep(time.Duration(rem)*time.Second + 200*time.Millisecond)
	}
}

// testSecretKey is the TWOSTEP_SECRET_KEY of the instances that need one
// (PostgreSQL has no key file beside the database); the instances of one
// cluster must share it.
const testSecretKey = "test-secret-key-0123456789abcdef-0123456789"

// secretEnv is a getenv that sets only TWOSTEP_SECRET_KEY, to testSecretKey.
func secretEnv(key string) string {
	if key == "TWOSTEP_SECRET_KEY" {
		return testSecretKey
	}
	return ""
}

// forEachDatabase runs fn on SQLite, and on a fresh PostgreSQL schema when
// TWOSTEP_TEST_POSTGRES is set (under CI=true it must be).
func forEachDatabase(t *testing.T, fn func(t *testing.T, database string, getenv func(string) string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "", nil) })
	t.Run("postgres", func(t *testing.T) { fn(t, storagetest.PostgresDSN(t), secretEnv) })
}

func TestOAuth2CodeFlow(t *testing.T) {
	forEachDatabase(t, testOAuth2CodeFlow)
}

func testOAuth2CodeFlow(t *testing.T, database string, getenv func(string) string) {
	in := startServer(t, database, getenv)
	addUser(t, in, "alice", "correct horse battery staple")
	rp := newRelyingParty(t, in)
	ctx := context.Background()
	waitForFreshStep()
	now := time.Now()

	// First login: enrolment shows the QR code, the otpauth URI and the
	// secret; a code from the previous step (within the skew) confirms it.
	b := newBrowser(t, testRedirect)
	ar := rp.newAuthRequest()
	p := b.get(ar.url)
	if p.url.Path != "/login" {
		t.Fatalf("authorize without a session: got %s, want the /login page", p)
	}
	p = b.submit(p, map[string]string{"username": "alice", "password": "correct horse battery staple"})
	if p.url.Path != "/login/totp" {
		t.Fatalf("after the password: got %s, want /login/totp\n%s", p, p.body)
	}
	if !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Errorf("first login: no inline QR code PNG")
	}
	uri := otpauthURI(p.body)
	if uri == "" {
		t.Fatalf("first login: no otpauth:// link in\n%s", p.body)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		t.Fatalf("otpauth URI %q: %v", uri, err)
	}
	if key.Issuer() != "twostep" || key.AccountName() != "alice" {
		t.Errorf("otpauth URI: got issuer %q account %q, want twostep, alice", key.Issuer(), key.AccountName())
	}
	p = b.submit(p, map[string]string{"code": codeAt(t, key, now.Add(-30*time.Second))})
	_, p = b.recoveryCodes(p)
	if p.url.Path != "/consent" {
		t.Fatalf("after the code: got %s, want /consent\n%s", p, p.body)
	}
	if !strings.Contains(p.body, "Test App") || !strings.Contains(p.body, "email address") {
		t.Errorf("consent page does not name the client and the scopes:\n%s", p.body)
	}
	p = b.submit(p, map[string]string{"decision": "allow"})
	code, ok := codeFrom(t, p, ar)
	if !ok {
		t.Fatalf("after consent: got %s (Location %q), want a code at the redirect_uri", p, p.header.Get("Location"))
	}

	tok, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken := verifyIDToken(t, rp, tok, ar)
	var claims struct {
		AMR               []string `json:"amr"`
		ACR               string   `json:"acr"`
		AuthTime          int64    `json:"auth_time"`
		Email             string   `json:"email"`
		EmailVerified     bool     `json:"email_verified"`
		Name              string   `json:"name"`
		PreferredUsername string   `json:"preferred_username"`
		Groups            []string `json:"groups"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !has(claims.AMR, "otp") || !has(claims.AMR, "pwd") || !has(claims.AMR, "mfa") {
		t.Errorf("amr: got %v, want pwd, otp and mfa", claims.AMR)
	}
	if claims.AuthTime < now.Add(-time.Minute).Unix() || claims.AuthTime > time.Now().Unix()+1 {
		t.Errorf("auth_time: got %d, want about %d", claims.AuthTime, now.Unix())
	}
	if claims.Email != "alice@example.com" || !claims.EmailVerified || claims.PreferredUsername != "alice" ||
		claims.Name != "Alice Example" || strings.Join(claims.Groups, ",") != "staff,admins" {
		t.Errorf("claims: got %+v", claims)
	}
	if idToken.Subject == "alice" || idToken.Subject == "" {
		t.Errorf("sub: got %q, want an opaque id, not the username", idToken.Subject)
	}

	// userinfo answers with the Authorization header.
	info, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != idToken.Subject || info.Email != "alice@example.com" {
		t.Errorf("userinfo: got sub %q email %q, want %q alice@example.com", info.Subject, info.Email, idToken.Subject)
	}

	// Refresh works, and the refresh token it replaced is refused after.
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token despite offline_access")
	}
	old := tok.RefreshToken
	refreshed, err := rp.config.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == old {
		t.Errorf("refresh: got refresh token %q, want a new one", refreshed.RefreshToken)
	}
	if _, err := rp.config.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil {
		t.Errorf("reusing a rotated refresh token: got tokens, want invalid_grant")
	}

	// The same code cannot be exchanged twice, and the replay revokes what
	// the code issued (RFC 6749 §4.1.2).
	if _, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(ar.verifier)); err == nil {
		t.Errorf("second exchange of one code: got tokens, want an error")
	} else if !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("second exchange of one code: got %v, want invalid_grant", err)
	}
	if _, err := rp.config.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
		t.Errorf("refresh after the code was replayed: got tokens, want the grant revoked")
	}

	// A second login in a new browser: no QR code, no secret; the code of
	// the current step passes. Consent is remembered.
	b2 := newBrowser(t, testRedirect)
	ar2 := rp.newAuthRequest()
	p = b2.get(ar2.url)
	p = b2.submit(p, map[string]string{"username": "alice", "password": "correct horse battery staple"})
	if p.url.Path != "/login/totp" {
		t.Fatalf("second login after the password: got %s", p)
	}
	if strings.Contains(p.body, "otpauth://") || strings.Contains(p.body, "data:image/png") || strings.Contains(p.body, key.Secret()[:8]) {
		t.Errorf("second login shows enrolment material:\n%s", p.body)
	}
	// Replaying the code the first login used is refused.
	p = b2.submit(p, map[string]string{"code": codeAt(t, key, now.Add(-30*time.Second))})
	if _, ok := codeFrom(t, p, ar2); ok || p.url.Path != "/login/totp" {
		t.Fatalf("replayed code: got %s, want the code page again", p)
	}
	p = b2.submit(p, map[string]string{"code": codeAt(t, key, now)})
	code2, ok := codeFrom(t, p, ar2)
	if !ok {
		t.Fatalf("second login: got %s (Location %q), want a code (consent remembered)", p, p.header.Get("Location"))
	}
	tok2, err := rp.config.Exchange(ctx, code2, oauth2.VerifierOption(ar2.verifier))
	if err != nil {
		t.Fatalf("second exchange: %v", err)
	}
	verifyIDToken(t, rp, tok2, ar2)

	// With a session, prompt=none yields a code without any page.
	ar3 := rp.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	if _, ok := codeFrom(t, b2.get(ar3.url), ar3); !ok {
		t.Errorf("prompt=none with a session: want a code")
	}

	// prompt=login and max_age=0 force both factors again, even with a
	// session; login_hint prefills the username.
	for _, opt := range []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("max_age", "0"),
	} {
		ar := rp.newAuthRequest(opt, oauth2.SetAuthURLParam("login_hint", "alice"))
		p := b2.get(ar.url)
		if p.url.Path != "/login" {
			t.Errorf("forced re-authentication: got %s, want /login", p)
		}
		if f := findForm(t, p.body, map[string]string{"username": ""}); f.fields["username"] != "alice" {
			t.Errorf("login_hint: username field holds %q, want alice", f.fields["username"])
		}
	}

	// Without a session, prompt=none answers login_required to the client.
	ar5 := rp.newAuthRequest(oauth2.SetAuthURLParam("prompt", "none"))
	p = newBrowser(t, testRedirect).get(ar5.url)
	if loc, _ := url.Parse(p.header.Get("Location")); loc == nil || loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none without a session: got %s (Location %q), want error=login_required", p, p.header.Get("Location"))
	}

	// The operations surface counted what happened.
	metrics := b2.get(in.issuer + "/metrics").body
	for _, want := range []string{
		`twostep_login_attempts_total{outcome="success",step="totp"} 2`,
		`twostep_login_attempts_total{outcome="replayed",step="totp"} 1`,
		`twostep_tokens_issued_total{grant_type="authorization_code"} 2`,
		`twostep_tokens_issued_total{grant_type="refresh_token"} 1`,
		`twostep_http_requests_total{code="200",method="GET",route="GET /login"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func verifyIDToken(t *testing.T, rp *relyingParty, tok *oauth2.Token, ar authRequest) *gooidc.IDToken {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("token response has no id_token")
	}
	idToken, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	if idToken.Nonce != ar.nonce {
		t.Errorf("nonce: got %q, want %q", idToken.Nonce, ar.nonce)
	}
	return idToken
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestNoCodeWithoutBothFactors: a wrong password, a wrong code, and a
// browser that finished only the password step never get a code.
func TestNoCodeWithoutBothFactors(t *testing.T) {
	forEachDatabase(t, testNoCodeWithoutBothFactors)
}

func testNoCodeWithoutBothFactors(t *testing.T, database string, getenv func(string) string) {
	in := startServer(t, database, getenv)
	addUser(t, in, "bob", "a long enough password")
	rp := newRelyingParty(t, in)

	t.Run("wrong password", func(t *testing.T) {
		b := newBrowser(t, testRedirect)
		ar := rp.newAuthRequest()
		p := b.submit(b.get(ar.url), map[string]string{"username": "bob", "password": "wrong password"})
		if p.url.Path != "/login" || !strings.Contains(p.body, "Incorrect username or password") {
			t.Fatalf("wrong password: got %s, want the login page with an error", p)
		}
		unknown := b.submit(p, map[string]string{"username": "nobody", "password": "wrong password"})
		if !strings.Contains(unknown.body, "Incorrect username or password") {
			t.Errorf("unknown user: got a different message than a wrong password")
		}
	})

	t.Run("password only", func(t *testing.T) {
		b := newBrowser(t, testRedirect)
		ar := rp.newAuthRequest()
		p := b.submit(b.get(ar.url), map[string]string{"username": "bob", "password": "a long enough password"})
		if p.url.Path != "/login/totp" {
			t.Fatalf("after the password: got %s", p)
		}
		// Skip the TOTP step: go straight back to authorize, and to consent.
		for _, u := range []string{ar.url, in.issuer + "/consent?auth_request=x", in.issuer + "/oauth2/auth?auth_request=x"} {
			p := b.get(u)
			if code, ok := codeFrom(t, p, ar); ok {
				t.Errorf("GET %s after only the password: got code %q", u, code)
			}
		}
		p = b.get(ar.url)
		if p.url.Path != "/login" {
			t.Errorf("authorize after only the password: got %s, want /login", p)
		}
	})

	t.Run("wrong code", func(t *testing.T) {
		b := newBrowser(t, testRedirect)
		ar := rp.newAuthRequest()
		p := b.submit(b.get(ar.url), map[string]string{"username": "bob", "password": "a long enough password"})
		p = b.submit(p, map[string]string{"code": "000000"})
		if _, ok := codeFrom(t, p, ar); ok || p.url.Path != "/login/totp" {
			t.Fatalf("wrong code: got %s, want the code page again", p)
		}
		if p2 := b.get(ar.url); p2.url.Path != "/login" {
			t.Errorf("authorize after a wrong code: got %s, want /login", p2)
		}
	})

	t.Run("unknown redirect_uri shows a page, never redirects", func(t *testing.T) {
		b := newBrowser(t, testRedirect)
		u := strings.Replace(rp.newAuthRequest().url, url.QueryEscape(testRedirect), url.QueryEscape("https://evil.example/cb"), 1)
		p := b.get(u)
		if p.status != http.StatusBadRequest || p.url.Host != strings.TrimPrefix(in.issuer, "http://") {
			t.Errorf("bad redirect_uri: got %s, want a 400 page on twostep", p)
		}
	})

	t.Run("plain PKCE refused", func(t *testing.T) {
		b := newBrowser(t, testRedirect)
		ar := rp.newAuthRequest()
		u := strings.Replace(ar.url, "code_challenge_method=S256", "code_challenge_method=plain", 1)
		p := b.get(u)
		loc, _ := url.Parse(p.header.Get("Location"))
		if loc == nil || loc.Query().Get("error") == "" {
			t.Errorf("plain PKCE: got %s, want an error redirect", p)
		}
	})
}

// TestBadInput: oversized and malformed requests get a clear 400 and
// change nothing.
func TestBadInput(t *testing.T) {
	in := startServer(t, "", nil)
	big := strings.Repeat("a", 2<<20)
	tests := []struct {
		name, path, contentType, body, want string
	}{
		{"oversized login form", "/login", "application/x-www-form-urlencoded", "username=" + big, "text/html"},
		{"malformed login form", "/login", "application/x-www-form-urlencoded", "username=%zz", "text/html"},
		{"oversized token request", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=" + big, "application/json"},
		{"malformed token request", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=%zz", "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(in.issuer+tc.path, tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got status %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.want) {
				t.Errorf("got Content-Type %q, want %s", ct, tc.want)
			}
		})
	}
}

// TestCLI checks the command line's contract: clear errors, non-zero exits,
// nothing half-written.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	in := &instance{database: "sqlite:" + filepath.Join(dir, "cli.db"), getenv: func(string) string { return "" }}
	out, err := in.cli(t, "", "user", "add", "carol", "--email", "carol@example.com")
	if err != nil || !strings.Contains(out, "password: ") {
		t.Fatalf("user add without --password-stdin: got %v, %q; want a generated password", err, out)
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"duplicate user", "a long enough password\n", []string{"user", "add", "carol", "--password-stdin"}, "already exists"},
		{"short password", "short\n", []string{"user", "add", "dave", "--password-stdin"}, "at least 12 characters long"},
		{"breached password", "qwerty123456\n", []string{"user", "add", "dave", "--password-stdin"}, "common breached passwords"},
		{"passwd needs stdin flag", "", []string{"user", "passwd", "carol"}, "--password-stdin is required"},
		{"unknown user", "", []string{"user", "show", "nobody"}, `no user "nobody"`},
		{"client without redirect", "", []string{"client", "add", "--id", "x"}, "--redirect-uri is required"},
		{"client http redirect", "", []string{"client", "add", "--id", "x", "--redirect-uri", "http://example.com/cb"}, "https"},
		{"public client without pkce", "", []string{"client", "add", "--id", "x", "--redirect-uri", "https://a/cb", "--public", "--no-pkce"}, "--no-pkce"},
		{"unknown command", "", []string{"frobnicate"}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := in.cli(t, tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v (output %q), want one containing %q", err, out, tc.wantErr)
			}
		})
	}
	out, err = in.cli(t, "", "user", "list")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "carol") {
		t.Errorf("user list after failed adds: got %v, %q; want only carol", err, out)
	}
	out, err = in.cli(t, "", "client", "list")
	if err != nil || strings.Contains(out, "\nx ") {
		t.Errorf("client list after failed adds: got %v, %q; want no client x", err, out)
	}
}
