package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// maxResetCodes wrong codes spend a password reset link (and 100 in a
// row, counted with the login's, lock the account): a mailbox alone gives
// an attacker a handful of guesses at a 6-digit code per link, and the
// per-address throttle bounds the links.
const maxResetCodes = 5

// forgotPage is the data of forgot.html.
type forgotPage struct {
	// NoMail says that this server cannot mail links: the page tells the
	// user to ask an administrator instead of showing the form.
	NoMail bool
	Email  string
	// AuthRequest is the pending authorization request of the login page
	// the user came from, kept for the way back to it.
	AuthRequest string
	Back        string
	Error       string
	EmailError  string
}

// resetPage is the data of reset.html.
type resetPage struct {
	// Token is the link's secret, in a hidden field; being a 256-bit
	// secret mailed to the user, it also stops cross-site posts.
	Token     string
	Username  string
	MinLength int
	// Error concerns the whole form; the others sit next to their field.
	Error         string
	PasswordError string
	ConfirmError  string
	CodeError     string
}

// maxAuthRequestID bounds the ?auth_request the forgot page carries back
// to the login page; the login page checks it.
const maxAuthRequestID = 128

// backToLogin is the login page the forgot page links back to, still
// serving the authorization request arID if it looks like one.
func backToLogin(arID string) (string, string) {
	if len(arID) > maxAuthRequestID {
		arID = ""
	}
	return arID, loginURL(arID)
}

// forgotURL is the forgotten-password page of a login serving the
// authorization request arID ("" for none).
func forgotURL(arID string) string {
	if arID == "" {
		return "/login/forgot"
	}
	return "/login/forgot?auth_request=" + url.QueryEscape(arID)
}

// showForgot serves GET /login/forgot: the form that mails a link to
// choose a new password, or, without mail, the advice to ask an
// administrator.
func (h *Handler) showForgot(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	ar, back := backToLogin(r.URL.Query().Get("auth_request"))
	h.pages.Render(w, l, http.StatusOK, "forgot.html", forgotPage{NoMail: h.mailer == nil, AuthRequest: ar, Back: back})
}

// submitForgot serves POST /login/forgot. Whether or not an account has
// the address, the answer is the same page, as fast: the lookup and the
// mail happen after it.
func (h *Handler) submitForgot(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	if !h.parseForm(w, r) {
		return
	}
	ar, back := backToLogin(r.PostForm.Get("auth_request"))
	page := forgotPage{NoMail: h.mailer == nil, AuthRequest: ar, Back: back, Email: r.PostForm.Get("email")}
	if h.mailer == nil {
		h.pages.Render(w, l, http.StatusServiceUnavailable, "forgot.html", page)
		return
	}
	email, ok := parseEmail(page.Email)
	if !ok {
		page.EmailError = l.T("register.bad_email")
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "forgot.html", page)
		return
	}
	page.Email = email
	if !h.throttleMail(w, r, l, email, "forgot.html", func(msg string) any {
		page.Error = msg
		return page
	}) {
		return
	}
	h.inBackground(w, r, "password reset mail", func(ctx context.Context, r *http.Request) error {
		return h.mailResetLinks(ctx, r, l, email)
	})
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("register.sent_title"), Message: l.T("forgot.sent", "email", email), Next: back, Action: l.T("forgot.back"),
	})
}

// mailResetLinks mails each enabled user whose address is email, in
// language l, a link to choose a new password. r is the request that
// asked, for the audit log.
func (h *Handler) mailResetLinks(ctx context.Context, r *http.Request, l templates.Lang, email string) error {
	users, err := h.store.UsersByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("find users by email: %w", err)
	}
	var errs []error
	for _, u := range users {
		if u.Disabled {
			continue
		}
		ev := storage.AuditEvent{Event: "password.reset_link", UserID: u.ID, Outcome: "sent"}
		now := h.now()
		t := storage.AccountToken{Purpose: storage.PurposeResetPassword, UserID: u.ID, Email: u.Email, Username: u.Username}
		link, err := newLink(ctx, h.store, h.newToken, h.baseURL, "/login/reset", t, resetLifetime, now)
		if err == nil {
			err = sendMail(ctx, h.mailer, h.pages, l, u.Email, "reset", inviteMail{
				Link: link, Expires: mailExpiry(now.Add(resetLifetime)), Username: u.Username,
			})
		}
		if err != nil {
			ev.Outcome = "failure"
			errs = append(errs, fmt.Errorf("user %s: %w", u.ID, err))
		}
		h.record(r, ev)
	}
	return errors.Join(errs...)
}

// showReset serves GET /login/reset?token=...: the form that sets a new
// password with a code. It changes nothing, so a mail scanner fetching
// the link spends nothing.
func (h *Handler) showReset(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	secret := r.URL.Query().Get("token")
	_, u, ok := h.resetLink(w, r, l, secret)
	if !ok {
		return
	}
	h.pages.Render(w, l, http.StatusOK, "reset.html", resetPage{Token: secret, Username: u.Username, MinLength: h.policy.minLength()})
}

