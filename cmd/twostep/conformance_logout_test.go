package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/net/html"
)

// The modules of the RP-Initiated Logout OP plan (OIDCCRpInitiatedLogoutTestPlan)
// and of the Back-Channel Logout OP plan (OIDCCBackchannelRpInitiatedLogoutTestPlan).

// logoutExpect is what a logout module expects of the end_session_endpoint.
type logoutExpect int

const (
	// logoutRedirects: to post_logout_redirect_uri, with state as sent.
	logoutRedirects logoutExpect = iota
	// logoutRefused: no redirect; an error page, or a confirmation
	// after which there is no redirect either.
	logoutRefused
	// logoutErrorPage: no redirect; an error page.
	logoutErrorPage
	// logoutSignedOut: no redirect; a page saying the user is signed
	// out (after a confirmation, if one is asked).
	logoutSignedOut
)

// logoutParam adds one parameter to an end_session request, knowing the
// tokens of the login.
type logoutParam func(m *module, tok tokens, q url.Values)

func withHint(_ *module, tok tokens, q url.Values) { q.Set("id_token_hint", tok.idToken.raw) }

func withRedirect(_ *module, _ tokens, q url.Values) {
	q.Set("post_logout_redirect_uri", confPostLogout)
}

func withState(_ *module, _ tokens, q url.Values) {
	q.Set("state", randomText(128))
}

func withRedirectURI(u string) logoutParam {
	return func(_ *module, _ tokens, q url.Values) { q.Set("post_logout_redirect_uri", u) }
}

// withAlgNoneHint is the suite's ChangeIdTokenToAlgNone.
func withAlgNoneHint(_ *module, tok tokens, q url.Values) {
	parts := strings.Split(tok.idToken.raw, ".")
	q.Set("id_token_hint", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))+"."+parts[1]+".")
}

// withForeignHint is the suite's GenerateFakeIdTokenClaims and
// SignFakeIdToken: the same claims, signed by a key twostep never saw.
func withForeignHint(m *module, tok tokens, q url.Values) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		m.t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: tok.idToken.kid}}, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	claims := map[string]any{}
	for k, v := range tok.idToken.claims {
		claims[k] = v
	}
	claims["iat"], claims["exp"] = time.Now().Unix(), time.Now().Add(time.Hour).Unix()
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		m.t.Fatal(err)
	}
	compact, _ := jws.CompactSerialize()
	q.Set("id_token_hint", compact)
}

var formAction = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)

// logoutOutcome says what the end_session_endpoint answered: "redirect"
// (away from twostep), "confirm" (a form posting back to it), "error"
// (a 4xx or 5xx page) or "page" (any other page).
func (m *module) logoutOutcome(p page) string {
	if p.status >= 300 && p.status < 400 {
		if loc, err := p.url.Parse(p.header.Get("Location")); err == nil && loc.Host != m.op.host {
			return "redirect"
		}
		return "redirect within twostep"
	}
	if p.status >= 400 {
		return "error"
	}
	end, _ := url.Parse(m.op.str("end_session_endpoint"))
	for _, a := range formAction.FindAllStringSubmatch(p.body, -1) {
		if u, err := p.url.Parse(html.UnescapeString(a[1])); err == nil && end != nil && u.Path == end.Path {
			return "confirm"
		}
	}
	return "page"
}

