package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConformance plays, against a real `twostep serve` behind TLS, the
// relying party of the OpenID Foundation conformance suite
// (openid-certification/conformance-suite): every module of the Basic OP,
// Form Post Basic OP, Config OP, RP-Initiated Logout OP and Back-Channel
// Logout OP plans, with the assertions of the suite's conditions, as a
// static client with client_secret_basic (client_secret_post where the
// plan says so). Where the suite asks a person for a screenshot (an error
// page, a second login page, a logged-out page) the scripted user checks
// what the page is. A few checks go beyond the suite and say so in their
// message; the twostep-beyond-the-suite plan covers RFC 9207, PAR, ES256
// ID tokens and max_age=0.
//
// Each module is one subtest named after the suite's module, run in
// parallel with its own user, client and browser. The scripted user types
// the authenticator's code; a user who must sign in again types the code
// of a later time step (within the one-step skew), waiting for the clock
// when none is left. Modules that wait 30 seconds skip under -short. A
// summary line per module is printed when the test ends.
func TestConformance(t *testing.T) {
	op := startConformanceOP(t)
	plans := []struct {
		name     string
		formPost bool
		modules  []conformanceModule
	}{
		{"oidcc-config-certification-test-plan", false, configModules},
		{"oidcc-basic-certification-test-plan", false, basicModules},
		{"oidcc-formpost-basic-certification-test-plan", true, basicModules},
		{"oidcc-rp-initiated-logout-certification-test-plan", false, logoutModules},
		{"oidcc-backchannel-rp-initiated-logout-certification-test-plan", false, backchannelModules},
		{"twostep-beyond-the-suite", false, beyondModules},
	}
	for i, plan := range plans {
		t.Run(plan.name, func(t *testing.T) {
			t.Parallel()
			for j, mod := range plan.modules {
				t.Run(mod.name, func(t *testing.T) {
					t.Parallel()
					m := op.newModule(t, plan.name+"/"+mod.name, i*1000+j, plan.formPost)
					if mod.slow && testing.Short() {
						m.skipf("waits 30 seconds; skipped under -short")
					}
					mod.run(m)
				})
			}
		})
	}
}

// conformanceModule is one module of a plan: its name in the suite, and
// whether it must wait 30 seconds.
type conformanceModule struct {
	name string
	slow bool
	run  func(*module)
}

var configModules = []conformanceModule{
	{"oidcc-discovery-endpoint-verification", false, (*module).discoveryEndpointVerification},
}

