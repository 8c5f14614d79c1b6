package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// The modules of TestConformance's twostep-beyond-the-suite plan: what
// twostep promises that the suite's plans do not test.

// issInResponses: RFC 9207 §2: every authorization response, success or
// error, in the query or a form_post, carries iss; §3: discovery says so.
func (m *module) issInResponses() {
	if v := m.op.disc["authorization_response_iss_parameter_supported"]; v != true {
		m.errorf("authorization_response_iss_parameter_supported is %v, want true (RFC 9207 §3)", v)
	}
	check := func(what string, req *authzRequest, resp authResponse) {
		m.t.Helper()
		if !resp.reached {
			m.fatalf("%s: got %s, want a response at the client", what, describe(resp))
		}
		if got := resp.params.Get("iss"); got != m.op.issuer {
			m.errorf("%s: iss %q, want %q (RFC 9207 §2)", what, got, m.op.issuer)
		}
	}
	m.user()
	req := m.newRequest("openid").set("prompt", "none")
	resp := m.authorize(req)
	check("error response (prompt=none, no session)", req, resp)
	m.expectError(req, resp)
	req = m.newRequest("openid")
	resp = m.authorize(req)
	check("success response in the query", req, resp)
	m.expectCode(req, resp)
	req = m.newRequest("openid").set("response_mode", "form_post")
	resp = m.authorize(req)
	check("success response by form_post", req, resp)
	m.expectCode(req, resp)
}

// pushedAuthorization: RFC 9126: the request pushed to the PAR endpoint
// with client authentication, then only client_id and request_uri at the
// authorization endpoint; a client that requires PAR (§6) cannot do
// without.
func (m *module) pushedAuthorization(requirePAR bool) {
	par := m.op.str("pushed_authorization_request_endpoint")
	if why := httpsURL(par); why != "" {
		m.fatalf("pushed_authorization_request_endpoint %s (RFC 9126 §5)", why)
	}
	if v, ok := m.op.disc["require_pushed_authorization_requests"]; ok && v != false {
		m.errorf("require_pushed_authorization_requests is %v, want false: PAR is required per client (RFC 9126 §5)", v)
	}
	m.c = m.registerClient(clientOptions{requirePAR: requirePAR})
	if requirePAR {
		req := m.newRequest("openid")
		resp := m.authorize(req)
		m.t.Logf("a plain authorization request from a client that requires PAR: %s", describe(resp))
		if resp.reached && resp.params.Has("code") {
			m.errorf("a client that requires PAR got a code without pushing its request (RFC 9126 §6)")
		} else if resp.reached {
			m.expectError(req, resp, "invalid_request")
		}
	}
	if r := m.postEndpoint(par, nil, m.newRequest("openid").params); r.status != http.StatusUnauthorized || r.field("error") != "invalid_client" {
		m.errorf("PAR without client authentication: got %s, want 401 invalid_client (RFC 9126 §2.1)", r)
	}
	req := m.newRequest("openid")
	r := m.postEndpoint(par, m.c, req.params)
	if r.status != http.StatusCreated || r.json == nil {
		m.fatalf("PAR: got %s, want 201 with a request_uri (RFC 9126 §2.2)", r)
	}
	requestURI := r.field("request_uri")
	if !strings.HasPrefix(requestURI, "urn:ietf:params:oauth:request_uri:") {
		m.errorf("PAR request_uri %q, want a urn:ietf:params:oauth:request_uri: URN (RFC 9126 §2.2)", requestURI)
	}
	if n, ok := r.json["expires_in"].(json.Number); !ok || n.String() == "0" || strings.HasPrefix(n.String(), "-") {
		m.errorf("PAR expires_in %v, want a positive number (RFC 9126 §2.2)", r.json["expires_in"])
	}
	m.user()
	link := m.authEndpoint() + "?" + url.Values{"client_id": {m.c.id}, "request_uri": {requestURI}}.Encode()
	resp := m.play(m.b.get(link))
	tok := m.exchange(req, m.expectCode(req, resp))
	if r := m.callUserinfo("get", tok.access); r.status != http.StatusOK {
		m.errorf("userinfo after a PAR flow: got %s, want 200", r)
	}
}

// es256: a client registered with id_token_signed_response_alg ES256
// gets ES256 ID tokens signed by a P-256 key of the JWKS.
func (m *module) es256() {
	if !m.discoveryHas("id_token_signing_alg_values_supported", "RS256", "ES256") {
		m.errorf("id_token_signing_alg_values_supported %v, want RS256 and ES256", m.op.disc["id_token_signing_alg_values_supported"])
	}
	m.c = m.registerClient(clientOptions{idTokenAlg: "ES256"})
	tok := m.flow(m.newRequest("openid"))
	if tok.idToken.alg != "ES256" {
		m.errorf("id_token alg %q for a client registered with ES256, want ES256", tok.idToken.alg)
	}
	for _, k := range m.op.jwks.Keys {
		if k.KeyID == tok.idToken.kid {
			if ec, ok := k.Key.(*ecdsa.PublicKey); !ok || ec.Curve != elliptic.P256() {
				m.errorf("the JWKS key %q that signed the ES256 id_token is %T, want a P-256 key", k.KeyID, k.Key)
			}
		}
	}
}

// maxAge0: max_age=0 asks for a new login however recent the last one
// (OpenID Connect Core §3.1.2.1; fosite's treats 0 as absent).
func (m *module) maxAge0() {
	first := m.flow(m.newRequest("openid"))
	waitPastSecond(first.idToken)
	second := m.flow(m.newRequest("openid").set("max_age", "0"))
	if !m.saw("login") || !m.saw("code") {
		m.errorf("max_age=0 with a session: pages %v, want the password and the code asked again", m.seen)
	}
	a1, _ := first.idToken.num("auth_time")
	if a2, ok := second.idToken.num("auth_time"); !ok || a2 <= a1 {
		m.errorf("max_age=0: auth_time %v, want one later than the first login's %d", second.idToken.claims["auth_time"], a1)
	}
}
