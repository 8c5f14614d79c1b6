package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/net/html"
)

// The conditions of the conformance suite that TestConformance's modules
// share: authorization, token, ID token and userinfo responses, error
// fields and form_post pages.

// checkFormPostPage checks a form_post response page (OAuth 2.0 Form Post
// Response Mode §2: the form posts the parameters to the redirect_uri,
// and submits itself): the suite's CheckCallbackHttpMethodIsPost,
// CheckCallbackContentTypeIsFormUrlEncoded, RejectAuthCodeInUrlQuery and
// RejectErrorInUrlQuery; and, beyond the suite, that the page's
// Content-Security-Policy lets its script run (by nonce or hash) and a
// <noscript> button submits it without one.
func (m *module) checkFormPostPage(p page, fp formPostPage, action *url.URL) {
	m.t.Helper()
	if !strings.EqualFold(fp.method, "post") {
		m.errorf("form_post page: form method %q, want POST (OAuth2-FP-2)", fp.method)
	}
	if fp.enctype != "" && !strings.EqualFold(fp.enctype, "application/x-www-form-urlencoded") {
		m.errorf("form_post page: form enctype %q, want application/x-www-form-urlencoded (OAuth2-FP-2)", fp.enctype)
	}
	if q := action.Query(); q.Has("code") || q.Has("error") {
		m.errorf("form_post page: the action URL %q carries the response in its query (OIDCC-3.3.2.5, OAuth2-RT-5)", action)
	}
	if !fp.noscriptButton {
		m.errorf("form_post page: no <noscript> submit button for a browser without scripts (beyond the suite)")
	}
	var submits []formScript
	for _, s := range fp.scripts {
		if strings.Contains(s.body, "submit") {
			submits = append(submits, s)
		}
	}
	if len(submits) == 0 {
		m.errorf("form_post page: no script submits the form (beyond the suite)")
		return
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, s := range submits {
		if why := cspAllowsScript(csp, s); why != "" {
			m.errorf("form_post page: the Content-Security-Policy %q does not let the auto-submit script run: %s (beyond the suite)", csp, why)
		}
	}
}

// cspAllowsScript returns "" when the policy allows the inline script by
// its nonce or hash, or why not.
func cspAllowsScript(csp string, s formScript) string {
	if csp == "" {
		return "no policy; want one that allows the script by nonce or hash"
	}
	directives := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			directives[strings.ToLower(f[0])] = f[1:]
		}
	}
	src, ok := directives["script-src-elem"]
	if !ok {
		src, ok = directives["script-src"]
	}
	if !ok {
		src, ok = directives["default-src"]
	}
	if !ok {
		return "no script-src or default-src; want the script allowed by nonce or hash"
	}
	if s.nonce != "" && slices.Contains(src, "'nonce-"+s.nonce+"'") {
		return ""
	}
	for _, h := range []struct {
		name string
		new  func() hash.Hash
	}{{"sha256", sha256.New}, {"sha384", sha512.New384}, {"sha512", sha512.New}} {
		d := h.new()
		d.Write([]byte(s.body))
		if slices.Contains(src, "'"+h.name+"-"+base64.StdEncoding.EncodeToString(d.Sum(nil))+"'") {
			return ""
		}
	}
	return fmt.Sprintf("script nonce %q and the script's hashes are not among %v", s.nonce, src)
}

// pageMessage finds the heading and first paragraph of one of twostep's
// pages.
var pageMessage = regexp.MustCompile(`(?s)<h1>(.*?)</h1>.*?<p[^>]*>(.*?)</p>`)

// describe says what a page that ended an authorization is.
func describe(r authResponse) string {
	if r.reached {
		return fmt.Sprintf("a response to %s by %s: %s", r.target.Path, r.via, r.params.Encode())
	}
	p := r.page
	s := fmt.Sprintf("%d %s", p.status, p.url.Path)
	if q := p.url.RawQuery; len(q) > 80 {
		s += "?" + q[:80] + "..."
	} else if q != "" {
		s += "?" + q
	}
	if l := p.header.Get("Location"); l != "" {
		s += " (Location " + l + ")"
	}
	if m := pageMessage.FindStringSubmatch(p.body); m != nil {
		s += ": " + html.UnescapeString(m[1]) + ": " + html.UnescapeString(m[2])
	}
	return s
}