var basicModules = []conformanceModule{
	{"oidcc-server", false, (*module).server},
	{"oidcc-response-type-missing", false, (*module).responseTypeMissing},
	{"oidcc-idtoken-signature", false, (*module).idTokenSignature},
	{"oidcc-userinfo-get", false, func(m *module) { m.userinfoModule("get") }},
	{"oidcc-userinfo-post-header", false, func(m *module) { m.userinfoModule("post-header") }},
	{"oidcc-userinfo-post-body", false, func(m *module) { m.userinfoModule("post-body") }},
	{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", false, (*module).withoutNonce},
	{"oidcc-scope-profile", false, func(m *module) { m.scopeModule("openid profile", false) }},
	{"oidcc-scope-email", false, func(m *module) { m.scopeModule("openid email", false) }},
	{"oidcc-scope-address", false, func(m *module) { m.scopeModule("openid address", false) }},
	{"oidcc-scope-phone", false, func(m *module) { m.scopeModule("openid phone", false) }},
	{"oidcc-scope-all", false, func(m *module) { m.scopeModule("openid profile email address phone", false) }},
	{"oidcc-ensure-other-scope-order-succeeds", false, func(m *module) { m.scopeModule("email openid", false) }},
	{"oidcc-alternate-happy-flow", false, func(m *module) { m.scopeModule("email openid", true) }},
	{"oidcc-display-page", false, func(m *module) { m.extraParamModule("display", "page") }},
	{"oidcc-display-popup", false, func(m *module) { m.extraParamModule("display", "popup") }},
	{"oidcc-prompt-login", false, (*module).promptLogin},
	{"oidcc-prompt-none-not-logged-in", false, (*module).promptNoneNotLoggedIn},
	{"oidcc-prompt-none-logged-in", false, (*module).promptNoneLoggedIn},
	{"oidcc-max-age-1", false, (*module).maxAge1},
	{"oidcc-max-age-10000", false, (*module).maxAge10000},
	{"oidcc-ensure-request-with-unknown-parameter-succeeds", false, func(m *module) { m.extraParamModule("extra", "foobar") }},
	{"oidcc-id-token-hint", false, (*module).idTokenHint},
	{"oidcc-login-hint", false, (*module).loginHint},
	{"oidcc-ui-locales", false, (*module).uiLocales},
	{"oidcc-claims-locales", false, func(m *module) { m.extraParamModule("claims_locales", "se") }},
	{"oidcc-ensure-request-with-acr-values-succeeds", false, (*module).acrValues},
	{"oidcc-codereuse", false, func(m *module) { m.codeReuse(0) }},
	{"oidcc-codereuse-30seconds", true, func(m *module) { m.codeReuse(30 * time.Second) }},
	{"oidcc-ensure-registered-redirect-uri", false, (*module).registeredRedirectURI},
	{"oidcc-ensure-post-request-succeeds", false, (*module).postRequest},
	{"oidcc-server-client-secret-post", false, (*module).clientSecretPost},
	{"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", false, func(m *module) { m.requestObject(false) }},
	{"oidcc-claims-essential", false, (*module).claimsEssential},
	{"oidcc-ensure-request-object-with-redirect-uri", false, func(m *module) { m.requestObject(true) }},
	{"oidcc-refresh-token", false, (*module).refreshToken},
	{"oidcc-ensure-request-with-valid-pkce-succeeds", false, (*module).validPKCE},
}

var logoutModules = []conformanceModule{
	{"oidcc-rp-initiated-logout-discovery-endpoint-verification", false, (*module).logoutDiscovery},
	{"oidcc-rp-initiated-logout", false, func(m *module) { m.logout(logoutRedirects, withHint, withRedirect, withState) }},
	{"oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", false, func(m *module) {
		m.logout(logoutRefused, withHint, withRedirectURI("http://127.0.0.1:9/unregistered_post_logout_redirect"), withState)
	}},
	{"oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", false, func(m *module) {
		m.logout(logoutRefused, withHint, withRedirectURI(confPostLogout+"?foo=bar"), withState)
	}},
	{"oidcc-rp-initiated-logout-modified-id-token-hint", false, func(m *module) {
		m.logout(logoutRefused, withAlgNoneHint, withRedirect, withState)
	}},
	{"oidcc-rp-initiated-logout-bad-id-token-hint", false, func(m *module) {
		m.logout(logoutErrorPage, withForeignHint, withRedirect, withState)
	}},
	{"oidcc-rp-initiated-logout-no-id-token-hint", false, func(m *module) { m.logout(logoutRefused, withRedirect, withState) }},
	{"oidcc-rp-initiated-logout-no-params", false, func(m *module) { m.logout(logoutSignedOut) }},
	{"oidcc-rp-initiated-logout-no-post-logout-redirect-uri", false, func(m *module) { m.logout(logoutSignedOut, withHint, withState) }},
	{"oidcc-rp-initiated-logout-no-state", false, func(m *module) { m.logout(logoutRedirects, withHint, withRedirect) }},
	{"oidcc-rp-initiated-logout-only-state", false, func(m *module) { m.logout(logoutSignedOut, withState) }},
}

var backchannelModules = []conformanceModule{
	{"oidcc-backchannel-logout-discovery-endpoint-verification", false, (*module).backchannelDiscovery},
	{"oidcc-backchannel-rp-initiated-logout", false, (*module).backchannelLogout},
}

var beyondModules = []conformanceModule{
	{"rfc9207-iss-in-authorization-responses", false, (*module).issInResponses},
	{"rfc9126-pushed-authorization-request", false, func(m *module) { m.pushedAuthorization(false) }},
	{"rfc9126-client-requires-par", false, func(m *module) { m.pushedAuthorization(true) }},
	{"es256-id-token-per-client", false, (*module).es256},
	{"max-age-0-forces-login", false, (*module).maxAge0},
}

// The client's endpoints: nothing listens there; the scripted browser
// stops at the first response addressed to them.
const (
	confRedirect   = "http://127.0.0.1:9/callback"
	confPostLogout = "http://127.0.0.1:9/post_logout_redirect"
)

// The modules of the Basic OP plan (OIDCCBasicTestPlan), which the Form
// Post Basic OP plan runs again with response_mode=form_post.

func (m *module) server() {
	tok := m.flow(m.newRequest("openid"))
	if _, ok := tok.idToken.claims["name"]; ok {
		m.warnf("id_token contains name although only openid was requested (EnsureIdTokenDoesNotContainName, OIDCC-5.5)")
	}
	if _, ok := tok.idToken.claims["auth_time"]; !ok {
		m.t.Log("id_token has no auth_time (allowed without max_age)")
	}
}

func (m *module) responseTypeMissing() {
	req := m.newRequest("openid").del("response_type")
	resp := m.authorize(req)
	if !resp.reached {
		// The suite's placeholder: an error page the tester photographs.
		p := resp.page
		if p.status < 400 || p.url.Host != m.op.host || m.saw("login") {
			m.fatalf("without response_type: got %s, want an error page at twostep or an error at the client (RFC 6749 §3.1.1)", describe(resp))
		}
		return
	}
	// The suite reads the error from the query: without a response_type
	// no response mode applies.
	if resp.via != "query" {
		m.fatalf("without response_type: the error was sent by %s (%s), want it in the query or an error page (OIDCCResponseTypeMissing reads callback_query_params)",
			resp.via, resp.params.Encode())
	}
	r := *req
	r.params = url.Values{}
	for k, v := range req.params {
		if k != "response_mode" {
			r.params[k] = v
		}
	}
	m.expectError(&r, resp, "invalid_request", "unsupported_response_type")
}

func (m *module) idTokenSignature() {
	tok := m.flow(m.newRequest("openid"))
	if tok.idToken.alg != "RS256" {
		m.errorf("id_token alg %q, want RS256 by default (EnsureIdTokenSignatureIsRS256, OIDCC-3.1.3.7)", tok.idToken.alg)
	}
	if tok.idToken.kid == "" {
		m.errorf("id_token has no kid (EnsureIdTokenContainsKid)")
	}
}

func (m *module) userinfoModule(how string) {
	tok := m.flow(m.newRequest("openid"))
	r := m.callUserinfo(how, tok.access)
	if how == "post-body" && (r.status < 200 || r.status > 299) {
		m.warnf("userinfo with the access token in a POST body: got %s (UserInfoEndpointWithAccessTokenInBodyNotSupported)", r)
		return
	}
	m.checkUserinfo(r, tok.idToken)
}

func (m *module) withoutNonce() {
	req := m.newRequest("openid").del("nonce")
	code := m.expectCode(req, m.authorize(req))
	// The suite stops at the code; redeeming it checks the ID token has
	// no nonce (ValidateIdTokenNonce).
	m.exchange(req, code)
}

// scopeClaims are the claims each scope asks for (AbstractVerifyScopesReturnedInClaims).
var scopeClaims = map[string][]string{
	"openid":  {"sub"},
	"profile": {"name", "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at", "preferred_username"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

func (m *module) scopeModule(scope string, reversedParams bool) {
	if !m.discoveryHas("scopes_supported", strings.Fields(scope)...) {
		m.skipf("scopes_supported %v lacks part of %q: the suite skips this module (OIDCCCheckScopesSupportedContainScopeTest)",
			strSlice(m.op.disc["scopes_supported"]), scope)
	}
	req := m.newRequest(scope)
	req.reversed = reversedParams
	tok := m.flow(req)
	info := m.checkUserinfo(m.callUserinfo("get", tok.access), tok.idToken)
	var missing []string
	for _, s := range strings.Fields(scope) {
		for _, c := range scopeClaims[s] {
			if _, ok := info[c]; !ok {
				missing = append(missing, c)
			}
		}
	}
	if len(missing) > 0 {
		m.warnf("userinfo for scope %q lacks %v (VerifyScopesReturnedInUserInfoClaims, OIDCC-5.4)", scope, missing)
	}
}

func (m *module) extraParamModule(name, value string) {
	m.flow(m.newRequest("openid").set(name, value))
}

// waitPastSecond waits, as a person would before signing in again, until
// a new auth_time (whole seconds) can differ from first's.
func waitPastSecond(first *jwtToken) {
	at, _ := first.num("auth_time")
	if at == 0 {
		at = time.Now().Unix()
	}
	time.Sleep(time.Until(time.Unix(at+1, 0)) + 100*time.Millisecond)
}

func (m *module) promptLogin() {
	first := m.flow(m.newRequest("openid"))
	waitPastSecond(first.idToken)
	req := m.newRequest("openid").set("prompt", "login")
	second := m.flow(req)
	if !m.saw("login") || !m.saw("code") {
		m.errorf("prompt=login: pages %v, want the password and the code asked again (ExpectSecondLoginPage, OIDCC-3.1.2.1)", m.seen)
	}
	a1, ok1 := first.idToken.num("auth_time")
	a2, ok2 := second.idToken.num("auth_time")
	if ok1 && ok2 && a1 == a2 {
		m.errorf("prompt=login: auth_time %d both times, want a new one (CheckIdTokenAuthTimeClaimsDifferIfPresent)", a2)
	}
}

func (m *module) promptNoneNotLoggedIn() {
	// The suite's 128-character state checks twostep returns it intact.
	req := m.newRequest("openid").set("prompt", "none").set("state", randomText(128))
	m.expectError(req, m.authorize(req), "interaction_required", "login_required", "account_selection_required", "consent_required")
	if len(m.seen) > 0 {
		m.errorf("prompt=none: showed %v, want no page", m.seen)
	}
}

// sameAuthTwice is AbstractOIDCCSameAuthTwiceServerTest: the second
// authorization must not ask anything, and its ID token has the first's
// sub and auth_time (if present).
func (m *module) sameAuthTwice(firstReq *authzRequest, secondReq func(first tokens) *authzRequest) (first, second tokens) {
	first = m.flow(firstReq)
	second = m.flow(secondReq(first))
	if len(m.seen) > 0 {
		m.errorf("second authorization showed %v, want no page (the user is signed in)", m.seen)
	}
	if s1, s2 := first.idToken.str("sub"), second.idToken.str("sub"); s1 != s2 {
		m.errorf("sub %q then %q, want the same (CheckIdTokenSubConsistentForSecondAuthorization)", s1, s2)
	}
	a1, ok1 := first.idToken.claims["auth_time"]
	a2, ok2 := second.idToken.claims["auth_time"]
	if ok1 && ok2 && a1 != a2 {
		m.errorf("auth_time %v then %v, want the same (CheckIdTokenAuthTimeClaimsSameIfPresent)", a1, a2)
	}
	return first, second
}

func (m *module) promptNoneLoggedIn() {
	m.sameAuthTwice(m.newRequest("openid"), func(tokens) *authzRequest { return m.newRequest("openid").set("prompt", "none") })
}

func (m *module) maxAge1() {
	first := m.flow(m.newRequest("openid"))
	time.Sleep(2 * time.Second) // WaitFor2Seconds
	second := m.flow(m.newRequest("openid").set("max_age", "1"))
	if !m.saw("login") || !m.saw("code") {
		m.errorf("max_age=1 two seconds after the login: pages %v, want the password and the code asked again (ExpectSecondLoginPage)", m.seen)
	}
	a2, ok := second.idToken.num("auth_time")
	if !ok {
		m.fatalf("max_age=1: id_token auth_time %v, want a number (CheckIdTokenAuthTimeClaimPresentDueToMaxAge)", second.idToken.claims["auth_time"])
	}
	if a1, ok := first.idToken.num("auth_time"); ok && a2 <= a1 {
		m.errorf("max_age=1: auth_time %d, want later than the first login's %d (CheckSecondIdTokenAuthTimeIsLaterIfPresent)", a2, a1)
	}
	if time.Unix(a2, 0).Before(time.Now().Add(-5*time.Minute - time.Second)) {
		m.errorf("max_age=1: auth_time %s is not recent (CheckIdTokenAuthTimeIsRecentIfPresent)", time.Unix(a2, 0))
	}
}

func (m *module) maxAge10000() {
	first, second := m.sameAuthTwice(m.newRequest("openid").set("max_age", "15000"),
		func(tokens) *authzRequest { return m.newRequest("openid").set("max_age", "10000") })
	for i, tok := range []tokens{first, second} {
		if _, ok := tok.idToken.num("auth_time"); !ok {
			m.errorf("authorization %d with max_age: id_token auth_time %v, want a number (CheckIdTokenAuthTimeClaimPresentDueToMaxAge)", i+1, tok.idToken.claims["auth_time"])
		}
	}
}

func (m *module) idTokenHint() {
	m.sameAuthTwice(m.newRequest("openid"), func(first tokens) *authzRequest {
		return m.newRequest("openid").set("prompt", "none").set("id_token_hint", first.idToken.raw)
	})
	// Beyond the suite: another user's ID token as the hint does not
	// describe the signed-in user (OIDCC-3.1.2.2: login_required).
	other := m.sibling()
	otherTok := other.flow(other.newRequest("openid"))
	req := m.newRequest("openid").set("prompt", "none").set("id_token_hint", otherTok.idToken.raw)
	if e := m.expectError(req, m.authorize(req)); e != "login_required" {
		m.errorf("prompt=none with another user's id_token_hint: error %q, want login_required (OIDCC-3.1.2.2; beyond the suite)", e)
	}
}

func (m *module) loginHint() {
	req := m.newRequest("openid").set("login_hint", m.user())
	p := m.b.get(req.url(m.authEndpoint()))
	if p.url.Path == "/login" {
		if f := findForm(m.t, p.body, map[string]string{"username": ""}); f.fields["username"] != m.user() {
			m.errorf("login_hint=%s: the username field holds %q, want it prefilled (beyond the suite)", m.user(), f.fields["username"])
		}
	}
	resp := m.play(p)
	m.exchange(req, m.expectCode(req, resp))
}

func (m *module) uiLocales() {
	m.user()
	req := m.newRequest("openid").set("ui_locales", "fr-CA fr")
	p := m.b.get(req.url(m.authEndpoint()))
	if p.url.Path == "/login" && !strings.Contains(p.body, `<html lang="fr"`) {
		m.errorf(`ui_locales="fr-CA fr": the login page is not in French, want <html lang="fr"> (the suite's screenshot check)`)
	}
	resp := m.play(p)
	m.exchange(req, m.expectCode(req, resp))
}

func (m *module) acrValues() {
	values := strSlice(m.op.disc["acr_values_supported"])
	if len(values) == 0 {
		values = []string{"1", "2"}
	}
	req := m.newRequest("openid").set("acr_values", strings.Join(values, " "))
	tok := m.flow(req)
	if acr := tok.idToken.str("acr"); !has(values, acr) {
		m.warnf("id_token acr %q is not one of the requested %v (ValidateIdTokenACRClaimAgainstAcrValuesRequest)", acr, values)
	}
}

func (m *module) codeReuse(wait time.Duration) {
	req := m.newRequest("openid")
	code := m.expectCode(req, m.authorize(req))
	tok := m.exchange(req, code)
	if r := m.callUserinfo("get", tok.access); r.status != http.StatusOK {
		m.fatalf("userinfo with the new access token: got %s, want 200", r)
	}
	time.Sleep(wait) // WaitFor30Seconds
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confRedirect}}
	r := m.tokenCall(req.client, form)
	if r.status == http.StatusOK {
		m.fatalf("second exchange of one code: got tokens, want 400 invalid_grant (ServerAllowedReusingAuthorisationCode; RFC 6749 §4.1.2)")
	}
	m.checkTokenError("second exchange of one code", r, "invalid_grant")
	if r := m.callUserinfo("get", tok.access); r.status == http.StatusOK {
		m.errorf("the access token of a reused code still works at userinfo; want it revoked (RFC 6749 §4.1.2; oidcc-codereuse-30seconds warns, twostep requires)")
	}
}

func (m *module) registeredRedirectURI() {
	bad := confRedirect + "/unregistered-" + randomHex()
	req := m.newRequest("openid").set("redirect_uri", bad)
	resp := m.authorize(req)
	if resp.reached {
		m.fatalf("unregistered redirect_uri: twostep sent %s, want an error page and no redirect (OIDCC-3.1.2.1)", describe(resp))
	}
	if p := resp.page; p.status < 400 || p.url.Host != m.op.host || len(m.seen) > 0 {
		m.fatalf("unregistered redirect_uri: got %s after %v, want an error page at once (ExpectRedirectUriErrorPage)", describe(resp), m.seen)
	}
}

func (m *module) postRequest() {
	req := m.newRequest("openid")
	req.post = true
	m.flow(req)
}

func (m *module) clientSecretPost() {
	if !m.discoveryHas("token_endpoint_auth_methods_supported", "client_secret_post") {
		m.errorf("token_endpoint_auth_methods_supported %v lacks client_secret_post (EnsureServerConfigurationSupportsClientSecretPost)",
			m.op.disc["token_endpoint_auth_methods_supported"])
	}
	m.c = m.registerClient(clientOptions{secretPost: true})
	m.flow(m.newRequest("openid"))
}

// unsignedRequestObject makes req's parameters an unsigned request object
// passed by value, with response_type, client_id, scope and redirect_uri
// repeated outside (the suite's BuildRequestObjectByValueRedirectToAuthorizationEndpoint).
func unsignedRequestObject(req *authzRequest, outerRedirect string) string {
	claims := map[string]string{}
	for k := range req.params {
		claims[k] = req.params.Get(k)
	}
	payload, _ := json.Marshal(claims)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	object := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	outer := url.Values{"request": {object}}
	for _, k := range []string{"response_type", "client_id", "scope", "redirect_uri"} {
		outer.Set(k, req.params.Get(k))
	}
	if outerRedirect != "" {
		outer.Set("redirect_uri", outerRedirect)
	}
	return outer.Encode()
}

func (m *module) requestObject(badOuterRedirect bool) {
	req := m.newRequest("openid")
	outerRedirect := ""
	if badOuterRedirect {
		outerRedirect = confRedirect + "_invalid" // AddInvalidRedirectUriToAuthorizationRequest
	}
	link := m.authEndpoint() + "?" + unsignedRequestObject(req, outerRedirect)
	algs, advertised := m.op.disc["request_object_signing_alg_values_supported"]
	if advertised && !has(strSlice(algs), "none") {
		// Beyond the suite: what is not advertised must not be accepted.
		m.user()
		if resp := m.play(m.b.get(link)); resp.reached && resp.params.Has("code") {
			m.errorf("an unsigned request object was accepted although request_object_signing_alg_values_supported is %v (OIDCC-6.3.2)", algs)
		}
		m.skipf("request_object_signing_alg_values_supported %v has no none: the suite skips this module (skipTestIfNoneUnsupported)", algs)
	}
	m.user()
	resp := m.play(m.b.get(link))
	if resp.reached && resp.params.Get("error") == "request_not_supported" {
		m.skipf("request_not_supported: the suite skips this module")
	}
	if !resp.reached && badOuterRedirect {
		// The suite's ExpectRedirectUriErrorPage: rejecting the unregistered
		// redirect_uri outside the object with an error page, at once, is
		// accepted (for review of its screenshot), as is using the object's.
		if p := resp.page; p.status < 400 || p.url.Host != m.op.host || len(m.seen) > 0 {
			m.fatalf("request object with an unregistered redirect_uri beside it: got %s after %v, "+
				"want the request object's redirect_uri used or an error page at once (ExpectRedirectUriErrorPage)", describe(resp), m.seen)
		}
		return
	}
	if m.op.disc["request_parameter_supported"] != true {
		m.warnf("request_parameter_supported is %v although the request object was processed (CheckDiscEndpointRequestParameterSupported)", m.op.disc["request_parameter_supported"])
	}
	m.exchange(req, m.expectCode(req, resp))
}

func (m *module) claimsEssential() {
	req := m.newRequest("openid").set("claims", `{"userinfo":{"name":{"essential":true}}}`)
	tok := m.flow(req)
	info := m.checkUserinfo(m.callUserinfo("get", tok.access), tok.idToken)
	if _, ok := info["name"]; !ok {
		m.warnf("userinfo lacks the essential name claim requested with claims (EnsureUserInfoContainsName, OIDCC-5.5)")
	}
	if _, ok := tok.idToken.claims["name"]; ok {
		m.warnf("id_token contains name, which was requested for userinfo only (EnsureIdTokenDoesNotContainName)")
	}
}

// vschar matches a token of RFC 6749 Appendix A's VSCHAR characters.
var vschar = regexp.MustCompile(`^[\x20-\x7E]+$`)

func (m *module) refreshToken() {
	if !m.discoveryHas("grant_types_supported", "refresh_token") {
		m.warnf("grant_types_supported %v lacks refresh_token (EnsureServerConfigurationSupportsRefreshToken)", m.op.disc["grant_types_supported"])
	}
	const scope = "openid offline_access"
	first := m.registerClient(clientOptions{})
	second := m.registerClient(clientOptions{})
	clients := []*confClient{first, second}
	latest := make([]string, len(clients)) // each client's current refresh token
	for i, c := range clients {
		req := m.newRequestFor(c, scope).set("prompt", "consent")
		code := m.expectCode(req, m.authorize(req))
		tok := m.exchange(req, code)
		if tok.refresh == "" {
			m.skipf("no refresh token for scope %q: the suite skips this module", scope)
		}
		if !vschar.MatchString(tok.refresh) {
			m.errorf("refresh token %q has characters outside VSCHAR (EnsureRefreshTokenContainsAllowedCharactersOnly, RFC 6749 A.17)", tok.refresh)
		}
		time.Sleep(time.Second) // WaitForOneSecond: iat must differ
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.refresh}}
		if i == 0 {
			form.Set("scope", scope) // AddScopeToTokenEndpointRequest, first client only
		}
		where := fmt.Sprintf("refresh (client %d)", i+1)
		r := m.tokenCall(c, form)
		refreshed := m.checkTokenSuccess(where, r)
		if e := shannonBits(refreshed.access); e <= 96 {
			m.errorf("%s: access token has %.0f bits of entropy, want more than 96 (EnsureMinimumAccessTokenEntropy)", where, e)
		}
		latest[i] = tok.refresh
		if refreshed.refresh != "" {
			latest[i] = refreshed.refresh
			if len(refreshed.refresh)*8 < 128 || shannonBits(refreshed.refresh) <= 96 {
				m.errorf("%s: refresh token %q is too short or not random (EnsureMinimumRefreshTokenLength/Entropy)", where, refreshed.refresh)
			}
		}
		if raw := refreshed.resp.field("id_token"); raw != "" {
			m.compareRefreshedIDToken(where, tok.idToken, m.checkIDToken(raw, c, "", refreshed.access))
		}
		if u := m.callUserinfo("get", refreshed.access); u.status != http.StatusOK {
			m.errorf("%s: userinfo with the refreshed access token: got %s, want 200", where, u)
		}
	}
	// A refresh token is bound to its client: the suite presents the
	// second client's with the first's credentials, and twostep checks
	// the other way round too.
	r := m.tokenCall(first, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {latest[1]}, "scope": {scope}})
	m.checkTokenError("client 1 presenting client 2's refresh token (RefreshTokenRequestExpectingErrorSteps)", r, "invalid_grant")
	r = m.tokenCall(second, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {latest[0]}})
	m.checkTokenError("client 2 presenting client 1's refresh token (beyond the suite)", r, "invalid_grant")
}

