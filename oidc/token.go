package oidc

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

// grantTypes are the grants the token endpoint serves.
var grantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// Token serves /oauth2/token: authorization_code (with PKCE), refresh_token
// (rotating) and client_credentials. There is no password grant: it would
// skip the second factor. Each token response is audited as "token.issued",
// with the grant type as its detail.
func (p *Provider) Token() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// RFC 6749 §5.1, §5.2: no response of this endpoint, error or
		// not, may be cached.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		session := newEmptySession()
		areq, err := p.oauth.NewAccessRequest(ctx, r, session)
		if err != nil {
			p.tokenError(w, r, areq, err)
			return
		}
		if areq.GetGrantTypes().ExactOne("client_credentials") {
			// A machine acting for itself: it gets the scopes it may ask
			// for, but nothing that speaks for a user.
			for _, s := range areq.GetRequestedScopes() {
				if s != "openid" && s != "offline_access" {
					areq.GrantScope(s)
				}
			}
			session.Subject = areq.GetClient().GetID()
			session.Claims.Subject = areq.GetClient().GetID()
		}
		resp, err := p.oauth.NewAccessResponse(ctx, areq)
		if err != nil {
			p.tokenError(w, r, areq, err)
			return
		}
		p.oauth.WriteAccessResponse(ctx, w, areq, resp)
		grantType := areq.GetGrantTypes()[0]
		ev := storage.AuditEvent{Event: "token.issued", Outcome: "success", ClientID: areq.GetClient().GetID(), Detail: grantType}
		if grantType != "client_credentials" {
			// The subject of a client_credentials token is the client.
			ev.UserID = areq.GetSession().GetSubject()
		}
		p.record(r, ev)
	})
}

// tokenError writes a token endpoint error. A code or refresh token that
// lost a race to a concurrent request surfaces from storage as "already
// used"; the client sees invalid_grant (RFC 6749 §5.2), as for any used
// grant.
func (p *Provider) tokenError(w http.ResponseWriter, r *http.Request, areq fosite.AccessRequester, err error) {
	// fosite answers invalid_request when no handler takes the grant type;
	// RFC 6749 §5.2 calls that unsupported_grant_type.
	if gt := r.PostForm.Get("grant_type"); gt != "" && !has(grantTypes, gt) {
		err = fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported; twostep has no implicit or password grant.", gt)
	}
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrInactiveToken) {
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			err = fosite.ErrInvalidGrant.WithHint("The grant was already used.").WithWrap(err)
		}
	}
	err = fositeError(err)
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField >= 500 {
		p.log.ErrorContext(r.Context(), "token", "err", rfc.ErrorField, "debug", rfc.Debug(), "request_id", w.Header().Get("X-Request-Id"))
	}
	p.oauth.WriteAccessError(r.Context(), w, areq, oauthError(err))
}
