package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twostep/twostep/mail"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// CookieName is the name of the login-session cookie.
const CookieName = "twostep_session"

const (
	// stepLifetime bounds how long a browser may take over one factor.
	stepLifetime           = 10 * time.Minute
	defaultSessionLifetime = 12 * time.Hour
	defaultIssuer          = "twostep"

	// maxSessionCodes wrong codes void a login session: the user starts
	// again from the password.
	maxSessionCodes = 5

	// maxFormBytes bounds a posted form; the login forms are tiny.
	maxFormBytes = 16 << 10
	// tokenBytes is the size of cookie values and CSRF tokens: 256 bits.
	tokenBytes = 32
)

// MaxAccountCodes consecutive wrong codes lock the account until an
// administrator unlocks it (NIST SP 800-63B §5.2.2: at most 100). A user
// whose FailedCodes reached it is locked.
const MaxAccountCodes = 100

// Config configures a Handler.
type Config struct {
	// Store keeps users, login sessions, authorization requests and
	// throttling counters. Required.
	Store *storage.Store
	// Pages renders login.html, totp.html, the account pages and error
	// pages.
	// Required.
	Pages *templates.Pages
	// Logger receives failures and security events; discarded when nil.
	Logger *slog.Logger
	// Hasher verifies passwords; NewHasher(DefaultParams()) when nil.
	Hasher *Hasher
	// TOTPIssuer names this service in authenticator apps; "twostep" when
	// empty.
	TOTPIssuer string
	// SecureCookie marks the cookie Secure; set it when the issuer is https.
	SecureCookie bool
	// SessionLifetime is how long a completed login lasts; 12 h when zero.
	SessionLifetime time.Duration
	// Now returns the current time; time.Now when nil. It must agree with
	// the Store's clock.
	Now func() time.Time
	// Audit receives every security event (each password and code
	// attempt, enrolment, lockout, remembered device); nil is allowed.
	Audit func(*http.Request, storage.AuditEvent)
	// RememberDevice is how long a browser may skip the TOTP step after
	// the user ticks "remember this device"; zero (the default) turns the
	// feature off.
	RememberDevice time.Duration
	// AccountThrottle and IPThrottle slow down wrong passwords per
	// username and per client address (r.RemoteAddr, an IPv6 one per
	// /64); zero values mean DefaultAccountThrottle and DefaultIPThrottle.
	AccountThrottle Backoff
	IPThrottle      Backoff
	// Rand is the source of cookie values, CSRF tokens and TOTP secrets;
	// crypto/rand.Reader when nil. It must be safe for concurrent use.
	Rand io.Reader
	// BaseURL is where browsers reach twostep (the issuer), for the links
	// in mail; required when Mailer is set.
	BaseURL string
	// Mailer sends invitations, email verifications and password reset
	// links; nil turns those features off, and the pages say so.
	Mailer Mailer
	// Registration says who may create an account: RegistrationClosed
	// (the default: administrators add users), RegistrationInvite (also
	// invitees, through their link) or RegistrationOpen (also anyone
	// who verifies an email address; needs a Mailer).
	Registration Registration
	// Policy is the password policy for new passwords; the zero value is
	// DefaultPasswordPolicy.
	Policy PasswordPolicy
}

// Mailer sends one message; *mail.Mailer is one.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// Registration says who may create an account; see Config.Registration.
type Registration string

// The registration modes of `twostep serve --registration`.
const (
	RegistrationClosed Registration = "closed"
	RegistrationInvite Registration = "invite"
	RegistrationOpen   Registration = "open"
)

// ParseRegistration returns the registration mode named s.
func ParseRegistration(s string) (Registration, error) {
	switch r := Registration(s); r {
	case RegistrationClosed, RegistrationInvite, RegistrationOpen:
		return r, nil
	}
	return "", fmt.Errorf("registration mode %q: want closed, invite or open", s)
}