// compareRefreshedIDToken is CompareIdTokenClaims (OIDCC-12.2).
func (m *module) compareRefreshedIDToken(where string, first, second *jwtToken) {
	m.t.Helper()
	for _, c := range []string{"iss", "sub"} {
		if first.str(c) != second.str(c) {
			m.errorf("%s: refreshed id_token %s %q, want the first's %q (CompareIdTokenClaims)", where, c, second.str(c), first.str(c))
		}
	}
	if first.claims["iat"] == second.claims["iat"] {
		m.errorf("%s: refreshed id_token iat %v, the same as the first's; want the time it was issued (CompareIdTokenClaims)", where, second.claims["iat"])
	}
	if fmt.Sprint(first.claims["aud"]) != fmt.Sprint(second.claims["aud"]) {
		m.errorf("%s: refreshed id_token aud %v, want %v (CompareIdTokenClaims)", where, second.claims["aud"], first.claims["aud"])
	}
	if a2, ok := second.claims["auth_time"]; ok && a2 != first.claims["auth_time"] {
		m.errorf("%s: refreshed id_token auth_time %v, want the original login's %v (CompareIdTokenClaims)", where, a2, first.claims["auth_time"])
	}
	if _, ok := first.claims["azp"]; !ok {
		if _, ok := second.claims["azp"]; ok {
			m.errorf("%s: refreshed id_token has azp, the first had none (CompareIdTokenClaims)", where)
		}
	}
}