// submitReset serves POST /login/reset: a new password, and a TOTP code
// or a recovery code, so that a mailbox alone never takes an account. A
// refused password or a malformed code spends nothing; a wrong code
// counts against the link (maxResetCodes) and the account
// (MaxAccountCodes). A right one sets the password, spending the link,
// and ends every session and remembered device of the user.
func (h *Handler) submitReset(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	l := templates.PickLang(r, "")
	secret := r.PostForm.Get("token")
	t, u, ok := h.resetLink(w, r, l, secret)
	if !ok {
		return
	}
	password := r.PostForm.Get("password")
	code := stripSpaces(r.PostForm.Get("code"))
	page := resetPage{
		Token: secret, Username: u.Username, MinLength: h.policy.minLength(),
		PasswordError: newPasswordProblem(l, h.policy, password, u.Username, u.Email),
	}
	if page.PasswordError == "" && r.PostForm.Get("confirm") != password {
		page.ConfirmError = l.T("join.password_mismatch")
	}
	_, recovery := normalRecoveryCode(code)
	if !wellFormedCode(code) && !recovery {
		page.CodeError = l.T("reset.code_format")
	}
	if page.PasswordError != "" || page.ConfirmError != "" || page.CodeError != "" {
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "reset.html", page)
		return
	}

	ctx := r.Context()
	ev := storage.AuditEvent{Event: "password.reset", UserID: u.ID, Detail: "totp"}
	if recovery {
		ev.Detail = "recovery code"
	}
	// The code is counted before it is checked, against the link and
	// the account, so parallel guesses cannot outrun either bound.
	ok, _, err := h.store.ReserveAttempt(ctx, resetKey(t.ID), resetCodeDelay, ForgetFailures)
	if err != nil {
		h.serverError(w, r, "count reset code", err, u.ID)
		return
	}
	if !ok {
		ev.Outcome = "throttled"
		h.record(r, ev)
		h.resetSpent(w, l)
		return
	}
	tries, err := h.store.CountCodeFailure(ctx, u.ID, MaxAccountCodes)
	switch {
	case errors.Is(err, storage.ErrConflict):
		ev.Outcome = "locked"
		h.record(r, ev)
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_locked"))
		return
	case err != nil:
		h.serverError(w, r, "count code", err, u.ID)
		return
	}
	ev.Outcome, err = h.checkResetCode(ctx, u, code, recovery)
	if err != nil {
		h.serverError(w, r, "check reset code", err, u.ID)
		return
	}
	if ev.Outcome != "success" {
		h.record(r, ev)
		h.wrongResetCode(w, r, l, t, u, tries, page, ev.Outcome)
		return
	}

	// The sessions are listed before the reset ends them, to tell the
	// applications they signed in to (back-channel logout).
	sessions, err := h.store.ListUserLoginSessions(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list login sessions", err, u.ID)
		return
	}
	hash, err := h.hasher.Hash(password)
	if err != nil {
		h.serverError(w, r, "hash password", err, u.ID)
		return
	}
	err = h.store.ResetPasswordWithToken(ctx, t.ID, u.ID, hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Spent a moment ago by a concurrent request, which set its own
		// password.
		ev.Outcome = "spent"
		h.record(r, ev)
		h.resetLinkInvalid(w, l)
		return
	case err != nil:
		h.serverError(w, r, "reset password", err, u.ID)
		return
	}
	h.record(r, ev)
	h.endSessions(w, r, u, sessions)
	// The new password may be used at once, even if wrong passwords
	// locked the username: proving the second factor lifts that.
	h.resetThrottle(w, r, usernameKey(u.Username), u.ID)
	h.resetThrottle(w, r, resetKey(t.ID), u.ID)
	h.clearCookie(w)
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("reset.done_title"), Message: l.T("reset.done"), Next: "/login", Action: l.T("button.sign_in"),
	})
}

// resetLink returns the password reset link the secret names and its
// user, if the user may use it: enabled, not locked, and with an
// authenticator to prove the second factor with. Otherwise it writes the
// page that says why, in language l, and returns false; nothing changes
// either way.
func (h *Handler) resetLink(w http.ResponseWriter, r *http.Request, l templates.Lang, secret string) (storage.AccountToken, storage.User, bool) {
	ctx := r.Context()
	t, err := h.linkToken(ctx, storage.PurposeResetPassword, secret)
	var u storage.User
	if err == nil {
		var n int
		if n, _, err = h.store.ThrottleFailures(ctx, resetKey(t.ID)); err == nil && n >= maxResetCodes {
			err = fmt.Errorf("reset link had %d codes: %w", n, storage.ErrNotFound)
		}
	}
	if err == nil {
		u, err = h.store.GetUser(ctx, t.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			// Deleted since: as for a disabled user.
			u, err = storage.User{ID: t.UserID, Disabled: true}, nil
		}
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.resetLinkInvalid(w, l)
		return t, u, false
	case err != nil:
		h.serverError(w, r, "get reset link", err, t.UserID)
		return t, u, false
	case u.Disabled || !u.HasTOTP():
		// Without an authenticator only the mailbox would vouch for the
		// user, and it must not be enough.
		h.pages.Render(w, l, http.StatusForbidden, "notice.html", noticePage{
			Title: l.T("reset.ask_admin_title"), Message: l.T("reset.ask_admin"),
		})
		return t, u, false
	case u.FailedCodes >= MaxAccountCodes:
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_locked"))
		return t, u, false
	}
	return t, u, true
}

