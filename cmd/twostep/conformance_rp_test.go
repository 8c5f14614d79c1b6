package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp"
	"golang.org/x/net/html"

	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
)

// The scripted relying party of TestConformance: twostep behind a TLS
// front, the modules' users, clients and browsers, and the user who
// signs in, enrols, keeps the recovery codes and consents.

// conformanceOP is twostep serving behind a TLS front, as the suite
// requires (every endpoint https), with what every module's setup
// fetched: the discovery document and the JWKS.
type conformanceOP struct {
	in     *instance
	issuer string
	host   string // the issuer's host:port
	// tr trusts the TLS front's certificate.
	tr    http.RoundTripper
	store *storage.Store // registers clients with every setting
	disc  map[string]any
	jwks  jose.JSONWebKeySet
	// setupProblems is what the suite's per-module setup (CheckServerConfiguration,
	// ValidateServerJWKs, CheckForKeyIdInServerJWKs, ...) finds; every module
	// reports it.
	setupProblems []string
	seq           atomic.Int64

	mu      sync.Mutex
	results []*module
}

func startConformanceOP(t *testing.T) *conformanceOP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := &conformanceOP{issuer: "https://" + l.Addr().String(), host: l.Addr().String()}
	var backend *url.URL
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend)
		r.SetXForwarded()
		r.Out.Host = r.In.Host
	}})
	front.Listener.Close()
	front.Listener = l
	in, base := startInstance(t, "", nil, op.issuer)
	if backend, err = url.Parse(base); err != nil {
		t.Fatal(err)
	}
	front.StartTLS()
	t.Cleanup(front.Close)
	op.in, op.tr = in, front.Client().Transport

	// Clients are not sealed: any key opens the store to register them.
	op.store, err = storage.Open(context.Background(), in.database, storage.Options{
		SecretKeys: []storage.SecretKey{{Version: 1, Key: bytes.Repeat([]byte{7}, 32)}}})
	if err != nil {
		t.Fatalf("open the store to register clients: %v", err)
	}
	t.Cleanup(func() { op.store.Close() })

	disc := op.get(t, op.issuer+"/.well-known/openid-configuration")
	if disc.status != http.StatusOK || disc.json == nil {
		t.Fatalf("discovery: got %s, want 200 with a JSON object", disc)
	}
	op.disc = disc.json
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "issuer"} {
		if op.str(k) == "" { // CheckServerConfiguration
			op.setupProblems = append(op.setupProblems, fmt.Sprintf("discovery lacks %s", k))
		}
	}
	if methods, ok := op.disc["token_endpoint_auth_methods_supported"]; ok && !has(strSlice(methods), "client_secret_basic") {
		op.setupProblems = append(op.setupProblems, fmt.Sprintf(
			"token_endpoint_auth_methods_supported is %v, want client_secret_basic in it (EnsureServerConfigurationSupportsClientSecretBasic)", methods))
	}
	jwks := op.get(t, op.str("jwks_uri"))
	if jwks.status != http.StatusOK || jwks.json == nil {
		t.Fatalf("jwks_uri: got %s, want 200 with a JSON object (FetchServerKeys)", jwks)
	}
	var problems []string
	op.jwks, problems = checkJWKS(jwks)
	op.setupProblems = append(op.setupProblems, problems...)

	t.Cleanup(op.printSummary)
	return op
}

