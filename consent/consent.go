package consent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// Sessions tells the consent step who completed both factors in this
// browser. It is satisfied by the login package.
type Sessions interface {
	// Current returns the browser's login session if both factors were
	// checked, or an error wrapping storage.ErrNotFound.
	Current(r *http.Request) (storage.LoginSession, error)
}

// Handler serves /consent.
type Handler struct {
	store    *storage.Store
	pages    *templates.Pages
	log      *slog.Logger
	sessions Sessions
	audit    func(*http.Request, storage.AuditEvent)
}

// New returns the consent handler. audit receives each decision as
// "consent.granted" or "consent.denied", with the scopes asked for as its
// detail; it gets the request too, to add the caller's address and user
// agent. It may be nil.
func New(store *storage.Store, pages *templates.Pages, log *slog.Logger, sessions Sessions, audit func(*http.Request, storage.AuditEvent)) *Handler {
	return &Handler{store: store, pages: pages, log: log, sessions: sessions, audit: audit}
}

// Routes registers the consent page.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /consent", h.show)
	mux.HandleFunc("POST /consent", h.decide)
}

// describeScope says in plain words, in language l, what scope lets an
// application do; false for a scope it does not know.
func describeScope(l templates.Lang, scope string) (string, bool) {
	switch scope {
	case "openid":
		return l.T("consent.scope.openid"), true
	case "profile":
		return l.T("consent.scope.profile"), true
	case "email":
		return l.T("consent.scope.email"), true
	case "groups":
		return l.T("consent.scope.groups"), true
	case "offline_access":
		return l.T("consent.scope.offline_access"), true
	}
	return "", false
}

// pageLang is the language of the pages about ar: its ui_locales, else
// the browser's choice.
func pageLang(r *http.Request, ar storage.AuthRequest) templates.Lang {
	return templates.PickLang(r, ar.Form.Get("ui_locales"))
}

// page is the data of consent.html.
type page struct {
	ClientName    string
	ClientID      string
	Scopes        []string
	AuthRequestID string
	CSRFToken     string
}

// load finds the signed-in user and the pending request they are asked
// about; it writes the error page itself and returns ok=false on failure.
func (h *Handler) load(w http.ResponseWriter, r *http.Request, id string) (storage.LoginSession, storage.AuthRequest, *storage.Client, bool) {
	ctx := r.Context()
	login, err := h.sessions.Current(r)
	if errors.Is(err, storage.ErrNotFound) {
		l := templates.PickLang(r, "")
		h.pages.Error(w, l, http.StatusForbidden, l.T("consent.sign_in_first"))
		return login, storage.AuthRequest{}, nil, false
	}
	if err != nil {
		h.serverError(w, r, "load login session", err)
		return login, storage.AuthRequest{}, nil, false
	}
	ar, err := h.store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		l := templates.PickLang(r, "")
		h.pages.Error(w, l, http.StatusBadRequest, l.T("request.expired"))
		return login, ar, nil, false
	}
	if err != nil {
		h.serverError(w, r, "load auth request", err)
		return login, ar, nil, false
	}
	client, err := h.store.Client(ctx, ar.ClientID)
	if err != nil {
		h.serverError(w, r, "load client", err)
		return login, ar, nil, false
	}
	return login, ar, client, true
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	login, ar, client, ok := h.load(w, r, r.URL.Query().Get("auth_request"))
	if !ok {
		return
	}
	l := pageLang(r, ar)
	var described []string
	for _, s := range requestedScopes(ar.Form, client) {
		if text, ok := describeScope(l, s); ok {
			described = append(described, text)
		}
	}
	name := client.Name
	if name == "" {
		name = client.ID
	}
	h.pages.Render(w, l, http.StatusOK, "consent.html", page{
		ClientName: name, ClientID: client.ID, Scopes: described,
		AuthRequestID: ar.ID, CSRFToken: login.CSRFToken,
	})
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		l := templates.PickLang(r, "")
		h.pages.Error(w, l, http.StatusBadRequest, l.T("form.unreadable"))
		return
	}
	login, ar, client, ok := h.load(w, r, r.PostForm.Get("auth_request"))
	if !ok {
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(login.CSRFToken)) != 1 {
		l := pageLang(r, ar)
		h.pages.Error(w, l, http.StatusForbidden, l.T("consent.expired_form"))
		return
	}
	decision, event := storage.ConsentDenied, "consent.denied"
	if r.PostForm.Get("decision") == "allow" {
		decision, event = storage.ConsentGranted, "consent.granted"
	}
	ctx := r.Context()
	// The decision is recorded once; a second post (the back button after a
	// deny) changes nothing and the authorization endpoint acts on the first.
	err := h.store.DecideAuthRequest(ctx, ar.ID, login.UserID, decision)
	switch {
	case errors.Is(err, storage.ErrConflict):
		http.Redirect(w, r, "/oauth2/auth?auth_request="+url.QueryEscape(ar.ID), http.StatusSeeOther)
		return
	case err != nil:
		h.serverError(w, r, "record consent", err)
		return
	}
	if decision == storage.ConsentGranted {
		if err := h.store.SaveGrant(ctx, login.UserID, client.ID, requestedScopes(ar.Form, client)); err != nil {
			h.serverError(w, r, "save grant", err)
			return
		}
	}
	h.log.InfoContext(ctx, "consent", "user_id", login.UserID, "client_id", client.ID, "decision", decision,
		"request_id", w.Header().Get("X-Request-Id"))
	if h.audit != nil {
		h.audit(r, storage.AuditEvent{Event: event, Outcome: "success", UserID: login.UserID, ClientID: client.ID,
			Detail: strings.Join(requestedScopes(ar.Form, client), " ")})
	}
	http.Redirect(w, r, "/oauth2/auth?auth_request="+url.QueryEscape(ar.ID), http.StatusSeeOther)
}

// requestedScopes are the scopes a request asks the user to allow: its
// scope parameter, and the scopes of the user claims its claims parameter
// asks for (OpenID Connect Core §5.5), where the client is registered for
// them: the authorization endpoint releases such claims on this consent.
func requestedScopes(form url.Values, client *storage.Client) []string {
	scopes := strings.Fields(form.Get("scope"))
	var claims struct {
		UserInfo map[string]json.RawMessage `json:"userinfo"`
		IDToken  map[string]json.RawMessage `json:"id_token"`
	}
	// The authorization endpoint kept only requests whose claims parse.
	if json.Unmarshal([]byte(form.Get("claims")), &claims) != nil {
		return scopes
	}
	for _, name := range storage.UserClaims() {
		_, inUserInfo := claims.UserInfo[name]
		_, inIDToken := claims.IDToken[name]
		s := storage.ClaimScope(name)
		if (inUserInfo || inIDToken) && slices.Contains(client.Scopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, op string, err error) {
	h.log.ErrorContext(r.Context(), op, "err", err, "request_id", w.Header().Get("X-Request-Id"))
	h.pages.Failure(w, r, errors.Is(err, storage.ErrUnavailable))
}