// checkResponseBasics are the checks of every response that reached the
// client: the mode asked for, the redirect_uri, iss if present (RFC 9207
// §2.4, ValidateIssIfPresentInAuthorizationResponse) and state
// (CheckStateInAuthorizationResponse).
func (m *module) checkResponseBasics(req *authzRequest, resp authResponse) {
	m.t.Helper()
	want := "query"
	if req.params.Get("response_mode") == "form_post" {
		want = "form_post"
	}
	if resp.via != want {
		m.errorf("authorization response sent by %s, want %s (CheckCallbackHttpMethodIsPost / OAuth 2.0 Multiple Response Types §2.1)", resp.via, want)
	}
	target := *resp.target
	target.RawQuery, target.Fragment = "", ""
	if redirect := req.redirectURI(); target.String() != redirect {
		m.errorf("authorization response sent to %s, want the request's redirect_uri %s", target.String(), redirect)
	}
	if iss := resp.params.Get("iss"); resp.params.Has("iss") && iss != m.op.issuer {
		m.errorf("authorization response iss %q, want the issuer %q (RFC 9207 §2.4)", iss, m.op.issuer)
	}
	if got := resp.params.Get("state"); got != req.state {
		m.errorf("authorization response state %q, want %q (CheckStateInAuthorizationResponse)", got, req.state)
	}
}

// redirectURI is where the response to req must go.
func (req *authzRequest) redirectURI() string {
	if r := req.params.Get("redirect_uri"); r != "" {
		return r
	}
	return confRedirect
}

// expectCode checks a successful authorization response and returns its
// code (the suite's onAuthorizationCallbackResponse and
// EnsureMinimumAuthorizationCodeLength/Entropy).
func (m *module) expectCode(req *authzRequest, resp authResponse) string {
	m.t.Helper()
	if !resp.reached {
		m.fatalf("authorization: got %s, want a code at the client", describe(resp))
	}
	m.checkResponseBasics(req, resp)
	if e := resp.params.Get("error"); e != "" {
		m.fatalf("authorization: got error=%s (%s), want a code", e, resp.params.Get("error_description"))
	}
	code := resp.params.Get("code")
	if code == "" {
		m.fatalf("authorization: response %s has no code", resp.params.Encode())
	}
	if len(code)*8 < 128 {
		m.errorf("authorization code %q is %d bits, want at least 128 (RFC 6749 §10.10)", code, len(code)*8)
	}
	if e := shannonBits(code); e <= 96 {
		m.errorf("authorization code %q has %.0f bits of Shannon entropy, want more than 96 (RFC 6749 §10.10)", code, e)
	}
	return code
}

// expectError checks an error response at the client (the suite's
// performGenericAuthorizationEndpointErrorResponseValidation) and, when
// allowed is not empty, that the error is one of them.
func (m *module) expectError(req *authzRequest, resp authResponse, allowed ...string) string {
	m.t.Helper()
	if !resp.reached {
		m.fatalf("authorization: got %s, want an error response at the client", describe(resp))
	}
	m.checkResponseBasics(req, resp)
	e := resp.params.Get("error")
	if e == "" {
		m.fatalf("authorization: got %s, want an error (OIDCC-3.1.2.6)", resp.params.Encode())
	}
	if resp.params.Has("code") {
		m.errorf("error response also carries a code (RejectAuthCodeInAuthorizationEndpointResponse)")
	}
	for k := range resp.params {
		if !has([]string{"error", "error_description", "error_uri", "state", "session_state", "iss"}, k) {
			m.warnf("error response has the unexpected parameter %q (CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint)", k)
		}
	}
	m.checkErrorFields("authorization error response", resp.params.Get("error"), resp.params.Get("error_description"), resp.params.Get("error_uri"), resp.params.Has("error_uri"))
	if len(allowed) > 0 && !has(allowed, e) {
		m.errorf("authorization: got error=%s (%s), want one of %v", e, resp.params.Get("error_description"), allowed)
	}
	return e
}

