package login

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// passwordPage is the data of login.html.
type passwordPage struct {
	CSRFToken string
	// Client names the application the user signs in to; "" when the
	// login serves no authorization request.
	Client   string
	Username string
	// Error concerns the whole form (throttling); the others sit next to
	// their field.
	Error         string
	UsernameError string
	PasswordError string
	// Forgot is the link to the forgotten-password page, which links back
	// to this login; Register says whether to link to the registration
	// page.
	Forgot   string
	Register bool
}

// showPassword serves GET /login: it starts (or resumes) a login session
// for the pending authorization request named by ?auth_request and shows
// the username and password form.
func (h *Handler) showPassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	arID := r.URL.Query().Get("auth_request")
	var ar storage.AuthRequest
	if arID != "" {
		var err error
		ar, err = h.store.GetAuthRequest(ctx, arID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			l := templates.PickLang(r, "")
			h.pages.Error(w, l, http.StatusBadRequest, l.T("login.bad_auth_request"))
			return
		case err != nil:
			h.serverError(w, r, "get auth request", err, "")
			return
		}
	}
	client, err := h.clientName(ctx, ar)
	if err != nil {
		h.serverError(w, r, "get client", err, "")
		return
	}

	ls, err := h.session(r)
	switch {
	case err == nil && ls.State == storage.StatePassword:
		if ls.AuthRequestID != arID {
			if err := h.store.SetLoginSessionAuthRequest(ctx, ls.ID, arID); err != nil {
				h.serverError(w, r, "set login session request", err, "")
				return
			}
			ls.AuthRequestID = arID
		}
	case err == nil || errors.Is(err, storage.ErrNotFound):
		if err == nil {
			// The new cookie replaces this one, so its row is unreachable.
			if err := h.store.DeleteLoginSession(ctx, ls.ID); err != nil {
				h.serverError(w, r, "delete login session", err, ls.UserID)
				return
			}
		}
		if ls, err = h.startSession(w, r, arID); err != nil {
			h.serverError(w, r, "create login session", err, "")
			return
		}
	default:
		h.serverError(w, r, "load login session", err, "")
		return
	}
	// OpenID Connect Core 1.0 §3.1.2.1: login_hint may prefill the
	// identifier.
	h.pages.Render(w, pageLang(r, ar), http.StatusOK, "login.html", passwordPage{
		CSRFToken: ls.CSRFToken, Client: client, Username: ar.Form.Get("login_hint"),
		Forgot: forgotURL(ls.AuthRequestID), Register: h.signup == RegistrationOpen,
	})
}

// startSession creates a login session in the password state, noting the
// address and browser it starts from for the account page's list of
// sessions, and sets its cookie.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, arID string) (storage.LoginSession, error) {
	value, err := h.newToken()
	if err != nil {
		return storage.LoginSession{}, err
	}
	csrf, err := h.newToken()
	if err != nil {
		return storage.LoginSession{}, err
	}
	now := h.now()
	ls := storage.LoginSession{
		ID:            sessionID(value),
		State:         storage.StatePassword,
		AuthRequestID: arID,
		CSRFToken:     csrf,
		IP:            clientIP(r),
		UserAgent:     userAgent(r),
		CreatedAt:     now,
		ExpiresAt:     now.Add(stepLifetime),
	}
	if err := h.store.CreateLoginSession(r.Context(), ls); err != nil {
		return storage.LoginSession{}, err
	}
	h.setCookie(w, value, ls.ExpiresAt)
	return ls, nil
}