// logout is AbstractOIDCCRpInitiatedLogout: a login, then the browser
// sent to the end_session_endpoint with params, which must do what
// expect says; a user asked to confirm agrees.
func (m *module) logout(expect logoutExpect, params ...logoutParam) {
	end := m.op.str("end_session_endpoint")
	if end == "" {
		m.fatalf("no end_session_endpoint in discovery (OIDCRIL-2.1)")
	}
	tok := m.flow(m.newRequest("openid"))
	q := url.Values{}
	for _, p := range params {
		p(m, tok, q)
	}
	link := end
	if len(q) > 0 {
		link += "?" + q.Encode()
	}
	p := m.b.get(link)
	outcome := m.logoutOutcome(p)
	m.t.Logf("end_session with %v: %s (%s)", sortedKeys(q), outcome, p)
	confirmed := false
	if outcome == "confirm" && expect != logoutErrorPage {
		// The user agrees to sign out.
		p = m.b.submit(p, nil)
		outcome, confirmed = m.logoutOutcome(p), true
	}
	what := fmt.Sprintf("end_session with %v", sortedKeys(q))
	if confirmed {
		what += " and the user's confirmation"
	}
	switch expect {
	case logoutRedirects:
		if outcome != "redirect" {
			m.fatalf("%s: got %s (%s), want a redirect to the post_logout_redirect_uri (OIDCRIL-3)", what, describe(authResponse{page: p}), outcome)
		}
		loc, _ := p.url.Parse(p.header.Get("Location"))
		got := *loc
		got.RawQuery = ""
		if got.String() != confPostLogout {
			m.errorf("%s: redirected to %s, want %s (OIDCRIL-3)", what, loc, confPostLogout)
		}
		params := loc.Query()
		if want := q.Get("state"); params.Get("state") != want {
			m.errorf("%s: post-logout redirect state %q, want %q (CheckPostLogoutState / CheckNoPostLogoutState)", what, params.Get("state"), want)
		}
		for k := range params {
			if k != "state" {
				m.warnf("post-logout redirect carries the unexpected parameter %q (CheckForUnexpectedParametersInPostLogoutRedirect)", k)
			}
		}
		m.expectSignedOut()
	case logoutRefused:
		if outcome == "redirect" {
			m.fatalf("%s: redirected to %s, want no redirect: an error page or a confirmation (OIDCRIL-3)", what, p.header.Get("Location"))
		}
		if outcome != "error" && !confirmed {
			m.errorf("%s: got %s (%s), want an error page or a confirmation", what, p, outcome)
		}
	case logoutErrorPage:
		if outcome != "error" {
			m.fatalf("%s: got %s (%s), want an error page (ExpectInvalidIdTokenHintErrorPage)", what, describe(authResponse{page: p}), outcome)
		}
	case logoutSignedOut:
		if outcome != "page" {
			m.fatalf("%s: got %s (%s), want a page saying the user is signed out (ExpectSuccessfulLogoutPage)", what, describe(authResponse{page: p}), outcome)
		}
		m.expectSignedOut()
	}
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expectSignedOut checks that the browser's login ended: prompt=none
// answers an error that needs the user (the suite), login_required
// (twostep).
func (m *module) expectSignedOut() {
	m.t.Helper()
	req := m.newRequest("openid").set("prompt", "none")
	e := m.expectError(req, m.authorize(req), "interaction_required", "login_required", "account_selection_required", "consent_required")
	if e != "login_required" {
		m.errorf("prompt=none after logout: error %q, want login_required (beyond the suite)", e)
	}
}

func (m *module) logoutDiscovery() {
	for k, v := range m.op.disc {
		if strings.HasSuffix(k, "_endpoint") {
			if why := httpsURL(v); why != "" {
				m.errorf("%s %s (CheckDiscEndpointAllEndpointsAreHttps)", k, why)
			}
		}
	}
	if why := httpsURL(m.op.disc["end_session_endpoint"]); why != "" {
		m.errorf("end_session_endpoint %s (CheckDiscEndSessionEndpoint, OIDCRIL-2.1)", why)
	}
}

func (m *module) backchannelDiscovery() {
	m.logoutDiscovery()
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if m.op.disc[k] != true {
			m.errorf("%s is %v, want true (CheckDiscEndpointBackchannelLogout...Supported, OIDCBCL-2.1)", k, m.op.disc[k])
		}
	}
}

// backchannelRequest is what the client's backchannel_logout_uri received.
type backchannelRequest struct {
	method, contentType string
	form                url.Values
}