// Handler serves the login pages and answers who is logged in.
type Handler struct {
	audit    func(*http.Request, storage.AuditEvent)
	remember time.Duration
	account  Backoff
	ip       Backoff
	baseURL  string
	mailer   Mailer
	signup   Registration
	policy   PasswordPolicy
	store    *storage.Store
	pages    *templates.Pages
	log      *slog.Logger
	hasher   *Hasher
	issuer   string
	secure   bool
	lifetime time.Duration
	now      func() time.Time
	rand     io.Reader
	// dummyHash is verified for unknown and disabled users, so that they
	// cost the same work as a wrong password.
	dummyHash string
	// mailing counts the mail being sent off the request path (see
	// Wait).
	mailing sync.WaitGroup
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("login: Config.Store is required")
	}
	if cfg.Pages == nil {
		return nil, errors.New("login: Config.Pages is required")
	}
	h := &Handler{
		store: cfg.Store, pages: cfg.Pages, log: cfg.Logger, hasher: cfg.Hasher,
		issuer: cfg.TOTPIssuer, secure: cfg.SecureCookie, lifetime: cfg.SessionLifetime,
		now: cfg.Now, rand: cfg.Rand, audit: cfg.Audit, remember: cfg.RememberDevice,
		account: cfg.AccountThrottle, ip: cfg.IPThrottle,
		baseURL: strings.TrimSuffix(cfg.BaseURL, "/"), mailer: cfg.Mailer, signup: cfg.Registration, policy: cfg.Policy,
	}
	if h.signup == "" {
		h.signup = RegistrationClosed
	}
	if _, err := ParseRegistration(string(h.signup)); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if h.mailer != nil && h.baseURL == "" {
		return nil, errors.New("login: Config.BaseURL is required with a Mailer")
	}
	if h.signup == RegistrationOpen && h.mailer == nil {
		return nil, errors.New("login: open registration needs mail, to verify addresses")
	}
	if h.policy == (PasswordPolicy{}) {
		h.policy = DefaultPasswordPolicy()
	}
	if h.account == (Backoff{}) {
		h.account = DefaultAccountThrottle()
	}
	if h.ip == (Backoff{}) {
		h.ip = DefaultIPThrottle()
	}
	if err := h.account.Validate(); err != nil {
		return nil, fmt.Errorf("login: account %w", err)
	}
	if err := h.ip.Validate(); err != nil {
		return nil, fmt.Errorf("login: address %w", err)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.hasher == nil {
		h.hasher = NewHasher(DefaultParams())
	}
	if h.issuer == "" {
		h.issuer = defaultIssuer
	}
	if h.lifetime <= 0 {
		h.lifetime = defaultSessionLifetime
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	dummy, err := h.newToken()
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if h.dummyHash, err = h.hasher.Hash(dummy); err != nil {
		return nil, fmt.Errorf("login: make dummy hash: %w", err)
	}
	return h, nil
}

// Routes registers the login pages on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", h.showPassword)
	mux.HandleFunc("POST /login", h.submitPassword)
	mux.HandleFunc("GET /login/totp", h.showTOTP)
	mux.HandleFunc("POST /login/totp", h.submitTOTP)
	mux.HandleFunc("GET /login/recovery", h.showRecovery)
	mux.HandleFunc("POST /login/recovery", h.submitRecovery)
	h.accountRoutes(mux)
	mux.HandleFunc("GET /join", h.showJoin)
	mux.HandleFunc("POST /join", h.submitJoin)
	mux.HandleFunc("GET /register", h.showRegister)
	mux.HandleFunc("POST /register", h.submitRegister)
	mux.HandleFunc("GET /login/forgot", h.showForgot)
	mux.HandleFunc("POST /login/forgot", h.submitForgot)
	mux.HandleFunc("GET /login/reset", h.showReset)
	mux.HandleFunc("POST /login/reset", h.submitReset)
}

// Current returns the browser's login session if both factors have been
// checked and it has not expired. Otherwise the error wraps
// storage.ErrNotFound; any other error is a database failure.
func (h *Handler) Current(r *http.Request) (storage.LoginSession, error) {
	ls, err := h.session(r)
	if err != nil {
		return storage.LoginSession{}, err
	}
	if ls.State != storage.StateDone {
		return storage.LoginSession{}, fmt.Errorf("login session in state %q: %w", ls.State, storage.ErrNotFound)
	}
	return ls, nil
}

// Logout ends the browser's login session: it deletes the session row and
// clears the cookie. A browser without a session is not an error.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) error {
	h.clearCookie(w)
	c, err := r.Cookie(CookieName)
	if err != nil || !validToken(c.Value) {
		return nil
	}
	if err := h.store.DeleteLoginSession(r.Context(), sessionID(c.Value)); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	return nil
}

