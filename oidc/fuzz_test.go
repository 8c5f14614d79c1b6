package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
	"github.com/twostep/twostep/templates"
)

// The clients of FuzzAuthorizeRequest, and where each may send browsers.
// Their IDs and redirect URIs are disjoint, so a redirect to one client's
// URI for a request naming another shows up.
var fuzzClients = func() []storage.Client {
	app := appClient(appID) // confidential, PKCE, one redirect URI
	app.SkipConsent = true
	consent := appClient("consent") // two redirect URIs: redirect_uri is required
	consent.RedirectURIs = []string{"https://consent.example.com/cb", "https://consent.example.com/cb2"}
	native := appClient("native") // RFC 8252 §7.3: any port on the loopback address
	native.RedirectURIs = []string{"http://127.0.0.1/callback"}
	native.Public, native.SkipConsent = true, true
	loose := appClient("loose") // response types twostep composes no handler for
	loose.RedirectURIs = []string{"https://loose.example.com/cb"}
	loose.ResponseTypes = []string{"code", "token", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}
	loose.SkipConsent = true
	return []storage.Client{app, consent, native, loose}
}()

// fuzzKept is the ID of a kept authorization request that every iteration
// of FuzzAuthorizeRequest may resume, as /login and /consent send the
// browser back with ?auth_request=.
const fuzzKept = "kept-0123456789"

// fuzzChallenge is a valid S256 code_challenge.
var fuzzChallenge = func() string {
	sum := sha256.Sum256([]byte("fuzz-verifier-0123456789abcdef0123456789abcdef"))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}()

// fuzzEnv is a provider over a SQLite store that every iteration of
// FuzzAuthorizeRequest shares, with the fuzz clients and one enrolled user.
type fuzzEnv struct {
	store    *storage.Store
	clock    *storagetest.Clock
	sessions *fakeSessions
	mux      *http.ServeMux
}

// newFuzzEnv is newEnv for a fuzz target: set up (and closed) by f.
func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	ctx := context.Background()
	clock := newFakeClock()
	store := storagetest.New(f, storagetest.SQLiteDSN(f), clock.Now)
	pages, err := templates.Parse(templates.Brand{})
	if err != nil {
		f.Fatalf("parse templates: %v", err)
	}
	e := &fuzzEnv{store: store, clock: clock, sessions: &fakeSessions{}, mux: http.NewServeMux()}
	p, err := New(ctx, Config{
		Issuer: testIssuer, Store: store, Pages: pages, Logger: slog.New(slog.DiscardHandler),
		Sessions: e.sessions, HMACSecret: []byte("0123456789abcdef0123456789abcdef"), Now: clock.Now,
	})
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	e.mux.Handle("GET /oauth2/auth", p.Authorize())
	e.mux.Handle("POST /oauth2/auth", p.Authorize())

	for _, c := range fuzzClients {
		if !c.Public {
			sum := sha256.Sum256([]byte(appSecret))
			c.SecretHash = sum[:]
		}
		if err := store.CreateClient(ctx, &c); err != nil {
			f.Fatalf("create client %q: %v", c.ID, err)
		}
	}
	u := storage.User{ID: "sub-alice", Username: "alice", PasswordHash: "unused"}
	if err := store.CreateUser(ctx, u); err != nil {
		f.Fatalf("create user: %v", err)
	}
	if err := store.ConfirmTOTP(ctx, u.ID, testTOTPSecret, 1, nil); err != nil {
		f.Fatalf("confirm totp: %v", err)
	}
	return e
}

// fuzzValid returns a request for a code that the app client may make.
func fuzzValid() url.Values {
	return url.Values{
		"client_id":             {appID},
		"redirect_uri":          {appRedirect},
		"response_type":         {"code"},
		"scope":                 {"openid profile email"},
		"state":                 {"state-0123456789"},
		"nonce":                 {"nonce-0123456789"},
		"code_challenge":        {fuzzChallenge},
		"code_challenge_method": {"S256"},
	}
}

// keep (re)creates the kept request fuzzKept, which issuing a code
// consumes.
func (e *fuzzEnv) keep(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.DeleteAuthRequest(ctx, fuzzKept); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delete kept request: %v", err)
	}
	now := e.clock.Now()
	err := e.store.CreateAuthRequest(ctx, storage.AuthRequest{
		ID: fuzzKept, ClientID: appID, Form: fuzzValid(), RequestedAt: now, ExpiresAt: now.Add(authRequestLifetime),
	})
	if err != nil {
		t.Fatalf("keep request: %v", err)
	}
}

