package oidc

import "net/http"

// Revoke serves /oauth2/revoke (RFC 7009). Revoking a refresh token also
// revokes the access tokens of its grant.
func (p *Provider) Revoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := p.oauth.NewRevocationRequest(r.Context(), r)
		p.oauth.WriteRevocationResponse(r.Context(), w, fositeError(err))
	})
}
