package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// authRequestLifetime bounds how long a user may take over the login and
// consent steps.
const authRequestLifetime = 30 * time.Minute

// Authorize serves /oauth2/auth (GET and POST). A fresh request is checked
// by fosite; when the browser has not completed both factors (or must
// repeat them: prompt=login, max_age, acr_values) the request is kept
// server-side and the browser goes to /login; when consent is due it goes
// to /consent. Both return here with ?auth_request=ID, which replays the
// kept request with its original RequestedAt. Only then is a code issued.
func (p *Provider) Authorize() http.Handler {
	return http.HandlerFunc(p.authorize)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var pending *storage.AuthRequest
	if id := r.URL.Query().Get("auth_request"); id != "" && r.Method == http.MethodGet {
		ar, err := p.store.GetAuthRequest(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			l := templates.PickLang(r, "")
			p.pages.Error(w, l, http.StatusBadRequest, l.T("request.expired"))
			return
		}
		if err != nil {
			p.serverError(w, r, "load auth request", err)
			return
		}
		pending = &ar
		// Replay the original request: fosite validates it again, unchanged.
		r = r.Clone(ctx)
		r.URL.RawQuery = ar.Form.Encode()
		r.Form, r.PostForm = nil, nil
	}
	// A pushed request (RFC 9126) is resolved into its parameters here,
	// once; a kept request was resolved before it was kept.
	pushed := false
	if pending == nil {
		var err error
		if r, pushed, err = p.resolvePushed(r); err != nil {
			p.authorizeError(w, r, nil, err)
			return
		}
	}

	areq, err := p.oauth.NewAuthorizeRequest(ctx, r)
	if unsupported := requestObjectError(r.Form); unsupported != nil {
		// fosite refused the request object before it checked the
		// redirect_uri. Check the rest without it: with a good
		// redirect_uri the error goes to the client (OpenID Connect Core
		// §6, request_not_supported).
		r.Form.Del("request")
		r.Form.Del("request_uri")
		areq, err = p.oauth.NewAuthorizeRequest(ctx, r)
		if err == nil || areq.IsRedirectURIValid() {
			err = unsupported
		}
	}
	if err != nil {
		p.authorizeError(w, r, areq, err)
		return
	}
	client, ok := areq.GetClient().(*storage.Client)
	if !ok {
		p.serverError(w, r, "authorize", errors.New("unexpected client type"))
		return
	}
	// Only a request that came through the pushed authorization request
	// endpoint (or was kept after one did) will do for such a client.
	if client.RequirePAR && !pushed && pending == nil {
		p.authorizeError(w, r, areq, fosite.ErrInvalidRequest.WithHint(
			"This client must use pushed authorization requests: push the request to /oauth2/par and send its request_uri (RFC 9126 §6)."))
		return
	}
	if err := checkCodeRequest(client, areq); err != nil {
		p.authorizeError(w, r, areq, err)
		return
	}
	form := areq.GetRequestForm()
	prompt := fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " "))
	if has(prompt, "none") && len(prompt) > 1 {
		// OpenID Connect Core §3.1.2.1.
		p.authorizeError(w, r, areq, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values."))
		return
	}
	claimsReq, err := parseClaimsRequest(form.Get("claims"))
	if err != nil {
		p.authorizeError(w, r, areq, fosite.ErrInvalidRequest.WithHint(
			"The claims parameter is not a valid JSON claims request (OpenID Connect Core §5.5).").WithWrap(err).WithDebug(err.Error()))
		return
	}
	released := claimsReq.allowed(client.Scopes)
	// The user the client expects, if it says (OpenID Connect Core
	// §3.1.2.1 id_token_hint, §5.5.1 a sub with a value).
	expected := claimsReq.sub
	if hint := form.Get("id_token_hint"); hint != "" {
		_, sub, err := p.hintClaims(r, hint)
		if err == nil && sub == "" {
			err = errors.New("id_token_hint: no subject")
		}
		if err != nil {
			p.authorizeError(w, r, areq, fosite.ErrInvalidRequest.WithHint(
				"The id_token_hint is not an ID token this provider issued.").WithWrap(err).WithDebug(err.Error()))
			return
		}
		if expected != "" && expected != sub {
			p.authorizeError(w, r, areq, fosite.ErrInvalidRequest.WithHint(
				"The id_token_hint and the claims parameter name different users."))
			return
		}
		expected = sub
	}
	requestedAt := areq.GetRequestedAt()
	if pending != nil {
		requestedAt = pending.RequestedAt
		if ar, ok := areq.(*fosite.AuthorizeRequest); ok {
			ar.RequestedAt = requestedAt
		}
	}

	// Step 1: both factors, recently enough and in the way asked for, by
	// the user the client expects.
	login, user, err := p.currentUser(r)
	if err != nil {
		p.serverError(w, r, "load login session", err)
		return
	}
	if user == nil || p.mustReauthenticate(login, form, prompt, requestedAt) {
		if has(prompt, "none") {
			p.authorizeError(w, r, areq, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		p.redirectToStep(w, r, pending, client.ID, form, requestedAt, "/login")
		return
	}
	if expected != "" && expected != user.ID {
		// Someone else is signed in. A login for this very request that
		// still ended as someone else is refused rather than repeated.
		if has(prompt, "none") || !login.AuthTime.Before(requestedAt) {
			p.authorizeError(w, r, areq, fosite.ErrLoginRequired.WithHint(
				"The signed-in user is not the one the id_token_hint names."))
			return
		}
		p.redirectToStep(w, r, pending, client.ID, form, requestedAt, "/login")
		return
	}

	// Step 2: consent, unless remembered or the client skips it. Claims
	// the claims parameter asks for count as their scopes.
	granted := grantableScopes(areq.GetRequestedScopes())
	if !client.SkipConsent {
		switch decided, err := p.consented(r, pending, user.ID, client.ID, union(granted, released.scopes()), prompt); {
		case err != nil:
			p.serverError(w, r, "check consent", err)
			return
		case decided == storage.ConsentDenied:
			p.authorizeError(w, r, areq, fosite.ErrAccessDenied.WithHint("The user denied the request."))
			return
		case decided != storage.ConsentGranted:
			if has(prompt, "none") {
				p.authorizeError(w, r, areq, fosite.ErrConsentRequired.WithHint("The user has not consented to this client."))
				return
			}
			p.redirectToStep(w, r, pending, client.ID, form, requestedAt, "/consent")
			return
		}
	}

	// The kept request is used once: a replayed ?auth_request= finds nothing.
	if pending != nil {
		if err := p.store.DeleteAuthRequest(ctx, pending.ID); errors.Is(err, storage.ErrNotFound) {
			l := templates.PickLang(r, form.Get("ui_locales"))
			p.pages.Error(w, l, http.StatusBadRequest, l.T("request.completed"))
			return
		} else if err != nil {
			p.serverError(w, r, "consume auth request", err)
			return
		}
	}
	for _, s := range granted {
		areq.GrantScope(s)
	}
	session := newSession(*user, login, requestedAt, areq.GetGrantedScopes(), released)
	resp, err := p.oauth.NewAuthorizeResponse(ctx, areq, session)
	if err != nil {
		p.authorizeError(w, r, areq, err)
		return
	}
	p.rememberClient(ctx, login, client) // for back-channel logout
	for k, vs := range resp.GetHeader() {
		w.Header()[k] = vs
	}
	p.writeAuthorizeResponse(w, r, areq, resp.GetParameters())
}

// checkCodeRequest refuses, up front, an authorization request that could
// not end in a code: twostep issues codes only, and fosite would accept
// "Code" in one handler and not in the next, answering server_error (RFC
// 6749 §3.1.1: the value is case-sensitive); and fosite checks PKCE only
// when it issues the code, after the user went through the login for
// nothing.
func checkCodeRequest(client *storage.Client, areq fosite.AuthorizeRequester) error {
	if !areq.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHint("The only response_type is code (RFC 6749 §4.1.1).")
	}
	form := areq.GetRequestForm()
	if challenge := form.Get("code_challenge"); challenge == "" && client.RequirePKCE {
		return fosite.ErrInvalidRequest.WithHint("This client must use PKCE: send code_challenge with code_challenge_method=S256.")
	} else if (challenge != "" || form.Has("code_challenge_method")) && form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("Only the S256 code_challenge_method is supported (RFC 7636 §4.2); plain is refused.")
	}
	return nil
}

