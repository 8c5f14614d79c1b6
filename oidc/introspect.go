package oidc

import (
	"net/http"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// Introspect serves /oauth2/introspect (RFC 7662). Only a client
// authenticated with client_secret_basic may ask (RFC 7662 §2.1). fosite
// would also take an access token (a Bearer header, or an access_token
// parameter, which it reads before the Basic header) as the caller's
// credential, letting every token holder probe every other token; such
// requests are refused before fosite sees them.
func (p *Provider) Introspect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := r.ParseForm(); err != nil {
			p.oauth.WriteIntrospectionError(ctx, w, oauthError(fosite.ErrInvalidRequest.WithHint("The request body could not be parsed.")))
			return
		}
		if _, _, ok := r.BasicAuth(); !ok || r.Form.Has("access_token") {
			w.Header().Set("WWW-Authenticate", `Basic realm="twostep"`)
			p.oauth.WriteIntrospectionError(ctx, w, oauthError(fosite.ErrRequestUnauthorized.WithHint(
				"Authenticate the client with HTTP Basic (client_secret_basic).")))
			return
		}
		resp, err := p.oauth.NewIntrospectionRequest(ctx, r, openid.NewDefaultSession())
		if err != nil {
			p.oauth.WriteIntrospectionError(ctx, w, oauthError(fositeError(err)))
			return
		}
		p.oauth.WriteIntrospectionResponse(ctx, w, resp)
	})
}
