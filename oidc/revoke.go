package oidc

import (
	"net/http"
	"net/url"

	"github.com/twostep/twostep/storage"
)

// Revoke serves /oauth2/revoke (RFC 7009). Revoking a refresh token also
// revokes the access tokens of its grant. Each revocation fosite accepts is
// audited as "token.revoked" (an unknown token too: RFC 7009 §2.2 treats
// it as revoked); another client's token is left alone and not audited.
func (p *Provider) Revoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := p.oauth.NewRevocationRequest(r.Context(), r)
		if err != nil {
			err = oauthError(fositeError(err))
		}
		p.oauth.WriteRevocationResponse(r.Context(), w, err)
		if err == nil {
			p.record(r, storage.AuditEvent{Event: "token.revoked", Outcome: "success", ClientID: authenticatedClientID(r)})
		}
	})
}

// authenticatedClientID returns the client ID of a request fosite has
// authenticated: from HTTP Basic (form-encoded, RFC 6749 §2.3.1), else the
// client_id body parameter. The form must be parsed.
func authenticatedClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if unescaped, err := url.QueryUnescape(id); err == nil {
			return unescaped
		}
		return id
	}
	return r.PostForm.Get("client_id")
}