func (m *module) backchannelLogout() {
	received := make(chan backchannelRequest, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		received <- backchannelRequest{r.Method, r.Header.Get("Content-Type"), r.PostForm}
		w.Header().Set("Cache-Control", "no-store")
	}))
	m.t.Cleanup(rp.Close)
	m.c = m.registerClient(clientOptions{backchannel: rp.URL + "/backchannel_logout"})
	tok := m.flow(m.newRequest("openid"))
	if m.op.disc["backchannel_logout_session_supported"] == true && tok.idToken.str("sid") == "" {
		m.errorf("id_token has no sid although backchannel_logout_session_supported is true (OIDCBCL-2.1)")
	}
	state := randomHex()
	q := url.Values{"id_token_hint": {tok.idToken.raw}, "post_logout_redirect_uri": {confPostLogout}, "state": {state}}
	p := m.b.get(m.op.str("end_session_endpoint") + "?" + q.Encode())
	if m.logoutOutcome(p) != "redirect" {
		m.errorf("end_session: got %s, want a redirect to the post_logout_redirect_uri", describe(authResponse{page: p}))
	} else if loc, _ := p.url.Parse(p.header.Get("Location")); loc.Query().Get("state") != state {
		m.errorf("post-logout redirect %s, want state %q (CheckPostLogoutState)", loc, state)
	}
	var bc backchannelRequest
	select {
	case bc = <-received:
	case <-time.After(10 * time.Second):
		m.fatalf("no back-channel logout request within 10 seconds of the logout (OIDCBCL-2.5)")
	}
	if bc.method != http.MethodPost || !strings.HasPrefix(bc.contentType, "application/x-www-form-urlencoded") {
		m.errorf("back-channel logout request: %s %q, want a form POST (OIDCBCL-2.5)", bc.method, bc.contentType)
	}
	for k := range bc.form {
		if k != "logout_token" {
			m.errorf("back-channel logout request has the unexpected parameter %q (CheckForUnexpectedParametersInBackchannelLogoutRequest)", k)
		}
	}
	lt := m.verifyJWS("logout_token", bc.form.Get("logout_token"))
	if lt.typ != "logout+jwt" {
		m.warnf("logout token typ %q, want logout+jwt (OIDCBCL-2.4)", lt.typ)
	}
	if lt.str("iss") != m.op.issuer {
		m.errorf("logout token iss %q, want %q (ValidateLogoutTokenClaims)", lt.str("iss"), m.op.issuer)
	}
	if aud := lt.claims["aud"]; aud != m.c.id && !slices.Contains(asSlice(aud), any(m.c.id)) {
		m.errorf("logout token aud %v, want %q (ValidateLogoutTokenClaims)", aud, m.c.id)
	}
	if iat, ok := lt.num("iat"); !ok || time.Unix(iat, 0).After(time.Now().Add(5*time.Minute)) {
		m.errorf("logout token iat %v, want a time not in the future (ValidateLogoutTokenClaims)", lt.claims["iat"])
	}
	if _, ok := lt.num("exp"); !ok {
		m.errorf("logout token exp %v, want a number (OIDCBCL-2.4; beyond the suite's check)", lt.claims["exp"])
	}
	if lt.str("jti") == "" {
		m.errorf("logout token has no jti (ValidateLogoutTokenClaims)")
	}
	events, _ := lt.claims["events"].(map[string]any)
	if ev, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); len(events) != 1 || !ok || len(ev) != 0 {
		m.errorf(`logout token events %v, want {"http://schemas.openid.net/event/backchannel-logout": {}} (ValidateLogoutTokenClaims)`, lt.claims["events"])
	}
	if _, ok := lt.claims["nonce"]; ok {
		m.errorf("logout token has a nonce (CheckLogoutTokenNoNonce)")
	}
	sub, sid := lt.str("sub"), lt.str("sid")
	if sub == "" && sid == "" {
		m.errorf("logout token has neither sub nor sid (CheckLogoutTokenHasSubOrSid)")
	}
	if sub != "" && sub != tok.idToken.str("sub") {
		m.errorf("logout token sub %q, want the ID token's %q (CheckIdTokenSubMatchesLogoutToken)", sub, tok.idToken.str("sub"))
	}
	if sid != "" && sid != tok.idToken.str("sid") {
		m.errorf("logout token sid %q, want the ID token's %q (CheckIdTokenSidMatchesLogoutToken)", sid, tok.idToken.str("sid"))
	}
	m.expectSignedOut()
}

func asSlice(v any) []any {
	a, _ := v.([]any)
	return a
}