// checkResetCode checks code, a well-formed TOTP code or (recovery) a
// recovery code, for u and returns the outcome for the audit log:
// "success", "failure" or, for a TOTP code whose time step was used
// already, "replayed". A right code is spent.
func (h *Handler) checkResetCode(ctx context.Context, u storage.User, code string, recovery bool) (string, error) {
	if recovery {
		rc, _ := normalRecoveryCode(code)
		_, err := h.store.UseRecoveryCode(ctx, u.ID, recoveryHash(u.ID, rc))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return "failure", nil
		case err != nil:
			return "", fmt.Errorf("use recovery code: %w", err)
		}
		return "success", nil
	}
	step, ok, err := matchCode(u.TOTPSecret, code, h.now())
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "failure", nil
	}
	// As at sign-in, each time step is accepted once (RFC 6238 §5.2).
	err = h.store.UseTOTPStep(ctx, u.ID, step)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return "replayed", nil
	case err != nil:
		return "", fmt.Errorf("use totp step: %w", err)
	}
	return "success", nil
}

// wrongResetCode answers a wrong code given with the reset link t of u,
// given the account's count of consecutive wrong codes: the lock when
// that reached MaxAccountCodes, the end of the link when it has had its
// maxResetCodes, or else page again with the error.
func (h *Handler) wrongResetCode(w http.ResponseWriter, r *http.Request, l templates.Lang, t storage.AccountToken, u storage.User, tries int, page resetPage, outcome string) {
	n, _, err := h.store.ThrottleFailures(r.Context(), resetKey(t.ID))
	switch {
	case err != nil:
		h.serverError(w, r, "count reset codes", err, u.ID)
	case tries >= MaxAccountCodes:
		h.record(r, storage.AuditEvent{Event: "account.locked", Outcome: "success", UserID: u.ID,
			Detail: fmt.Sprintf("%d consecutive wrong codes", tries)})
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: account locked after too many wrong codes",
			slog.String("request_id", requestID(w)), slog.String("user_id", u.ID))
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_locked"))
	case n >= maxResetCodes:
		h.resetSpent(w, l)
	default:
		page.CodeError = l.T("reset.bad_code")
		if outcome == "replayed" {
			page.CodeError = l.T("totp.code_used")
		}
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "reset.html", page)
	}
}

// endSessions tells the applications that u's ended sessions signed in to
// (OpenID Connect Back-Channel Logout 1.0): the sessions themselves are
// gone already. A failure is logged; the password is changed regardless.
func (h *Handler) endSessions(w http.ResponseWriter, r *http.Request, u storage.User, sessions []storage.LoginSession) {
	ctx := context.WithoutCancel(r.Context())
	for _, ls := range sessions {
		if ls.SID == "" {
			continue
		}
		if _, err := h.store.QueueBackchannelLogouts(ctx, ls.SID); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "login: queue back-channel logouts",
				slog.String("request_id", requestID(w)), slog.String("user_id", u.ID), slog.String("error", err.Error()))
		}
	}
}

// resetKey counts the codes given with one password reset link, by its
// token's ID (a hash: the throttles table holds no link).
func resetKey(tokenID string) string { return "reset:token:" + tokenID }

// resetCodeDelay lets a reset link take maxResetCodes codes, then blocks
// it for longer than it lives.
func resetCodeDelay(n int) time.Duration {
	if n >= maxResetCodes {
		return resetLifetime
	}
	return 0
}

// resetLinkInvalid says, in language l, that a password reset link has
// expired, was used or had too many codes.
func (h *Handler) resetLinkInvalid(w http.ResponseWriter, l templates.Lang) {
	h.pages.Render(w, l, http.StatusNotFound, "notice.html", noticePage{
		Title: l.T("join.link_title"), Message: l.T("reset.link_invalid"), Next: "/login/forgot", Action: l.T("reset.request_new"),
	})
}

// resetSpent says, in language l, that the link had too many wrong codes.
func (h *Handler) resetSpent(w http.ResponseWriter, l templates.Lang) {
	h.pages.Render(w, l, http.StatusTooManyRequests, "notice.html", noticePage{
		Title: l.T("totp.spent_title"), Message: l.T("reset.spent"), Next: "/login/forgot", Action: l.T("reset.request_new"),
	})
}