var base64URL = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkJWKS parses a JWKS and returns what ValidateServerJWKs,
// CheckForKeyIdInServerJWKs, CheckDistinctKeyIdValueInServerJWKs and
// EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys find in it.
func checkJWKS(r endpointResponse) (jose.JSONWebKeySet, []string) {
	var set jose.JSONWebKeySet
	var problems []string
	keys, ok := r.json["keys"].([]any)
	if !ok {
		return set, []string{fmt.Sprintf("JWKS: no keys array in %s", r.raw)}
	}
	kids := map[string]bool{}
	for i, k := range keys {
		key, _ := k.(map[string]any)
		kty, _ := key["kty"].(string)
		kid, _ := key["kid"].(string)
		if kid == "" {
			problems = append(problems, fmt.Sprintf("JWKS key %d has no kid (CheckForKeyIdInServerJWKs, OIDCC-10.1)", i))
		} else if kids[kid] {
			problems = append(problems, fmt.Sprintf("JWKS kid %q appears twice (CheckDistinctKeyIdValueInServerJWKs, RFC 7517 §4.5)", kid))
		}
		kids[kid] = true
		required := map[string][]string{"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}}[kty]
		if required == nil {
			problems = append(problems, fmt.Sprintf("JWKS key %q has kty %q, want RSA or EC (no symmetric keys, RFC 7518 §6.3.2.1)", kid, kty))
		}
		for _, m := range required {
			v, _ := key[m].(string)
			if m != "crv" && !base64URL.MatchString(v) {
				problems = append(problems, fmt.Sprintf("JWKS key %q: %s is %q, want unpadded base64url (ValidateServerJWKs)", kid, m, v))
			}
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := key[private]; ok {
				problems = append(problems, fmt.Sprintf("JWKS key %q publishes the private member %q (EnsureServerJwksDoesNotContainPrivateOrSymmetricKeys)", kid, private))
			}
		}
	}
	if err := json.Unmarshal([]byte(r.raw), &set); err != nil {
		problems = append(problems, fmt.Sprintf("JWKS does not parse as JWKs: %v", err))
	}
	if len(keys) == 0 {
		problems = append(problems, "JWKS has no keys")
	}
	return set, problems
}

// str returns a string member of the discovery document.
func (op *conformanceOP) str(name string) string {
	s, _ := op.disc[name].(string)
	return s
}

// endpointResponse is an answer of a JSON endpoint (or any other), its
// JSON object decoded with numbers kept as json.Number.
type endpointResponse struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (r endpointResponse) String() string {
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(r.raw))
}

func (r endpointResponse) field(name string) string {
	s, _ := r.json[name].(string)
	return s
}

