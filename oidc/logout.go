package oidc

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite/token/jwt"
)

// logoutPage is the data of logout.html.
type logoutPage struct {
	Form url.Values
}

// Logout serves /oauth2/logout, RP-initiated logout (OpenID Connect
// RP-Initiated Logout 1.0 §2). With a valid id_token_hint it ends the login
// session at once; without one, a GET asks the user to confirm with a POST
// (the session cookie is SameSite=Lax, so another site cannot post it). A
// post_logout_redirect_uri is followed only if it is registered for the
// client, exactly; otherwise an error page, never a redirect.
func (p *Provider) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := r.ParseForm(); err != nil {
			p.pages.Error(w, r, http.StatusBadRequest, "The sign-out request could not be read.")
			return
		}
		form := r.Form
		clientID := form.Get("client_id")
		hinted := false
		if hint := form.Get("id_token_hint"); hint != "" {
			aud, err := p.hintAudience(r, hint)
			if err != nil {
				p.pages.Error(w, r, http.StatusBadRequest, "The sign-out request carries an invalid id_token_hint.")
				return
			}
			if clientID != "" && clientID != aud {
				p.pages.Error(w, r, http.StatusBadRequest, "The sign-out request's client_id does not match its id_token_hint.")
				return
			}
			clientID, hinted = aud, true
		}
		redirect := form.Get("post_logout_redirect_uri")
		if redirect != "" {
			if clientID == "" {
				p.pages.Error(w, r, http.StatusBadRequest, "A post_logout_redirect_uri needs an id_token_hint or client_id.")
				return
			}
			client, err := p.store.Client(ctx, clientID)
			if err != nil || !has(client.PostLogoutRedirectURIs, redirect) {
				p.pages.Error(w, r, http.StatusBadRequest, "The post_logout_redirect_uri is not registered for this application.")
				return
			}
		}
		if !hinted && r.Method != http.MethodPost {
			p.pages.Render(w, http.StatusOK, "logout.html", logoutPage{Form: form})
			return
		}
		if err := p.sessions.Logout(w, r); err != nil {
			p.serverError(w, r, "logout", err)
			return
		}
		if redirect == "" {
			p.pages.Render(w, http.StatusOK, "signedout.html", nil)
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

// hintAudience verifies an id_token_hint we issued (expired is fine, as the
// spec allows) and returns the client it was issued to.
func (p *Provider) hintAudience(r *http.Request, hint string) (string, error) {
	tok, err := p.keys.Decode(r.Context(), hint)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired) {
		return "", err
	}
	if tok == nil || mustString(tok.Claims["iss"]) != p.issuer {
		return "", errors.New("id_token_hint: wrong issuer")
	}
	switch aud := tok.Claims["aud"].(type) {
	case string:
		return aud, nil
	case []any:
		if len(aud) == 1 {
			return mustString(aud[0]), nil
		}
	}
	return "", errors.New("id_token_hint: no single audience")
}
