package oidc

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite/token/jwt"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// logoutPage is the data of logout.html: the form fields the confirmation
// posts back, the CSRF token of the login session among them.
type logoutPage struct {
	Form url.Values
}

// Logout serves /oauth2/logout, RP-initiated logout (OpenID Connect
// RP-Initiated Logout 1.0 §2). A valid id_token_hint issued to the
// browser's user ends the login session at once; otherwise the user is
// asked to confirm with a POST that must carry the login session's CSRF
// token (§6: a logout without a hint, or with someone else's ID token,
// must not be forced on a user by another site). A post_logout_redirect_uri
// is followed only if it is registered for the client, exactly; otherwise
// an error page, never a redirect. Each logout is audited as "logout".
// Clients the ended session signed in to that registered a back-channel
// logout URI get a logout token, delivered in the background.
func (p *Provider) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := r.ParseForm(); err != nil {
			l := templates.PickLang(r, "")
			p.pages.Error(w, l, http.StatusBadRequest, l.T("logout.unreadable"))
			return
		}
		form := r.Form
		// RP-Initiated Logout 1.0 §2: ui_locales as in an authorization
		// request.
		l := templates.PickLang(r, form.Get("ui_locales"))
		clientID, hintSubject := form.Get("client_id"), ""
		hinted := false
		if hint := form.Get("id_token_hint"); hint != "" {
			aud, sub, err := p.hintClaims(r, hint)
			if err != nil {
				p.pages.Error(w, l, http.StatusBadRequest, l.T("logout.bad_hint"))
				return
			}
			if clientID != "" && clientID != aud {
				p.pages.Error(w, l, http.StatusBadRequest, l.T("logout.client_mismatch"))
				return
			}
			clientID, hintSubject, hinted = aud, sub, true
		}
		redirect := form.Get("post_logout_redirect_uri")
		if redirect != "" {
			if clientID == "" {
				p.pages.Error(w, l, http.StatusBadRequest, l.T("logout.needs_client"))
				return
			}
			client, err := p.store.Client(ctx, clientID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				p.serverError(w, r, "load client", err)
				return
			}
			if err != nil || !has(client.PostLogoutRedirectURIs, redirect) {
				p.pages.Error(w, l, http.StatusBadRequest, l.T("logout.unregistered"))
				return
			}
		}

		login, err := p.sessions.Current(r)
		signedIn := err == nil
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.serverError(w, r, "load login session", err)
			return
		}
		switch {
		case hinted && (!signedIn || hintSubject == login.UserID):
			// The client that signed this user in asks; nothing to confirm.
		case r.Method == http.MethodPost:
			// The confirmation. With nobody signed in there is nothing to
			// protect, only a half-done login (if any) to clear.
			if signedIn && subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(login.CSRFToken)) != 1 {
				p.pages.Error(w, l, http.StatusForbidden, l.T("logout.expired"))
				return
			}
		default:
			fields := url.Values{}
			for k, v := range form {
				fields[k] = v
			}
			fields.Del("csrf_token")
			if signedIn {
				fields.Set("csrf_token", login.CSRFToken)
			}
			p.pages.Render(w, l, http.StatusOK, "logout.html", logoutPage{Form: fields})
			return
		}

		if err := p.sessions.Logout(w, r); err != nil {
			p.serverError(w, r, "logout", err)
			return
		}
		// Back-Channel Logout 1.0 §2.7: tell the clients the session signed
		// in to, later, from RunBackchannel.
		p.queueBackchannelLogouts(w, r, login)
		ev := storage.AuditEvent{Event: "logout", Outcome: "success", UserID: login.UserID}
		if hinted {
			ev.ClientID = clientID
		}
		p.record(r, ev)
		if redirect == "" {
			p.pages.Render(w, l, http.StatusOK, "signedout.html", nil)
			return
		}
		u, _ := url.Parse(redirect) // registered URIs parse; checked at registration
		if state := form.Get("state"); state != "" {
			q := u.Query()
			q.Set("state", state)
			u.RawQuery = q.Encode()
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
	})
}

// hintClaims verifies an id_token_hint we issued (expired is fine, as the
// spec allows) and returns the client it was issued to and its subject.
func (p *Provider) hintClaims(r *http.Request, hint string) (aud, sub string, err error) {
	tok, err := p.keys.Decode(r.Context(), hint)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired) {
		return "", "", err
	}
	if tok == nil || mustString(tok.Claims["iss"]) != p.issuer {
		return "", "", errors.New("id_token_hint: wrong issuer")
	}
	sub = mustString(tok.Claims["sub"])
	switch a := tok.Claims["aud"].(type) {
	case string:
		return a, sub, nil
	case []any:
		if len(a) == 1 {
			return mustString(a[0]), sub, nil
		}
	}
	return "", "", errors.New("id_token_hint: no single audience")
}