func (op *conformanceOP) client() *http.Client {
	return &http.Client{Transport: op.tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (op *conformanceOP) do(t *testing.T, req *http.Request) endpointResponse {
	t.Helper()
	resp, err := op.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := endpointResponse{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	r.json, _ = decodeJSONObject(raw)
	return r
}

func (op *conformanceOP) get(t *testing.T, u string) endpointResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("GET %q: %v", u, err)
	}
	return op.do(t, req)
}

func decodeJSONObject(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// printSummary prints one line per module once every module has ended.
func (op *conformanceOP) printSummary() {
	op.mu.Lock()
	defer op.mu.Unlock()
	sort.Slice(op.results, func(i, j int) bool { return op.results[i].order < op.results[j].order })
	var b strings.Builder
	b.WriteString("conformance summary:\n")
	for _, m := range op.results {
		status := "PASS"
		switch {
		case m.t.Failed():
			status = "FAIL"
		case m.t.Skipped():
			status = "SKIP"
		}
		fmt.Fprintf(&b, "  %s: %s", m.name, status)
		m.mu.Lock()
		if status != "PASS" && len(m.notes) > 0 {
			first, _, _ := strings.Cut(m.notes[0], "\n")
			fmt.Fprintf(&b, ": %s", first)
			if len(m.notes) > 1 {
				fmt.Fprintf(&b, " (and %d more)", len(m.notes)-1)
			}
		}
		if len(m.warnings) > 0 {
			fmt.Fprintf(&b, " [warnings: %s]", strings.Join(m.warnings, "; "))
		}
		m.mu.Unlock()
		b.WriteString("\n")
	}
	fmt.Fprint(os.Stdout, b.String())
}

// module is one module's run: its own user, client and browser.
type module struct {
	t        *testing.T
	op       *conformanceOP
	name     string
	order    int   // the module's place in the summary
	seq      int64 // numbers the module's user
	formPost bool
	parent   *module // for a sibling

	username string
	key      *otp.Key // once enrolled
	lastStep int64    // the last TOTP step this user's codes used
	c        *confClient
	b        *browser
	// seen lists the pages the user went through in the last
	// authorization: "login", "code", "consent".
	seen []string

	mu       sync.Mutex
	notes    []string // failures and skip reasons, for the summary
	warnings []string // what the suite reports as a warning
}

// confClient is a registered static client.
type confClient struct {
	id, secret string
	// secretPost authenticates with client_secret_post instead of
	// client_secret_basic.
	secretPost bool
}

func (op *conformanceOP) newModule(t *testing.T, name string, order int, formPost bool) *module {
	m := &module{t: t, op: op, name: name, order: order, seq: op.seq.Add(1), formPost: formPost}
	op.mu.Lock()
	op.results = append(op.results, m)
	op.mu.Unlock()
	for _, p := range op.setupProblems {
		m.errorf("setup (as every module of the suite checks): %s", p)
	}
	return m
}

// sibling is a second user in the same module, with its own browser and
// the module's client, reporting to the module.
func (m *module) sibling() *module {
	return &module{t: m.t, op: m.op, name: m.name, seq: m.op.seq.Add(1), formPost: m.formPost, parent: m, c: m.client()}
}

func (m *module) note(s string) {
	if m.parent != nil {
		m.parent.note(s)
		return
	}
	m.mu.Lock()
	m.notes = append(m.notes, s)
	m.mu.Unlock()
}

func (m *module) errorf(format string, args ...any) {
	m.t.Helper()
	msg := fmt.Sprintf(format, args...)
	m.note(msg)
	m.t.Error(msg)
}

func (m *module) fatalf(format string, args ...any) {
	m.t.Helper()
	msg := fmt.Sprintf(format, args...)
	m.note(msg)
	m.t.Fatal(msg)
}

func (m *module) skipf(format string, args ...any) {
	m.t.Helper()
	msg := fmt.Sprintf(format, args...)
	m.note("skipped: " + msg)
	m.t.Skip(msg)
}

// warnf records what the suite reports as a warning: the module still
// passes.
func (m *module) warnf(format string, args ...any) {
	m.t.Helper()
	msg := fmt.Sprintf(format, args...)
	root := m
	if m.parent != nil {
		root = m.parent
	}
	root.mu.Lock()
	root.warnings = append(root.warnings, msg)
	root.mu.Unlock()
	m.t.Log("WARNING: " + msg)
}

// user returns the module's user, creating it (not yet enrolled) and a
// browser on first use.
func (m *module) user() string {
	if m.username == "" {
		m.username = fmt.Sprintf("conf%d", m.seq)
		addUser(m.t, m.op.in, m.username, racePassword)
		m.b = m.newBrowser()
	}
	return m.username
}

// newBrowser is a cookie-jar browser that trusts the TLS front and stops
// at the first response that leaves twostep.
func (m *module) newBrowser() *browser {
	b := newBrowser(m.t, confRedirect)
	b.client.Transport = m.op.tr
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != m.op.host || len(via) >= 15 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// clientOptions are the settings of a registered client beyond the
// defaults (confidential, no PKCE required: the suite's static client).
type clientOptions struct {
	secretPost  bool
	requirePAR  bool
	idTokenAlg  string
	backchannel string
}

// client returns the module's client, registering it on first use.
func (m *module) client() *confClient {
	if m.c == nil {
		m.c = m.registerClient(clientOptions{})
	}
	return m.c
}

// registerClient registers a client with a new secret, the module's
// redirect and post-logout redirect URIs, and o.
func (m *module) registerClient(o clientOptions) *confClient {
	m.t.Helper()
	secret, err := randomString(32)
	if err != nil {
		m.t.Fatal(err)
	}
	hash, _ := storage.SecretHasher{}.Hash(context.Background(), []byte(secret))
	c := &storage.Client{
		ID: fmt.Sprintf("conf-%d-%d", m.seq, time.Now().UnixNano()), SecretHash: hash, Name: "Conformance RP",
		RedirectURIs: []string{confRedirect}, PostLogoutRedirectURIs: []string{confPostLogout},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: oidc.SupportedScopes, RequirePAR: o.requirePAR, IDTokenAlg: o.idTokenAlg,
		BackchannelLogoutURI: o.backchannel,
	}
	if err := m.op.store.CreateClient(context.Background(), c); err != nil {
		m.t.Fatalf("register client: %v", err)
	}
	return &confClient{id: c.ID, secret: secret, secretPost: o.secretPost}
}

// authzRequest is one authorization request.
type authzRequest struct {
	params url.Values
	// state and nonce are what the response and ID token must carry
	// ("" when not sent); verifier is the PKCE verifier.
	state, nonce, verifier string
	client                 *confClient
	post                   bool // sent as a form POST
	reversed               bool // parameters in reverse alphabetical order
}

// newRequest is the suite's CreateAuthorizationRequestSteps: response_type
// code, the client's redirect_uri, scope, a random state and nonce, and
// response_mode=form_post in the Form Post plan.
func (m *module) newRequest(scope string) *authzRequest {
	return m.newRequestFor(m.client(), scope)
}

// newRequestFor is newRequest for another client of the module.
func (m *module) newRequestFor(c *confClient, scope string) *authzRequest {
	req := &authzRequest{state: randomHex() + randomHex(), nonce: randomHex() + randomHex(), client: c}
	req.params = url.Values{"client_id": {c.id}, "redirect_uri": {confRedirect}, "scope": {scope},
		"response_type": {"code"}, "state": {req.state}, "nonce": {req.nonce}}
	if m.formPost {
		req.params.Set("response_mode", "form_post")
	}
	return req
}

// randomText is n random URL-safe characters.
func randomText(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(randomHex())
	}
	return b.String()[:n]
}

func (req *authzRequest) set(k, v string) *authzRequest {
	req.params.Set(k, v)
	switch k {
	case "state":
		req.state = v
	case "nonce":
		req.nonce = v
	}
	return req
}

func (req *authzRequest) del(k string) *authzRequest {
	req.params.Del(k)
	switch k {
	case "state":
		req.state = ""
	case "nonce":
		req.nonce = ""
	}
	return req
}

func (m *module) authEndpoint() string { return m.op.str("authorization_endpoint") }

// url is the request as a link to the authorization endpoint.
func (req *authzRequest) url(endpoint string) string {
	if !req.reversed {
		return endpoint + "?" + req.params.Encode()
	}
	keys := make([]string, 0, len(req.params))
	for k := range req.params {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	var parts []string
	for _, k := range keys {
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(req.params.Get(k)))
	}
	return endpoint + "?" + strings.Join(parts, "&")
}

// authResponse is where an authorization ended.
type authResponse struct {
	// reached is true when the response was addressed to the client:
	// by a redirect ("query", or "fragment") or an auto-submitting form
	// ("form_post").
	reached bool
	via     string
	target  *url.URL
	params  url.Values
	// page is the last page of twostep the browser saw.
	page page
}

// authorize sends req from the module's browser and plays the user (the
// password, the code, enrolling the authenticator on the first login,
// the recovery codes and consent) until the response leaves twostep, or
// twostep stops on a page the user cannot get past.
func (m *module) authorize(req *authzRequest) authResponse {
	m.t.Helper()
	m.user()
	if req.post {
		return m.play(postRaw(m.t, m.b, m.authEndpoint(), req.params))
	}
	return m.play(m.b.get(req.url(m.authEndpoint())))
}

func (m *module) play(p page) authResponse {
	m.t.Helper()
	m.seen = nil
	for range 12 {
		if resp, ok := m.responseOf(p); ok {
			return resp
		}
		if p.status != http.StatusOK || p.url.Host != m.op.host {
			return authResponse{page: p}
		}
		switch {
		case p.url.Path == "/login" && hasInput(p.body, "password"):
			m.seen = append(m.seen, "login")
			p = m.b.submit(p, map[string]string{"username": m.user(), "password": racePassword})
		case p.url.Path == "/login/totp" && hasInput(p.body, "code"):
			m.seen = append(m.seen, "code")
			p = m.b.submit(p, map[string]string{"code": m.code(p)})
			if p.url.Path == "/login/totp" && hasInput(p.body, "code") {
				m.fatalf("the code was refused: %s", describe(authResponse{page: p}))
			}
		case recoveryCodePattern.MatchString(p.body):
			_, p = m.b.recoveryCodes(p)
		case p.url.Path == "/consent" && hasInput(p.body, "decision"):
			m.seen = append(m.seen, "consent")
			p = m.b.submit(p, map[string]string{"decision": "allow"})
		default:
			return authResponse{page: p}
		}
	}
	m.fatalf("authorization: still on twostep's pages after 12 steps: %s", p)
	return authResponse{}
}

// codeAhead is how many 30-second steps ahead of the clock the user's
// authenticator may be: twostep accepts codes within one step either way.
// With 0 the user always waits for a new code when the current one was
// used, and modules that sign in twice take up to 30 seconds more.
const codeAhead = 1

// code is what the user types on the code page: on the enrolment page,
// the current code of the new authenticator; later, a code of a time
// step after every step this user already used (a code works once),
// which the server accepts now, waiting for the clock when there is none.
func (m *module) code(p page) string {
	if uri := otpauthURI(p.body); uri != "" {
		key, err := otp.NewKeyFromURL(uri)
		if err != nil {
			m.fatalf("enrolment page: otpauth URI %q: %v", uri, err)
		}
		m.key = key
		now := time.Now()
		m.lastStep = now.Unix() / 30
		return codeAt(m.t, key, now)
	}
	if m.key == nil {
		m.fatalf("code page for a user who never enrolled:\n%s", p.body)
	}
	for {
		now := time.Now().Unix() / 30
		step := max(now, m.lastStep+1)
		if step <= now+codeAhead {
			m.lastStep = step
			return codeAt(m.t, m.key, time.Unix(step*30, 0))
		}
		time.Sleep(time.Until(time.Unix((step-codeAhead)*30, 0)) + 200*time.Millisecond)
	}
}

func (m *module) saw(page string) bool { return has(m.seen, page) }

// hasInput reports whether body has an input or button named name.
func hasInput(body, name string) bool {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return false
	}
	found := false
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "button") && attr(n, "name") == name {
			found = true
		}
		for c := n.FirstChild; c != nil && !found; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

// responseOf recognises an authorization response addressed to the
// client: a redirect away from twostep, or a form_post page.
func (m *module) responseOf(p page) (authResponse, bool) {
	if p.status >= 300 && p.status < 400 {
		loc, err := p.url.Parse(p.header.Get("Location"))
		if err != nil || loc.Host == m.op.host {
			return authResponse{}, false
		}
		resp := authResponse{reached: true, via: "query", target: loc, params: loc.Query(), page: p}
		if loc.Fragment != "" {
			resp.via = "fragment"
			resp.params, _ = url.ParseQuery(loc.Fragment)
		}
		return resp, true
	}
	if p.status != http.StatusOK || p.url.Host != m.op.host {
		return authResponse{}, false
	}
	fp, ok := parseFormPost(p.body)
	if !ok {
		return authResponse{}, false
	}
	action, err := p.url.Parse(fp.action)
	if err != nil || action.Host == m.op.host {
		return authResponse{}, false
	}
	m.checkFormPostPage(p, fp, action)
	return authResponse{reached: true, via: "form_post", target: action, params: fp.fields, page: p}, true
}

// formPostPage is the first form of a page, with what makes it submit
// itself.
type formPostPage struct {
	action, method, enctype string
	fields                  url.Values
	scripts                 []formScript
	noscriptButton          bool
}

type formScript struct{ nonce, body string }

func parseFormPost(body string) (formPostPage, bool) {
	// With scripting off, <noscript> content is parsed as elements.
	doc, err := html.ParseWithOptions(strings.NewReader(body), html.ParseOptionEnableScripting(false))
	if err != nil {
		return formPostPage{}, false
	}
	var fp formPostPage
	forms := 0
	var walk func(n *html.Node, inForm, inNoscript bool)
	walk = func(n *html.Node, inForm, inNoscript bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				forms++
				if forms == 1 {
					fp.action, fp.method, fp.enctype = attr(n, "action"), attr(n, "method"), attr(n, "enctype")
					fp.fields = url.Values{}
					inForm = true
				} else {
					inForm = false
				}
			case "noscript":
				inNoscript = true
			case "input":
				if inForm && attr(n, "type") == "hidden" {
					fp.fields.Add(attr(n, "name"), attr(n, "value"))
				}
				if inNoscript && attr(n, "type") == "submit" {
					fp.noscriptButton = true
				}
			case "button":
				if inNoscript && (attr(n, "type") == "" || attr(n, "type") == "submit") {
					fp.noscriptButton = true
				}
			case "script":
				var s strings.Builder
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					s.WriteString(c.Data)
				}
				fp.scripts = append(fp.scripts, formScript{nonce: attr(n, "nonce"), body: s.String()})
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm, inNoscript)
		}
	}
	walk(doc, false, false)
	return fp, forms > 0 && fp.action != ""
}