// redirectTargets returns the URIs a response to a request with params may
// send the browser to, outside twostep: those registered for a client the
// request names that the request names as redirect_uri, exactly or as a
// loopback URI on another port, and the single registered URI of a named
// client when redirect_uri is absent or empty (RFC 6749 §3.1.2.3).
func redirectTargets(params url.Values) []*url.URL {
	var out []*url.URL
	requested := params["redirect_uri"]
	omitted := len(requested) == 0 || slices.Contains(requested, "")
	for _, c := range fuzzClients {
		if !slices.Contains(params["client_id"], c.ID) {
			continue
		}
		if omitted && len(c.RedirectURIs) == 1 {
			u, _ := url.Parse(c.RedirectURIs[0])
			out = append(out, u)
		}
		for _, raw := range requested {
			u, err := url.Parse(raw)
			if err != nil {
				continue
			}
			for _, reg := range c.RedirectURIs {
				r, _ := url.Parse(reg)
				loopback := u.Scheme == "http" && r.Scheme == "http" && r.Hostname() == "127.0.0.1" &&
					u.Hostname() == r.Hostname() && u.Path == r.Path && u.RawQuery == r.RawQuery
				if raw == reg || loopback {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// sameEndpoint reports whether u goes to target's scheme, host and path.
func sameEndpoint(u, target *url.URL) bool {
	return u.Scheme == target.Scheme && u.Host == target.Host && u.Path == target.Path && u.Opaque == ""
}

// localStep reports whether u is a relative link to /login or /consent with
// only an auth_request.
func localStep(u *url.URL) bool {
	q := u.Query()
	return u.Scheme == "" && u.Host == "" && u.User == nil && (u.Path == "/login" || u.Path == "/consent") &&
		len(q) == 1 && len(q["auth_request"]) == 1 && q.Get("auth_request") != ""
}

var formActionRE = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)

func FuzzAuthorizeRequest(f *testing.F) {
	valid := fuzzValid()
	with := func(kv ...string) string {
		q := url.Values{}
		for k, v := range valid {
			q[k] = slices.Clone(v)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q.Encode()
	}
	for _, s := range []struct {
		query, body    string
		post, signedIn bool
	}{
		{with(), "", false, false},
		{with(), "", false, true},
		{"", with(), true, true},
		{with("redirect_uri", ""), "", false, true},
		{with("client_id", "nobody"), "", false, true},
		{with("client_id", ""), "", false, true},
		{with("redirect_uri", "https://evil.example/cb"), "", false, true},
		{with("redirect_uri", appRedirect+"/more"), "", false, true},
		{with("redirect_uri", appRedirect+"?next=https://evil.example"), "", false, true},
		{with("redirect_uri", "https://consent.example.com/cb"), "", false, true},
		{with("client_id", "consent", "redirect_uri", "https://consent.example.com/cb2"), "", false, true},
		{with("client_id", "consent", "redirect_uri", ""), "", false, true},
		{with("client_id", "native", "redirect_uri", "http://127.0.0.1:49152/callback"), "", false, true},
		{with("client_id", "native", "redirect_uri", "http://127.0.0.1:49152/callback?x=1"), "", false, true},
		{with("client_id", "native", "redirect_uri", "http://localhost:49152/callback"), "", false, true},
		{with("client_id", "native", "redirect_uri", "http://user@127.0.0.1:1/%63allback"), "", false, true},
		{with("client_id", "loose", "redirect_uri", "https://loose.example.com/cb", "response_type", "token"), "", false, true},
		{with("client_id", "loose", "redirect_uri", "https://loose.example.com/cb", "response_type", "code id_token"), "", false, true},
		{with("response_mode", "form_post"), "", false, true},
		{with("response_mode", "form_post", "redirect_uri", "https://evil.example/cb"), "", false, true},
		{with("response_mode", "fragment", "prompt", "none"), "", false, false},
		{with("prompt", "login"), "", false, true},
		{with("prompt", "none consent"), "", false, true},
		{with("max_age", "-1"), "", false, true},
		{with("max_age", "0", "acr_values", storage.ACRTOTP), "", false, true},
		{with("code_challenge_method", "plain"), "", false, true},
		{with("code_challenge", ""), "", false, true},
		{with("scope", "openid admin"), "", false, true},
		{with("state", "short"), "", false, true},
		{with("request", "eyJhbGciOiJub25lIn0.e30."), "", false, true},
		{with("request_uri", "https://evil.example/request.jwt"), "", false, true},
		{with("claims", `{"userinfo":{"name":{"essential":true}},"id_token":{"sub":{"value":"sub-bob"}}}`), "", false, true},
		{with("claims", `{"userinfo":`), "", false, true},
		{with("id_token_hint", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdWItYWxpY2UifQ."), "", false, true},
		{with("response_mode", "form_post", "prompt", "none"), "", false, false},
		{with("auth_request", "unknown"), "", false, true},
		{"auth_request=unknown", "", false, true},
		{"auth_request=" + fuzzKept, "", false, true},
		{"auth_request=" + fuzzKept, "", false, false},
		{"auth_request=" + fuzzKept + "&client_id=consent&redirect_uri=https://consent.example.com/cb", "", false, true},
		{"auth_request=" + fuzzKept + "&redirect_uri=https://evil.example/cb", "", false, true},
		{"auth_request=" + fuzzKept, "redirect_uri=https://evil.example/cb", true, true},
		{"auth_request=" + fuzzKept + "&" + with("client_id", "consent", "redirect_uri", "https://consent.example.com/cb"), "", true, true},
		{with() + "&client_id=loose", "", false, true},
		{"client_id=nobody&" + with(), "", false, true},
		{"", with() + "&redirect_uri=https://evil.example/cb", true, true},
		{"redirect_uri=https://evil.example/cb", with(), true, true},
		{with() + ";", "", false, true},
		{with() + "&%zz", "", false, true},
		{"", with() + "&a=%zz", true, true},
		{"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&state=s t\x00\xff", "", false, true},
	} {
		f.Add(s.query, s.body, s.post, s.signedIn)
	}

	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, query, body string, post, signedIn bool) {
		// fosite stamps requests with the wall clock; keep the store's
		// clock with it.
		e.clock.Set(time.Now().UTC().Truncate(time.Second))
		e.sessions.mu.Lock()
		e.sessions.login = nil
		e.sessions.mu.Unlock()
		if signedIn {
			e.sessions.signIn("sub-alice", e.clock.Now().Add(-time.Minute))
		}
		e.keep(t)
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, "/oauth2/auth", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/oauth2/auth", nil)
		}
		req.URL.RawQuery = query // anything, as a proxy might pass it on
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		res := rec.Result()
		page, _ := io.ReadAll(res.Body)

		if res.StatusCode >= 500 {
			t.Fatalf("got status %d, want < 500; body:\n%s", res.StatusCode, page)
		}
		// Every value the request carries, from the query and the body;
		// fosite reads a subset of them. A GET with ?auth_request= carries
		// only the kept request's, or nothing when there is no such request.
		params, _ := url.ParseQuery(query)
		if id := params.Get("auth_request"); !post && id != "" {
			params = url.Values{}
			if id == fuzzKept {
				params = fuzzValid()
			}
		}
		if post {
			form, _ := url.ParseQuery(body)
			for k, v := range form {
				params[k] = append(params[k], v...)
			}
		}
		targets := redirectTargets(params)
		allowed := func(u *url.URL) bool {
			return slices.ContainsFunc(targets, func(target *url.URL) bool { return sameEndpoint(u, target) })
		}

		loc := res.Header.Get("Location")
		if len(targets) == 0 {
			// RFC 6749 §4.1.2.1: an unknown client or redirect_uri gets a
			// page, never a redirect.
			if res.StatusCode != http.StatusBadRequest || loc != "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got status %d, Location %q, Content-Type %q for an unregistered client or redirect_uri; want a 400 page",
					res.StatusCode, loc, res.Header.Get("Content-Type"))
			}
		}
		if res.StatusCode >= 300 && res.StatusCode < 400 && loc == "" {
			t.Fatalf("got status %d without a Location", res.StatusCode)
		}
		if loc != "" {
			u, err := url.Parse(loc)
			switch {
			case err != nil:
				t.Fatalf("got Location %q that does not parse: %v", loc, err)
			case res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther:
				t.Fatalf("got Location %q with status %d, want 302 or 303", loc, res.StatusCode)
			case localStep(u):
				// On to the login or consent step, for a verified client.
			case !allowed(u):
				t.Fatalf("got a redirect to %q, want only /login, /consent or one of %v", loc, targets)
			case !slices.Contains(params["client_id"], "loose") &&
				(u.Query().Get("error") == "server_error" || strings.Contains(u.Fragment, "error=server_error")):
				// Only the hybrid response types of "loose" end in fosite's
				// server_error (see TestAuthorizeErrorRedirects).
				t.Fatalf("got a server_error redirect %q, want a client error or a code", loc)
			}
		}
		for _, m := range formActionRE.FindAllStringSubmatch(string(page), -1) {
			action := html.UnescapeString(m[1])
			u, err := url.Parse(action)
			if err != nil {
				t.Fatalf("got form action %q that does not parse: %v", action, err)
			}
			local := u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(action, "//")
			if !local && !allowed(u) {
				t.Fatalf("got a form posting to %q, want only a local path or one of %v", action, targets)
			}
		}
	})
}
