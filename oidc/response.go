package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/templates"
)

// writeAuthorizeResponse sends an authorization response, a code or an
// error, to the client's redirect_uri, which fosite has checked. twostep
// writes it rather than fosite's WriteAuthorizeResponse and
// WriteAuthorizeError because fosite neither names the issuer nor can
// serve a form_post page under twostep's Content-Security-Policy (its own
// page submits itself with an inline script).
//
// Every response carries iss (RFC 9207 §2), so the client can tell which
// provider answered. With response_mode=form_post the parameters go in a
// page that posts them (OAuth 2.0 Form Post Response Mode §2); otherwise
// in the redirect's query (RFC 6749 §4.1.2), after the redirect_uri's own
// parameters: a response mode the client may not use was refused as an
// error, and errors of a code request go in the query (§4.1.2.1).
func (p *Provider) writeAuthorizeResponse(w http.ResponseWriter, r *http.Request, areq fosite.AuthorizeRequester, params url.Values) {
	params.Set("iss", p.issuer)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	redirect := *areq.GetRedirectURI()
	redirect.Fragment = ""
	if areq.GetResponseMode() == fosite.ResponseModeFormPost {
		l := templates.PickLang(r, areq.GetRequestForm().Get("ui_locales"))
		p.pages.FormPost(w, l, templates.FormPost{Action: redirect.String(), Fields: params})
		return
	}
	q := redirect.Query()
	for k, vs := range params {
		q[k] = vs
	}
	redirect.RawQuery = q.Encode()
	h.Set("Location", redirect.String())
	w.WriteHeader(http.StatusSeeOther)
}

// authorizeErrorParams are the parameters of an error response
// (RFC 6749 §4.1.2.1): error, error_description and the request's state.
func authorizeErrorParams(areq fosite.AuthorizeRequester, err error) url.Values {
	rfc := oauthError(err)
	params := url.Values{"error": {rfc.ErrorField}}
	if d := rfc.DescriptionField; d != "" {
		params.Set("error_description", d)
	}
	if state := areq.GetState(); state != "" {
		params.Set("state", state)
	}
	return params
}

// oauthError is err as the OAuth error twostep sends: a fosite error keeps
// its code and status, anything else is a server_error, and the
// description (fosite's, with its hint) is cleaned by errorDescription.
// The debug detail never leaves; the result wraps err for the log.
func oauthError(err error) *fosite.RFC6749Error {
	rfc := fosite.ErrServerError
	var e *fosite.RFC6749Error
	if errors.As(err, &e) {
		rfc = e
	}
	clean := &fosite.RFC6749Error{
		ErrorField:       rfc.ErrorField,
		DescriptionField: errorDescription(rfc.WithExposeDebug(false).GetDescription()),
		CodeField:        rfc.CodeField,
	}
	return clean.WithWrap(err)
}

// errorDescription makes s a valid error_description: RFC 6749 §4.1.2.1
// and §5.2 allow only printable ASCII without '"' and '\'. fosite's hints
// quote values and twostep's cite sections (§), so quotes become ', a
// backslash /, § "section", white space a space, and anything else
// outside the set a '?'.
func errorDescription(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c == '§':
			b.WriteString("section ")
		case c == '\t' || c == '\n' || c == '\r':
			b.WriteByte(' ')
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(c)
		}
	}
	return strings.ReplaceAll(b.String(), "section  ", "section ")
}
