package oidc

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
)

// parLifetime is how long a pushed request waits for the browser. The
// request_uri is used at the first visit to the authorization endpoint,
// before the login, so it can be short (RFC 9126 §2.2 suggests 5 to 600
// seconds).
const parLifetime = 5 * time.Minute

// PushedAuthorize serves /oauth2/par, the pushed authorization request
// endpoint (RFC 9126 §2): the client authenticates as at the token
// endpoint and posts the parameters of an authorization request, which are
// checked as the authorization endpoint would and kept under a single-use
// request_uri; the answer (201) is that request_uri and its expires_in.
// The client then sends the browser to /oauth2/auth with only client_id
// and request_uri.
func (p *Provider) PushedAuthorize() http.Handler {
	return http.HandlerFunc(p.pushedAuthorize)
}

func (p *Provider) pushedAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	areq, err := p.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		p.pushedAuthorizeError(w, r, areq, err)
		return
	}
	client, ok := areq.GetClient().(*storage.Client)
	if !ok {
		p.pushedAuthorizeError(w, r, areq, fosite.ErrServerError.WithDebug("unexpected client type"))
		return
	}
	// fosite's handler would store anything but a code request without a
	// request_uri; refuse what the authorization endpoint would refuse.
	if err := checkCodeRequest(client, areq); err != nil {
		p.pushedAuthorizeError(w, r, areq, err)
		return
	}
	session := &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
	resp, err := p.oauth.NewPushedAuthorizeResponse(ctx, areq, session)
	if err != nil {
		p.pushedAuthorizeError(w, r, areq, err)
		return
	}
	if resp.GetRequestURI() == "" {
		p.pushedAuthorizeError(w, r, areq, fosite.ErrServerError.WithDebug("no handler made a request_uri"))
		return
	}
	p.oauth.WritePushedAuthorizeResponse(ctx, w, areq, resp)
}

// pushedAuthorizeError answers the client with an OAuth error (RFC 9126
// §2.3), logging those that are twostep's fault.
func (p *Provider) pushedAuthorizeError(w http.ResponseWriter, r *http.Request, areq fosite.AuthorizeRequester, err error) {
	err = fositeError(err)
	if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField >= 500 {
		p.log.ErrorContext(r.Context(), "pushed authorization request", "err", rfc.ErrorField, "debug", rfc.Debug(),
			"request_id", w.Header().Get("X-Request-Id"))
	}
	p.oauth.WritePushedAuthorizeError(r.Context(), w, areq, err)
}

// resolvePushed replaces an authorization request that carries a pushed
// request's request_uri with the pushed request itself, and reports
// whether it did. Only the pushed parameters count (RFC 9126 §4): the
// returned request carries exactly them, as if the client had sent them
// to the authorization endpoint, so fosite checks them again and the
// login can keep the request server-side and replay it like any other.
// The request_uri is consumed here, once: it must name an unexpired
// pushed request of the client_id sent beside it.
func (p *Provider) resolvePushed(r *http.Request) (*http.Request, bool, error) {
	if err := r.ParseForm(); err != nil {
		return r, false, fosite.ErrInvalidRequest.WithHint("The request could not be parsed.").WithWrap(err)
	}
	requestURI := r.Form.Get("request_uri")
	if !strings.HasPrefix(requestURI, parURIPrefix) {
		return r, false, nil
	}
	ctx := r.Context()
	pushed, err := p.store.GetPARSession(ctx, requestURI)
	if errors.Is(err, fosite.ErrNotFound) {
		return r, false, fosite.ErrInvalidRequestURI.WithHint(
			"The request_uri is unknown, expired or already used; push the authorization request again.").WithWrap(err)
	}
	if err != nil {
		return r, false, err
	}
	// A request_uri is bound to the client that pushed it (RFC 9126 §4);
	// another client_id does not use it up.
	if clientID := r.Form.Get("client_id"); clientID != pushed.GetClient().GetID() {
		return r, false, fosite.ErrInvalidRequest.WithHint(
			"The client_id must be the one that pushed the request_uri (RFC 9126 §4).")
	}
	if err := p.store.DeletePARSession(ctx, requestURI); errors.Is(err, fosite.ErrNotFound) {
		return r, false, fosite.ErrInvalidRequestURI.WithHint("The request_uri was already used.").WithWrap(err)
	} else if err != nil {
		return r, false, err
	}
	resolved := r.Clone(ctx)
	resolved.Method = http.MethodGet
	resolved.URL.RawQuery = pushed.GetRequestForm().Encode()
	resolved.Body, resolved.ContentLength = http.NoBody, 0
	resolved.Header.Del("Content-Type")
	resolved.Form, resolved.PostForm, resolved.MultipartForm = nil, nil, nil
	return resolved, true, nil
}