// currentUser returns the browser's completed login and its user; a nil
// user means nobody (usable) is signed in.
func (p *Provider) currentUser(r *http.Request) (storage.LoginSession, *storage.User, error) {
	login, err := p.sessions.Current(r)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.LoginSession{}, nil, nil
	}
	if err != nil {
		return storage.LoginSession{}, nil, err
	}
	u, err := p.store.GetUser(r.Context(), login.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.LoginSession{}, nil, nil
	}
	if err != nil {
		return storage.LoginSession{}, nil, err
	}
	if u.Disabled || !u.HasTOTP() {
		return storage.LoginSession{}, nil, nil
	}
	return login, &u, nil
}

// mustReauthenticate reports whether prompt=login, max_age or acr_values
// demands a login newer than the one the browser has. acr_values naming
// storage.ACRTOTP asks for a TOTP code: a login that skipped it (remembered
// device) or replaced it (recovery code) does not do. A login completed
// after the request arrived always satisfies all three (OpenID Connect
// Core §3.1.2.1): the login step itself honours acr_values, and should it
// end another way (a user who lost their phone), the ID token's acr says
// so and the client decides, rather than the browser looping here.
func (p *Provider) mustReauthenticate(login storage.LoginSession, form url.Values, prompt []string, requestedAt time.Time) bool {
	if !login.AuthTime.Before(requestedAt) {
		return false
	}
	if has(prompt, "login") {
		return true
	}
	if has(strings.Fields(form.Get("acr_values")), storage.ACRTOTP) && sessionACR(login) != storage.ACRTOTP {
		return true
	}
	if v := form.Get("max_age"); v != "" {
		maxAge, err := strconv.ParseInt(v, 10, 64)
		if err != nil || maxAge < 0 {
			return true
		}
		return p.now().Sub(login.AuthTime) > time.Duration(maxAge)*time.Second
	}
	return false
}