// session returns the unexpired login session the request's cookie names;
// no cookie, a malformed one or no such session wraps storage.ErrNotFound.
func (h *Handler) session(r *http.Request) (storage.LoginSession, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || !validToken(c.Value) {
		return storage.LoginSession{}, fmt.Errorf("login session cookie: %w", storage.ErrNotFound)
	}
	// The store returns only unexpired sessions (its clock is ours).
	return h.store.GetLoginSession(r.Context(), sessionID(c.Value))
}

// formSession returns the login session of a form post, and the
// authorization request it serves, after checking that it is in state want
// and that the form carries its CSRF token. Otherwise it writes an error
// page, changes nothing and returns false. The form must be parsed.
func (h *Handler) formSession(w http.ResponseWriter, r *http.Request, want string) (storage.LoginSession, storage.AuthRequest, bool) {
	ls, err := h.session(r)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		l := templates.PickLang(r, "")
		h.pages.Error(w, l, http.StatusBadRequest, l.T("login.no_session"))
		return storage.LoginSession{}, storage.AuthRequest{}, false
	case err != nil:
		h.serverError(w, r, "load login session", err, "")
		return storage.LoginSession{}, storage.AuthRequest{}, false
	}
	ar, err := h.authRequest(r.Context(), ls)
	if err != nil {
		h.serverError(w, r, "get auth request", err, ls.UserID)
		return storage.LoginSession{}, storage.AuthRequest{}, false
	}
	l := pageLang(r, ar)
	if ls.State != want {
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.wrong_step"))
		return storage.LoginSession{}, storage.AuthRequest{}, false
	}
	token := r.PostForm.Get("csrf_token")
	if ls.CSRFToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ls.CSRFToken)) != 1 {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: csrf token mismatch",
			slog.String("request_id", requestID(w)), slog.String("step", want))
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.bad_csrf"))
		return storage.LoginSession{}, storage.AuthRequest{}, false
	}
	return ls, ar, true
}

// parseForm reads a small posted form; on failure it writes a 400 page.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		l := templates.PickLang(r, "")
		h.pages.Error(w, l, http.StatusBadRequest, l.T("form.unreadable"))
		return false
	}
	return true
}

// newToken returns 256 random bits, base64url-encoded without padding.
func (h *Handler) newToken() (string, error) { return randomBase64(h.rand, tokenBytes) }