// submitPassword serves POST /login: the first factor.
func (h *Handler) submitPassword(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ls, ar, ok := h.formSession(w, r, storage.StatePassword)
	if !ok {
		return
	}
	ctx := r.Context()
	l := pageLang(r, ar)
	client, err := h.clientName(ctx, ar)
	if err != nil {
		h.serverError(w, r, "get client", err, "")
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	page := passwordPage{
		CSRFToken: ls.CSRFToken, Client: client, Username: username,
		Forgot: forgotURL(ls.AuthRequestID), Register: h.signup == RegistrationOpen,
	}
	if username == "" {
		page.UsernameError = l.T("login.enter_username")
	}
	if password == "" {
		page.PasswordError = l.T("login.enter_password")
	}
	if page.UsernameError != "" || page.PasswordError != "" {
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "login.html", page)
		return
	}
	ev := storage.AuditEvent{Event: "login.password", ClientID: ar.ClientID}

	// Each attempt is counted before the password is checked, so parallel
	// guesses cannot outrun the back-off; a right password gives it back.
	ok, until, err := h.reserve(ctx, ipKey(clientIP(r)), h.ip)
	if err == nil && ok {
		if ok, until, err = h.reserve(ctx, usernameKey(username), h.account); err == nil && !ok {
			err = h.store.RefundAttempt(ctx, ipKey(clientIP(r)))
		}
	}
	if err != nil {
		h.serverError(w, r, "throttle password", err, "")
		return
	}
	if !ok {
		ev.Outcome = "throttled"
		h.record(r, ev)
		page.Error = tooManyAttempts(l, h.retryAfter(w, until))
		h.pages.Render(w, l, http.StatusTooManyRequests, "login.html", page)
		return
	}

	u, ok, err := h.checkPassword(ctx, username, password)
	if err != nil {
		h.serverError(w, r, "check password", err, u.ID)
		return
	}
	// The audit log, unlike the page, names the account a wrong password
	// was tried on.
	ev.UserID = u.ID
	if !ok {
		ev.Outcome = "failure"
		h.record(r, ev)
		// Wrong usernames, wrong passwords and disabled accounts share one
		// message, so the page does not tell them apart.
		page.PasswordError = l.T("login.bad_credentials")
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "login.html", page)
		return
	}
	h.resetThrottle(w, r, usernameKey(username), u.ID)
	if err := h.store.RefundAttempt(ctx, ipKey(clientIP(r))); err != nil {
		h.serverError(w, r, "refund attempt", err, u.ID)
		return
	}
	if u.FailedCodes >= MaxAccountCodes {
		// Only someone who knows the password learns of the lock, and they
		// could not get past it: 100 wrong codes already went this way.
		ev.Outcome = "locked"
		h.record(r, ev)
		page.Error = l.T("login.account_locked")
		h.pages.Render(w, l, http.StatusForbidden, "login.html", page)
		return
	}

	now := h.now()
	if dev, ok := h.rememberedDevice(w, r, u, ar, now); ok {
		// RFC 8176: only the password was checked in this login.
		if !h.complete(w, r, ls, storage.StatePassword, u, now, []string{"pwd"}, storage.ACRRememberedDevice) {
			return
		}
		ev.Outcome = "success"
		h.record(r, ev)
		h.record(r, storage.AuditEvent{Event: "login.device", Outcome: "success", UserID: u.ID, ClientID: ar.ClientID, Detail: dev.ID[:12]})
		h.proceed(w, r, ls)
		return
	}
	value, csrf, err := h.newTokens()
	if err != nil {
		h.serverError(w, r, "advance login session", err, u.ID)
		return
	}
	next := storage.LoginSession{
		ID:            sessionID(value),
		State:         storage.StateTOTP,
		UserID:        u.ID,
		AuthRequestID: ls.AuthRequestID,
		CSRFToken:     csrf,
		PasswordAt:    now,
		ExpiresAt:     now.Add(stepLifetime),
	}
	if !h.advance(w, r, ls, storage.StatePassword, next) {
		return
	}
	ev.Outcome = "success"
	h.record(r, ev)
	h.setCookie(w, value, next.ExpiresAt)
	redirect(w, r, "/login/totp")
}

// reserve counts one attempt against key under policy b.
func (h *Handler) reserve(ctx context.Context, key string, b Backoff) (bool, time.Time, error) {
	return h.store.ReserveAttempt(ctx, key, b.delay, ForgetFailures)
}

// retryAfter sets the Retry-After header for a key blocked until `until`
// and returns the wait it gives: whole seconds, rounded up, so that a
// client that waits as told does not find the key still blocked.
func (h *Handler) retryAfter(w http.ResponseWriter, until time.Time) time.Duration {
	secs := max(1, int(math.Ceil(until.Sub(h.now()).Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return time.Duration(secs) * time.Second
}

// tooManyAttempts tells the user, in language l, how long to wait.
func tooManyAttempts(l templates.Lang, wait time.Duration) string {
	if wait <= time.Minute {
		return l.T("login.too_many", "wait", l.N("time.seconds", int(wait.Round(time.Second).Seconds())))
	}
	return l.T("login.too_many", "wait", l.N("time.minutes", int((wait+time.Minute-1).Minutes())))
}

// checkPassword reports whether password is right for an enabled user
// called username. Unknown and disabled users cost the same argon2id work
// as a wrong password, so timing does not tell them apart either.
func (h *Handler) checkPassword(ctx context.Context, username, password string) (storage.User, bool, error) {
	u, err := h.store.GetUserByUsername(ctx, username)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, err
	}
	if err != nil || u.Disabled {
		_, _ = h.hasher.Verify(h.dummyHash, password)
		return storage.User{}, false, nil
	}
	ok, err := h.hasher.Verify(u.PasswordHash, password)
	if err != nil {
		return u, false, fmt.Errorf("verify password: %w", err)
	}
	return u, ok, nil
}