var (
	errorCodeChars        = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]+$`)
	errorDescriptionChars = regexp.MustCompile(`^[\x09\x0A\x0D\x20-\x21\x23-\x5B\x5D-\x7E]+$`)
)

// checkErrorFields checks error, error_description and error_uri against
// RFC 6749 §4.1.2.1 and §5.2 (ValidateErrorDescription..., CheckErrorDescription...ContainsCRLFTAB,
// ValidateErrorUri...).
func (m *module) checkErrorFields(where, code, description, uri string, hasURI bool) {
	m.t.Helper()
	if !errorCodeChars.MatchString(code) {
		m.errorf("%s: error %q has characters outside %%x20-21 / %%x23-5B / %%x5D-7E (RFC 6749 §5.2)", where, code)
	}
	if description != "" {
		if !errorDescriptionChars.MatchString(description) {
			m.errorf("%s: error_description %q has characters outside %%x20-21 / %%x23-5B / %%x5D-7E (no \" or \\, RFC 6749 §4.1.2.1)", where, description)
		}
		if strings.ContainsAny(description, "\t\r\n") {
			m.warnf("%s: error_description contains CR, LF or TAB", where)
		}
	}
	if hasURI {
		if u, err := url.Parse(uri); err != nil || !u.IsAbs() {
			m.errorf("%s: error_uri %q is not an absolute URI (RFC 6749 §4.1.2.1)", where, uri)
		}
	}
}

// shannonBits is the suite's AbstractEnsureMinimumEntropy estimate.
func shannonBits(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	e := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		e -= p * math.Log2(p)
	}
	return e * float64(n)
}

// tokenCall posts form to the token endpoint with the client's
// authentication.
func (m *module) tokenCall(c *confClient, form url.Values) endpointResponse {
	m.t.Helper()
	return m.postEndpoint(m.op.str("token_endpoint"), c, form)
}

// postEndpoint posts form to endpoint as c (client_secret_basic, or
// client_secret_post), or without client authentication when c is nil.
func (m *module) postEndpoint(endpoint string, c *confClient, form url.Values) endpointResponse {
	m.t.Helper()
	body := url.Values{}
	for k, v := range form {
		body[k] = v
	}
	if c != nil && c.secretPost {
		body.Set("client_id", c.id)
		body.Set("client_secret", c.secret)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body.Encode()))
	if err != nil {
		m.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil && !c.secretPost {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	return m.op.do(m.t, req)
}

// tokens is a successful token response.
type tokens struct {
	resp    endpointResponse
	access  string
	refresh string
	idToken *jwtToken
}

// exchange redeems code (the suite's CreateTokenEndpointRequestForAuthorizationCodeGrant
// and requestAuthorizationCode) and checks the ID token.
func (m *module) exchange(req *authzRequest, code string) tokens {
	m.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {req.redirectURI()}}
	if req.verifier != "" {
		form.Set("code_verifier", req.verifier)
	}
	r := m.tokenCall(req.client, form)
	tok := m.checkTokenSuccess("token endpoint (authorization_code)", r)
	if tok.resp.field("id_token") == "" {
		m.fatalf("token response has no id_token (OIDCC-3.1.3.3): %s", r)
	}
	tok.idToken = m.checkIDToken(tok.resp.field("id_token"), req.client, req.nonce, tok.access)
	return tok
}

// checkTokenSuccess checks a successful token response (RFC 6749 §5.1):
// 200, JSON, Cache-Control: no-store (which the suite checks on refresh;
// twostep on every response), an access token of type Bearer and a
// positive expires_in if any.
func (m *module) checkTokenSuccess(where string, r endpointResponse) tokens {
	m.t.Helper()
	if r.status != http.StatusOK || r.json == nil {
		m.fatalf("%s: got %s, want 200 with tokens (CheckIfTokenEndpointResponseError)", where, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		m.errorf("%s: Content-Type %q, want application/json (RFC 6749 §5.1)", where, ct)
	}
	if cc := r.header.Get("Cache-Control"); !cacheControlHas(cc, "no-store") {
		m.errorf("%s: Cache-Control %q, want no-store (RFC 6749 §5.1, CheckTokenEndpointCacheHeaders)", where, cc)
	}
	if p := r.header.Get("Pragma"); p != "" && !cacheControlHas(p, "no-cache") {
		m.errorf("%s: Pragma %q, want no-cache if present (CheckTokenEndpointCacheHeaders)", where, p)
	}
	tok := tokens{resp: r, access: r.field("access_token"), refresh: r.field("refresh_token")}
	if tok.access == "" {
		m.fatalf("%s: no access_token in %s (CheckForAccessTokenValue)", where, r)
	}
	if tt := r.field("token_type"); !strings.EqualFold(tt, "Bearer") {
		m.errorf("%s: token_type %q, want Bearer (CheckTokenTypeIsBearer)", where, tt)
	}
	if e, ok := r.json["expires_in"]; ok {
		if n, ok := e.(json.Number); !ok {
			m.errorf("%s: expires_in %v is not a number (ValidateExpiresIn)", where, e)
		} else if f, _ := n.Float64(); f <= 0 {
			m.errorf("%s: expires_in %s, want positive (ValidateExpiresIn)", where, n)
		}
	}
	return tok
}

func cacheControlHas(header, directive string) bool {
	for _, d := range strings.Split(header, ",") {
		if strings.EqualFold(strings.TrimSpace(d), directive) {
			return true
		}
	}
	return false
}

// checkTokenError checks an error of the token endpoint (RFC 6749 §5.2):
// 400, JSON, the error wanted, valid characters.
func (m *module) checkTokenError(where string, r endpointResponse, want string) {
	m.t.Helper()
	if r.status != http.StatusBadRequest {
		m.errorf("%s: got %s, want 400 %s (CheckTokenEndpointHttpStatus400)", where, r, want)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		m.errorf("%s: Content-Type %q, want application/json (CheckTokenEndpointReturnedJsonContentType)", where, ct)
	}
	if got := r.field("error"); got != want {
		m.errorf("%s: error %q, want %s (RFC 6749 §5.2)", where, got, want)
	}
	_, hasURI := r.json["error_uri"]
	m.checkErrorFields(where, r.field("error"), r.field("error_description"), r.field("error_uri"), hasURI)
}

// jwtToken is a verified JWT.
type jwtToken struct {
	raw           string
	alg, kid, typ string
	claims        map[string]any
}

func (j *jwtToken) str(name string) string {
	s, _ := j.claims[name].(string)
	return s
}

// num returns a numeric claim, and whether it is a whole number.
func (j *jwtToken) num(name string) (int64, bool) {
	n, ok := j.claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

// verifyJWS checks raw's signature with the JWKS key its kid names
// (ValidateIdTokenSignature and ValidateIdTokenSignatureUsingKid) and
// decodes its claims.
func (m *module) verifyJWS(what, raw string) *jwtToken {
	m.t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.ES256, jose.ES384, jose.EdDSA})
	if err != nil {
		m.fatalf("%s: %v: %q", what, err, raw)
	}
	h := jws.Signatures[0].Header
	tok := &jwtToken{raw: raw, alg: h.Algorithm, kid: h.KeyID}
	tok.typ, _ = h.ExtraHeaders[jose.HeaderType].(string)
	if tok.kid == "" {
		m.errorf("%s: header has no kid (EnsureIdTokenContainsKid, OIDCC-10.1)", what)
	}
	var payload []byte
	for _, k := range m.op.jwks.Keys {
		if tok.kid != "" && k.KeyID != tok.kid {
			continue
		}
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if payload == nil {
		m.fatalf("%s: no key of the JWKS with kid %q verifies its %s signature (ValidateIdTokenSignatureUsingKid)", what, tok.kid, tok.alg)
	}
	if tok.claims, err = decodeJSONObject(payload); err != nil {
		m.fatalf("%s: claims: %v", what, err)
	}
	return tok
}

// idTokenClaimNames are the claims an ID token may carry without being
// listed in claims_supported: those of OpenID Connect Core §2 and JWT.
var idTokenClaimNames = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
	"at_hash", "c_hash", "sid", "jti", "nbf"}

// standardClaimTypes are the types of OpenID Connect Core §5.1's claims
// (ValidateIdTokenStandardClaims, ValidateUserInfoStandardClaims).
var standardClaimTypes = map[string]string{
	"sub": "string", "name": "string", "given_name": "string", "family_name": "string", "middle_name": "string",
	"nickname": "string", "preferred_username": "string", "profile": "string", "picture": "string",
	"website": "string", "email": "string", "email_verified": "bool", "gender": "string", "birthdate": "string",
	"zoneinfo": "string", "locale": "string", "phone_number": "string", "phone_number_verified": "bool",
	"address": "object", "updated_at": "number", "_claim_names": "object", "_claim_sources": "object",
}

func (m *module) checkStandardClaimTypes(where string, claims map[string]any) {
	m.t.Helper()
	for name, want := range standardClaimTypes {
		v, ok := claims[name]
		if !ok {
			continue
		}
		var good bool
		switch want {
		case "string":
			_, good = v.(string)
		case "bool":
			_, good = v.(bool)
		case "number":
			_, good = v.(json.Number)
		case "object":
			o, isObj := v.(map[string]any)
			good = isObj && (name != "address" || len(o) > 0)
		}
		if !good {
			m.errorf("%s: %s is %v (%T), want a %s (OIDCC-5.1)", where, name, v, v, want)
		}
	}
}

// checkIDToken is the suite's PerformStandardIdTokenChecks (ValidateIdToken,
// ValidateIdTokenStandardClaims, ValidateIdTokenNonce, the signature
// checks, CheckForSubjectInIdToken, EnsureIdTokenUpdatedAtValid), at_hash
// if present (ValidateAtHash), and, beyond the suite, the fosite traps:
// auth_time a whole number of seconds, no rat, and no claim that is
// neither an ID token claim nor in claims_supported.
func (m *module) checkIDToken(raw string, c *confClient, nonce, accessToken string) *jwtToken {
	m.t.Helper()
	tok := m.verifyJWS("id_token", raw)
	now := time.Now()
	skew := 5 * time.Minute
	if iss := tok.str("iss"); iss != m.op.issuer {
		m.errorf("id_token iss %q, want %q (ValidateIdToken)", iss, m.op.issuer)
	}
	switch aud := tok.claims["aud"].(type) {
	case string:
		if aud != c.id {
			m.errorf("id_token aud %q, want %q (ValidateIdToken)", aud, c.id)
		}
	case []any:
		if !slices.Contains(aud, any(c.id)) {
			m.errorf("id_token aud %v does not contain %q (ValidateIdToken)", aud, c.id)
		}
		if len(aud) > 1 && tok.str("azp") != c.id {
			m.errorf("id_token has several audiences %v and azp %q, want azp %q (OIDCC-2)", aud, tok.str("azp"), c.id)
		}
	default:
		m.errorf("id_token aud %v (%T), want the client ID (ValidateIdToken)", aud, aud)
	}
	if exp, ok := tok.num("exp"); !ok {
		m.errorf("id_token exp %v, want a number (ValidateIdToken)", tok.claims["exp"])
	} else if time.Unix(exp, 0).Before(now.Add(-skew)) {
		m.errorf("id_token expired at %s (ValidateIdToken)", time.Unix(exp, 0))
	}
	if iat, ok := tok.num("iat"); !ok {
		m.errorf("id_token iat %v, want a number (ValidateIdToken)", tok.claims["iat"])
	} else if t := time.Unix(iat, 0); t.After(now.Add(skew)) || t.Before(now.Add(-skew)) {
		m.errorf("id_token iat %s is more than 5 minutes from now (ValidateIdToken)", t)
	}
	if _, present := tok.claims["auth_time"]; present {
		at, whole := tok.num("auth_time")
		switch {
		case !whole:
			m.errorf("id_token auth_time %v, want a whole number of seconds (OIDCC-2; fosite's AuthTime must be whole seconds)", tok.claims["auth_time"])
		case time.Unix(at, 0).After(now.Add(skew)):
			m.errorf("id_token auth_time %s is in the future (ValidateIdToken)", time.Unix(at, 0))
		case time.Unix(at, 0).Before(now.AddDate(-1, 0, 0)):
			m.errorf("id_token auth_time %s is over a year ago (ValidateIdToken)", time.Unix(at, 0))
		}
	}
	if acr, ok := tok.claims["acr"]; ok && acr == "" {
		m.errorf("id_token acr is an empty string (ValidateIdToken)")
	}
	m.checkStandardClaimTypes("id_token", tok.claims)
	switch got := tok.str("nonce"); {
	case nonce == "" && tok.claims["nonce"] != nil:
		m.errorf("id_token nonce %q, want none: the request had none (ValidateIdTokenNonce)", got)
	case nonce != "" && got != nonce:
		m.errorf("id_token nonce %q, want %q (ValidateIdTokenNonce)", got, nonce)
	}
	if tok.str("sub") == "" {
		m.errorf("id_token has no sub (CheckForSubjectInIdToken)")
	}
	if atHash := tok.str("at_hash"); atHash != "" && accessToken != "" {
		if want := halfHash(tok.alg, accessToken); atHash != want {
			m.errorf("id_token at_hash %q, want %q (ValidateAtHash, OIDCC-3.3.2.11)", atHash, want)
		}
	}
	if _, ok := tok.claims["rat"]; ok {
		m.errorf("id_token carries fosite's rat claim %v, want no non-standard claims (beyond the suite)", tok.claims["rat"])
	}
	supported := strSlice(m.op.disc["claims_supported"])
	for name := range tok.claims {
		if name != "rat" && !has(idTokenClaimNames, name) && !has(supported, name) {
			m.errorf("id_token carries %q, which is neither an ID token claim nor in claims_supported (beyond the suite)", name)
		}
	}
	return tok
}

// halfHash is at_hash/c_hash: the left half of the hash of value with the
// hash of the JWS algorithm, base64url (OIDCC-3.3.2.11).
func halfHash(alg, value string) string {
	var h hash.Hash
	switch alg[len(alg)-3:] {
	case "384":
		h = sha512.New384()
	case "512":
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// callUserinfo calls the userinfo endpoint the way how says: "get"
// (Authorization header), "post-header" or "post-body" (access_token in
// the form, RFC 6750 §2.2).
func (m *module) callUserinfo(how, accessToken string) endpointResponse {
	m.t.Helper()
	endpoint := m.op.str("userinfo_endpoint")
	var req *http.Request
	var err error
	switch how {
	case "get":
		req, err = http.NewRequest(http.MethodGet, endpoint, nil)
	case "post-header":
		req, err = http.NewRequest(http.MethodPost, endpoint, nil)
	case "post-body":
		req, err = http.NewRequest(http.MethodPost, endpoint, strings.NewReader(url.Values{"access_token": {accessToken}}.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		m.t.Fatal(err)
	}
	if how != "post-body" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	return m.op.do(m.t, req)
}

// checkUserinfo is the suite's validation of a userinfo response
// (EnsureHttpStatusCodeIs200, EnsureContentTypeJson,
// ValidateUserInfoStandardClaims, EnsureUserInfoContainsSub,
// EnsureUserInfoUpdatedAtValid) and that its sub is the ID token's
// (OIDCC-5.3.2; the suite checks it for flows that return an ID token
// from the authorization endpoint).
func (m *module) checkUserinfo(r endpointResponse, idToken *jwtToken) map[string]any {
	m.t.Helper()
	if r.status != http.StatusOK {
		m.fatalf("userinfo: got %s, want 200 (EnsureHttpStatusCodeIs200)", r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		m.errorf("userinfo: Content-Type %q, want application/json (OIDCC-5.3.2)", ct)
	}
	if r.json == nil {
		m.fatalf("userinfo: %q is not a JSON object", r.raw)
	}
	m.checkStandardClaimTypes("userinfo", r.json)
	sub, _ := r.json["sub"].(string)
	if sub == "" {
		m.errorf("userinfo has no sub (EnsureUserInfoContainsSub)")
	} else if idToken != nil && sub != idToken.str("sub") {
		m.errorf("userinfo sub %q, want the ID token's %q (OIDCC-5.3.2)", sub, idToken.str("sub"))
	}
	return r.json
}

// flow is the suite's standard flow: authorize, check the response,
// exchange the code, call userinfo (requestProtectedResource).
func (m *module) flow(req *authzRequest) tokens {
	m.t.Helper()
	code := m.expectCode(req, m.authorize(req))
	tok := m.exchange(req, code)
	if r := m.callUserinfo("get", tok.access); r.status != http.StatusOK {
		m.errorf("userinfo (requestProtectedResource): got %s, want 200", r)
	}
	return tok
}

// discoveryHas reports whether a discovery array lists all of values.
func (m *module) discoveryHas(name string, values ...string) bool {
	list := strSlice(m.op.disc[name])
	for _, v := range values {
		if !has(list, v) {
			return false
		}
	}
	return true
}

func strSlice(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// httpsURL returns why v is not an absolute https URL, or "".
func httpsURL(v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("%v is not a string", v)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Sprintf("%q is not an absolute URL", s)
	case u.Scheme != "https":
		return fmt.Sprintf("%q is not https", s)
	}
	return ""
}