// randomBase64 returns n bytes from rand, base64url-encoded without
// padding.
func randomBase64(rand io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("read %d random bytes: %w", n, err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newTokens returns a fresh cookie value and CSRF token, for the session
// a factor advances to.
func (h *Handler) newTokens() (value, csrf string, err error) {
	if value, err = h.newToken(); err != nil {
		return "", "", err
	}
	if csrf, err = h.newToken(); err != nil {
		return "", "", err
	}
	return value, csrf, nil
}

// advance moves the session ls from state `from` to next. If another
// request (a double submit) advanced or ended it first, the browser goes
// back to the password page; a failure shows the error page. Either way
// it returns false and the caller stops.
func (h *Handler) advance(w http.ResponseWriter, r *http.Request, ls storage.LoginSession, from string, next storage.LoginSession) bool {
	err := h.store.AdvanceLoginSession(r.Context(), ls.ID, from, next)
	switch {
	case errors.Is(err, storage.ErrConflict):
		redirect(w, r, loginURL(ls.AuthRequestID))
		return false
	case err != nil:
		h.serverError(w, r, "advance login session", err, next.UserID)
		return false
	}
	return true
}

// validToken reports whether v looks like a value newToken made, so that
// arbitrary cookie junk never reaches the database.
func validToken(v string) bool {
	if len(v) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

// sessionID is the row ID of the session a cookie value names: its hex
// SHA-256, so the database never holds a usable cookie.
func sessionID(cookieValue string) string {
	sum := sha256.Sum256([]byte(cookieValue))
	return hex.EncodeToString(sum[:])
}

// setCookie hands the browser a new session cookie that expires with the
// session.
func (h *Handler) setCookie(w http.ResponseWriter, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		MaxAge:   max(1, int(expires.Sub(h.now()).Seconds())),
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// redirect answers 303 See Other with the pages' security headers.
func redirect(w http.ResponseWriter, r *http.Request, target string) {
	templates.SetHeaders(w.Header())
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// loginURL is the password page, still serving authRequestID.
func loginURL(authRequestID string) string {
	if authRequestID == "" {
		return "/login"
	}
	return "/login?auth_request=" + url.QueryEscape(authRequestID)
}

// serverError logs a failure with its detail and shows a generic page:
// 503 when the database is unreachable, 500 otherwise.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, op string, err error, userID string) {
	attrs := []slog.Attr{slog.String("request_id", requestID(w)), slog.String("error", err.Error())}
	if userID != "" {
		attrs = append(attrs, slog.String("user_id", userID))
	}
	unavailable := errors.Is(err, storage.ErrUnavailable)
	level := slog.LevelError
	if unavailable {
		level = slog.LevelWarn
	}
	h.log.LogAttrs(r.Context(), level, "login: "+op, attrs...)
	h.pages.Failure(w, r, unavailable)
}

// requestID is the ID a request-logging middleware put on the response.
func requestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// record sends a security event to the audit log, if one is configured.
func (h *Handler) record(r *http.Request, ev storage.AuditEvent) {
	if h.audit != nil {
		h.audit(r, ev)
	}
}

// authRequest returns the pending authorization request the login serves;
// the zero AuthRequest if there is none, or it expired.
func (h *Handler) authRequest(ctx context.Context, ls storage.LoginSession) (storage.AuthRequest, error) {
	if ls.AuthRequestID == "" {
		return storage.AuthRequest{}, nil
	}
	ar, err := h.store.GetAuthRequest(ctx, ls.AuthRequestID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.AuthRequest{}, nil
	}
	return ar, err
}

// pageLang is the language of the pages of a login that serves ar (the
// zero AuthRequest if none): its ui_locales, else the browser's choice.
func pageLang(r *http.Request, ar storage.AuthRequest) templates.Lang {
	return templates.PickLang(r, ar.Form.Get("ui_locales"))
}

// clientName is how the pages name the client of ar: its name, else its
// ID; "" when the login serves no request.
func (h *Handler) clientName(ctx context.Context, ar storage.AuthRequest) (string, error) {
	if ar.ClientID == "" {
		return "", nil
	}
	c, err := h.store.Client(ctx, ar.ClientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ar.ClientID, nil
	case err != nil:
		return "", fmt.Errorf("get client %q: %w", ar.ClientID, err)
	case c.Name == "":
		return c.ID, nil
	}
	return c.Name, nil
}

// complete moves ls from state `from` to done: u is signed in now, with the
// factors amr (RFC 8176) by the path acr, in a session with a new sid
// (OpenID Connect Back-Channel Logout 1.0 §2.1). It sets the new session
// cookie and returns true; otherwise it has written a page and returns
// false.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, ls storage.LoginSession, from string, u storage.User, now time.Time, amr []string, acr string) bool {
	value, csrf, err := h.newTokens()
	var sid string
	if err == nil {
		sid, err = h.newToken()
	}
	if err != nil {
		h.serverError(w, r, "advance login session", err, u.ID)
		return false
	}
	next := storage.LoginSession{
		ID:            sessionID(value),
		State:         storage.StateDone,
		UserID:        u.ID,
		AuthRequestID: ls.AuthRequestID,
		CSRFToken:     csrf,
		PasswordAt:    ls.PasswordAt,
		// OpenID Connect Core 1.0 §2: auth_time is when the user
		// authenticated, i.e. when the last factor succeeded.
		AuthTime:  now,
		AMR:       amr,
		ACR:       acr,
		SID:       sid,
		ExpiresAt: now.Add(h.lifetime),
	}
	if next.PasswordAt.IsZero() {
		next.PasswordAt = now
	}
	if !h.advance(w, r, ls, from, next) {
		return false
	}
	h.setCookie(w, value, next.ExpiresAt)
	return true
}

// continueURL is where a completed login goes: back to the authorization
// request it serves, or to the account page when it serves none.
func continueURL(ls storage.LoginSession) string {
	if ls.AuthRequestID == "" {
		return accountPath
	}
	return "/oauth2/auth?auth_request=" + url.QueryEscape(ls.AuthRequestID)
}

// proceed sends a completed login on: to the authorization request, or to
// the account page.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, ls storage.LoginSession) {
	redirect(w, r, continueURL(ls))
}