func (m *module) validPKCE() {
	req := m.newRequest("openid")
	req.verifier = randomHex() + randomHex() + randomHex()
	sum := sha256.Sum256([]byte(req.verifier))
	req.set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])).set("code_challenge_method", "S256")
	m.flow(req)
}

// The module of the Config OP plan (OIDCCConfigTestPlan).

var (
	bcp47          = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*$`)
	bcp47Canonical = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?(-[a-z0-9]{5,8})*$`)
	scopeToken     = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

func (m *module) discoveryEndpointVerification() {
	discoveryURL := m.op.issuer + "/.well-known/openid-configuration"
	r := m.op.get(m.t, discoveryURL)
	if r.status != http.StatusOK {
		m.errorf("discovery: status %d, want 200 (EnsureDiscoveryEndpointResponseStatusCodeIs200)", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		m.errorf("discovery: Content-Type %q, want application/json (CheckDiscoveryEndpointReturnedJsonContentType)", ct)
	}
	d := r.json
	if d == nil {
		m.fatalf("discovery: %q is not a JSON object", r.raw)
	}
	oidcTypes := []string{"code", "code id_token", "id_token", "token id_token", "code id_token token", "code token"}
	if !slices.ContainsFunc(strSlice(d["response_types_supported"]), func(s string) bool { return has(oidcTypes, s) }) {
		m.errorf("response_types_supported %v has none of %v (OIDCCCheckDiscEndpointResponseTypesSupported)", d["response_types_supported"], oidcTypes)
	}
	if why := httpsURL(discoveryURL); why != "" {
		m.errorf("discovery URL %s (CheckDiscEndpointDiscoveryUrl)", why)
	}
	if iss, _ := d["issuer"].(string); strings.TrimSuffix(iss, "/") != m.op.issuer {
		m.errorf("issuer %q, want %q, where the document was fetched (CheckDiscEndpointIssuer, OIDCD-4.3)", iss, m.op.issuer)
	} else if u, _ := url.Parse(iss); httpsURL(iss) != "" || u.RawQuery != "" || u.Fragment != "" {
		m.errorf("issuer %q is not an https URL without query or fragment (CheckDiscEndpointIssuerIsValidUrl, RFC 8414 §2)", iss)
	}
	subjects := strSlice(d["subject_types_supported"])
	if len(subjects) == 0 || slices.ContainsFunc(subjects, func(s string) bool { return s != "public" && s != "pairwise" }) {
		m.errorf("subject_types_supported %v, want public and/or pairwise (CheckDiscEndpointSubjectTypesSupported)", d["subject_types_supported"])
	}
	if !has(strSlice(d["id_token_signing_alg_values_supported"]), "RS256") {
		m.errorf("id_token_signing_alg_values_supported %v lacks RS256 (OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported)", d["id_token_signing_alg_values_supported"])
	}
	if has(strSlice(d["id_token_signing_alg_values_supported"]), "none") {
		m.errorf("id_token_signing_alg_values_supported %v lists none, which twostep never signs with (beyond the suite)", d["id_token_signing_alg_values_supported"])
	}
	for _, e := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri"} {
		if why := httpsURL(d[e]); why != "" {
			m.errorf("%s %s (CheckDiscEndpoint..., CheckJwksUri, OIDCD-3)", e, why)
		}
	}
	if _, ok := d["userinfo_endpoint"]; !ok {
		m.warnf("no userinfo_endpoint (CheckDiscEndpointUserinfoEndpoint)")
	}
	for k, v := range d {
		if strings.HasSuffix(k, "_endpoint") {
			if why := httpsURL(v); why != "" {
				m.errorf("%s %s (CheckDiscEndpointAllEndpointsAreHttps)", k, why)
			}
		}
	}
	if r := m.op.get(m.t, m.op.str("jwks_uri")); r.json == nil {
		m.errorf("jwks_uri: got %s, want a JSON object (FetchServerKeys)", r)
	} else {
		_, problems := checkJWKS(r)
		for _, p := range problems {
			m.errorf("%s", p)
		}
	}
	if algs, ok := d["request_object_signing_alg_values_supported"]; ok && !has(strSlice(algs), "RS256") {
		m.warnf("request_object_signing_alg_values_supported %v lacks RS256 (CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256)", algs)
	}
	for _, b := range []string{"request_parameter_supported", "request_uri_parameter_supported", "claims_parameter_supported"} {
		if v, ok := d[b]; ok {
			if _, isBool := v.(bool); !isBool {
				m.errorf("%s is %v, want a boolean (OIDCD-3)", b, v)
			}
		}
	}
	if g, ok := d["grant_types_supported"]; ok && len(strSlice(g)) == 0 {
		m.errorf("grant_types_supported %v, want a non-empty array (OIDCCCheckDiscEndpointGrantTypesSupported)", g)
	}
	scopes := strSlice(d["scopes_supported"])
	if _, ok := d["scopes_supported"]; ok && !has(scopes, "openid") {
		m.errorf("scopes_supported %v lacks openid (CheckDiscEndpointScopesSupportedContainsOpenId)", d["scopes_supported"])
	}
	for _, s := range scopes {
		if !scopeToken.MatchString(s) {
			m.errorf("scopes_supported entry %q is not an RFC 6749 scope-token (CheckDiscEndpointScopesSupportedSyntax)", s)
		}
	}
	for _, l := range []string{"ui_locales_supported", "claims_locales_supported"} {
		for _, tag := range strSlice(d[l]) {
			if !bcp47.MatchString(tag) {
				m.errorf("%s entry %q is not a BCP 47 tag (CheckDiscEndpointLocalesSyntax)", l, tag)
			} else if !bcp47Canonical.MatchString(tag) {
				m.warnf("%s entry %q is not in canonical case (CheckDiscEndpointLocalesCanonicalCasing)", l, tag)
			}
		}
	}
	if v, ok := d["code_challenge_methods_supported"]; ok {
		if _, isArray := v.([]any); !isArray {
			m.errorf("code_challenge_methods_supported %v is not an array (EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray)", v)
		}
	}
	// Beyond the suite: what twostep's metadata must say.
	if got := strSlice(d["code_challenge_methods_supported"]); !slices.Equal(got, []string{"S256"}) {
		m.errorf(`code_challenge_methods_supported %v, want ["S256"]: plain is refused (RFC 8414 §2; beyond the suite)`, d["code_challenge_methods_supported"])
	}
	claims := strSlice(d["claims_supported"])
	for _, c := range []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr"} {
		if !has(claims, c) {
			m.errorf("claims_supported %v lacks %q, which twostep's ID tokens carry (OIDCD-3; beyond the suite)", d["claims_supported"], c)
		}
	}
	if len(strSlice(d["acr_values_supported"])) == 0 {
		m.errorf("acr_values_supported %v, want the ACRs twostep's ID tokens carry (OIDCD-3; beyond the suite)", d["acr_values_supported"])
	}
	if len(scopes) == 0 {
		m.errorf("no scopes_supported; the scope modules cannot run without it (beyond the suite)")
	}
}
