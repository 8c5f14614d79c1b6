package oidc

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// discoveryDocument builds the OpenID Provider Metadata (OpenID Connect
// Discovery 1.0 §3, RFC 8414) once, at start-up.
func discoveryDocument(issuer string) ([]byte, error) {
	doc := map[string]any{
		"issuer":                                        issuer,
		"authorization_endpoint":                        issuer + "/oauth2/auth",
		"token_endpoint":                                issuer + "/oauth2/token",
		"userinfo_endpoint":                             issuer + "/userinfo",
		"jwks_uri":                                      issuer + "/.well-known/jwks.json",
		"revocation_endpoint":                           issuer + "/oauth2/revoke",
		"introspection_endpoint":                        issuer + "/oauth2/introspect",
		"end_session_endpoint":                          issuer + "/oauth2/logout",
		"pushed_authorization_request_endpoint":         issuer + "/oauth2/par",
		"require_pushed_authorization_requests":         false,
		"scopes_supported":                              SupportedScopes,
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query", "form_post"},
		"grant_types_supported":                         grantTypes,
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         Algorithms,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"code_challenge_methods_supported":              []string{"S256"},
		"claims_supported": []string{
			"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "at_hash", "sid",
			"email", "email_verified", "name", "preferred_username", "groups",
		},
		"acr_values_supported":       []string{storage.ACRTOTP, storage.ACRRecoveryCode, storage.ACRRememberedDevice},
		"prompt_values_supported":    []string{"none", "login", "consent"},
		"ui_locales_supported":       templates.Langs(),
		"claims_parameter_supported": true,
		"claim_types_supported":      []string{"normal"},
		// RFC 9207: every authorization response names the issuer.
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"frontchannel_logout_supported":                  false,
		"backchannel_logout_supported":                   true,
		// The logout token carries sid, and so do ID tokens (Back-Channel
		// Logout 1.0 §2.1).
		"backchannel_logout_session_supported": true,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode discovery document: %w", err)
	}
	return b, nil
}

// Discovery serves /.well-known/openid-configuration from the precomputed
// document.
func (p *Provider) Discovery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONDoc(w, p.discovery, "public, max-age=3600")
	})
}

// JWKS serves /.well-known/jwks.json: every published public key.
func (p *Provider) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONDoc(w, p.keys.JWKS(r.Context()), "public, max-age=60")
	})
}

func writeJSONDoc(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", cacheControl)
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}