// consented returns ConsentGranted, ConsentDenied or "" (not yet asked).
// A decision on the kept request counts only if this user made it;
// otherwise a remembered grant covering the scopes counts, unless
// prompt=consent asks again.
func (p *Provider) consented(r *http.Request, pending *storage.AuthRequest, userID, clientID string, scopes []string, prompt []string) (string, error) {
	if pending != nil && pending.Consent != "" && pending.ConsentUserID == userID {
		return pending.Consent, nil
	}
	if has(prompt, "consent") {
		return "", nil
	}
	g, err := p.store.GetGrant(r.Context(), userID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if g.Covers(scopes) {
		return storage.ConsentGranted, nil
	}
	return "", nil
}

// redirectToStep keeps the authorization request (once) and sends the
// browser to the login or consent step.
func (p *Provider) redirectToStep(w http.ResponseWriter, r *http.Request, pending *storage.AuthRequest, clientID string, form url.Values, requestedAt time.Time, step string) {
	if pending == nil {
		id, err := randomID()
		if err != nil {
			p.serverError(w, r, "new auth request", err)
			return
		}
		ar := storage.AuthRequest{
			ID: id, ClientID: clientID, Form: form, RequestedAt: requestedAt,
			ExpiresAt: p.now().Add(authRequestLifetime),
		}
		if err := p.store.CreateAuthRequest(r.Context(), ar); err != nil {
			p.serverError(w, r, "keep auth request", err)
			return
		}
		pending = &ar
	}
	http.Redirect(w, r, step+"?auth_request="+url.QueryEscape(pending.ID), http.StatusSeeOther)
}

// authorizeError answers an authorization error. While the client and
// redirect_uri are not known to be valid it shows a page and never
// redirects (RFC 6749 §4.1.2.1); otherwise fosite redirects the error to
// the client.
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, areq fosite.AuthorizeRequester, err error) {
	err = fositeError(err)
	rfc := fosite.ErrorToRFC6749Error(err)
	// Without a valid redirect URI there is nobody to tell but the person;
	// without a response_type no response mode applies (RFC 6749 §3.1.1),
	// so a form_post or other mode the request names is not to be trusted
	// either.
	if areq == nil || !areq.IsRedirectURIValid() || areq.GetRequestForm().Get("response_type") == "" {
		p.log.InfoContext(r.Context(), "authorize request refused", "err", rfc.ErrorField, "detail", rfc.GetDescription(),
			"debug", rfc.Debug(), "request_id", w.Header().Get("X-Request-Id"))
		// A page for a person: the request was bad (400) unless twostep
		// itself failed; fosite's 401 for an unknown client would ask for
		// credentials a browser cannot give.
		status := http.StatusBadRequest
		if rfc.CodeField >= 500 {
			status = rfc.CodeField
		}
		// The request's form, parsed by fosite, may say which language.
		l := templates.PickLang(r, r.Form.Get("ui_locales"))
		p.pages.Error(w, l, status, l.T("request.invalid", "detail", rfc.GetDescription()))
		return
	}
	if rfc.CodeField >= 500 {
		p.log.ErrorContext(r.Context(), "authorize", "err", rfc.ErrorField, "debug", rfc.Debug(), "request_id", w.Header().Get("X-Request-Id"))
	}
	p.writeAuthorizeResponse(w, r, areq, authorizeErrorParams(areq, err))
}

// requestObjectError is the error for a request that passes its
// parameters in a request object (OpenID Connect Core §6), which twostep
// does not take; nil if it does not. A request_uri naming a pushed
// authorization request (RFC 9126 §4) is not a request object.
func requestObjectError(form url.Values) error {
	if form.Get("request") != "" {
		return fosite.ErrRequestNotSupported.WithHint(
			"Request objects are not supported; send the parameters in the request itself.")
	}
	if uri := form.Get("request_uri"); uri != "" && !strings.HasPrefix(uri, parURIPrefix) {
		return fosite.ErrRequestURINotSupported.WithHint(
			"request_uri is only for pushed authorization requests; send the parameters in the request itself.")
	}
	return nil
}

// parURIPrefix starts the request_uri of a pushed authorization request
// (RFC 9126 §2.2): fosite's PushedAuthorizeRequestURIPrefix default.
const parURIPrefix = "urn:ietf:params:oauth:request_uri:"

// union returns a followed by the elements of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// grantableScopes keeps the requested scopes twostep knows; fosite already
// refused scopes the client may not ask for.
func grantableScopes(requested fosite.Arguments) []string {
	var out []string
	for _, s := range requested {
		if has(SupportedScopes, s) {
			out = append(out, s)
		}
	}
	return out
}
