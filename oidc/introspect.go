package oidc

import (
	"net/http"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// Introspect serves /oauth2/introspect (RFC 7662). Only a client
// authenticated with client_secret_basic may ask (RFC 7662 §2.1); fosite
// would also accept any bearer access token, which would let every token
// holder probe every other token.
func (p *Provider) Introspect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="twostep"`)
			p.oauth.WriteIntrospectionError(ctx, w, fosite.ErrRequestUnauthorized.WithHint(
				"Authenticate the client with HTTP Basic (client_secret_basic)."))
			return
		}
		resp, err := p.oauth.NewIntrospectionRequest(ctx, r, openid.NewDefaultSession())
		if err != nil {
			p.oauth.WriteIntrospectionError(ctx, w, fositeError(err))
			return
		}
		p.oauth.WriteIntrospectionResponse(ctx, w, resp)
	})
}
