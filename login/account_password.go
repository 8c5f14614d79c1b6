package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// submitNewPassword serves POST /account/password: a new password, given
// with the current one and a fresh code from the current authenticator.
// The new password is checked against the policy before anything is
// spent; then the current password (throttled like the login's), then the
// code (counted towards the lock before it is checked, and refused if it
// or a later one was already used). A password change keeps this session
// and ends every other one, and every remembered browser.
func (h *Handler) submitNewPassword(w http.ResponseWriter, r *http.Request) {
	ls, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	current := r.PostForm.Get("current_password")
	code := stripSpaces(r.PostForm.Get("code"))
	password := r.PostForm.Get("new_password")
	var f passwordForm
	if current == "" {
		f.CurrentError = l.T("login.enter_password")
	}
	if !wellFormedCode(code) {
		f.CodeError = l.T("totp.code_format")
	}
	switch {
	case password == "":
		f.NewError = l.T("account.password.enter_new")
	case r.PostForm.Get("confirm_password") != password:
		f.ConfirmError = l.T("account.password.mismatch")
	default:
		f.NewError = newPasswordProblem(l, h.policy, password, u.Username, u.Email)
	}
	if f != (passwordForm{}) {
		h.renderAccount(w, r, l, http.StatusUnprocessableEntity, ls, u, accountPage{Password: f})
		return
	}

	ctx := r.Context()
	ev := storage.AuditEvent{Event: "password.changed", UserID: u.ID}
	key := usernameKey(u.Username)
	ok, until, err := h.reserve(ctx, key, h.account)
	if err != nil {
		h.serverError(w, r, "throttle password", err, u.ID)
		return
	}
	if !ok {
		ev.Outcome = "throttled"
		h.record(r, ev)
		f.Error = tooManyAttempts(l, h.retryAfter(w, until))
		h.renderAccount(w, r, l, http.StatusTooManyRequests, ls, u, accountPage{Password: f})
		return
	}
	right, err := h.hasher.Verify(u.PasswordHash, current)
	if err != nil {
		h.serverError(w, r, "verify password", err, u.ID)
		return
	}
	if !right {
		ev.Outcome, ev.Detail = "failure", "wrong current password"
		h.record(r, ev)
		f.CurrentError = l.T("account.password.wrong")
		h.renderAccount(w, r, l, http.StatusUnprocessableEntity, ls, u, accountPage{Password: f})
		return
	}
	if err := h.store.RefundAttempt(ctx, key); err != nil {
		h.serverError(w, r, "refund attempt", err, u.ID)
		return
	}
	if !h.useAccountCode(w, r, l, u, code, ev, func(msg string) {
		f.CodeError = msg
		h.renderAccount(w, r, l, http.StatusUnprocessableEntity, ls, u, accountPage{Password: f})
	}) {
		return
	}

	hash, err := h.hasher.Hash(password)
	if err != nil {
		h.serverError(w, r, "hash password", err, u.ID)
		return
	}
	sessions, err := h.store.ListUserLoginSessions(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list login sessions", err, u.ID)
		return
	}
	if err := h.store.SetPasswordHash(ctx, u.ID, hash, ls.ID); err != nil {
		h.serverError(w, r, "set password", err, u.ID)
		return
	}
	var ended []string
	for _, s := range sessions {
		if s.ID != ls.ID {
			ended = append(ended, s.SID)
		}
	}
	h.queueLogouts(w, r, u.ID, ended...)
	ev.Outcome, ev.Detail = "success", fmt.Sprintf("%d other sessions ended", len(ended))
	h.record(r, ev)
	done(w, r, "password")
}

// useAccountCode checks a well-formed code from u's current authenticator
// on the account page and spends its time step. Like the login it counts
// the attempt towards the lock first, and refuses a code whose step, or a
// later one, was already used. A wrong or used code is audited as ev and
// handed, as a message in language l, to retry, which shows the form
// again; the lock and failures write their own page. It reports whether
// the code was right.
func (h *Handler) useAccountCode(w http.ResponseWriter, r *http.Request, l templates.Lang, u storage.User, code string, ev storage.AuditEvent, retry func(msg string)) bool {
	tries, ok := h.countAccountCode(w, r, l, u, ev)
	if !ok {
		return false
	}
	step, match, err := matchCode(u.TOTPSecret, code, h.now())
	if err != nil {
		h.serverError(w, r, "check totp code", err, u.ID)
		return false
	}
	msg := l.T("totp.bad_code")
	ev.Outcome, ev.Detail = "failure", "wrong code"
	if match {
		err = h.store.UseTOTPStep(r.Context(), u.ID, step)
		switch {
		case err == nil:
			return true
		case errors.Is(err, storage.ErrConflict):
			msg = l.T("totp.code_used")
			ev.Outcome, ev.Detail = "replayed", ""
		default:
			h.serverError(w, r, "use totp step", err, u.ID)
			return false
		}
	}
	h.record(r, ev)
	if tries >= MaxAccountCodes {
		h.lockedOut(w, r, l, u, tries)
		return false
	}
	retry(msg)
	return false
}

// countAccountCode counts a code attempt on the account page towards u's
// lock before it is checked, and returns the count of wrong codes in a row
// with this one. When the account is locked already it audits ev, says so
// in language l and returns false.
func (h *Handler) countAccountCode(w http.ResponseWriter, r *http.Request, l templates.Lang, u storage.User, ev storage.AuditEvent) (int, bool) {
	tries, err := h.store.CountCodeFailure(r.Context(), u.ID, MaxAccountCodes)
	switch {
	case errors.Is(err, storage.ErrConflict):
		ev.Outcome = "locked"
		h.record(r, ev)
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_locked"))
		return 0, false
	case err != nil:
		h.serverError(w, r, "count code", err, u.ID)
		return 0, false
	}
	return tries, true
}

// queueLogouts tells the clients that the ended sessions sids signed in to
// (OpenID Connect Back-Channel Logout 1.0 §2.7), through the store's queue
// that the provider delivers from. The sessions are gone already, so a
// failure is logged and the user's page goes on.
func (h *Handler) queueLogouts(w http.ResponseWriter, r *http.Request, userID string, sids ...string) {
	// The sessions are gone: finish even if the browser goes away.
	ctx := context.WithoutCancel(r.Context())
	for _, sid := range sids {
		if sid == "" {
			continue
		}
		if _, err := h.store.QueueBackchannelLogouts(ctx, sid); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "login: queue back-channel logouts",
				slog.String("request_id", requestID(w)), slog.String("user_id", userID), slog.String("error", err.Error()))
		}
	}
}
