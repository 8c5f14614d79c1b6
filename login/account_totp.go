package login

import (
	"log/slog"
	"net/http"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// showReplaceTOTP serves GET /account/authenticator: the enrolment of a
// new authenticator, for a recent login. The new secret waits in this
// session (the same one on a reload) until a code from it verifies; until
// then the old authenticator is the one that signs in.
func (h *Handler) showReplaceTOTP(w http.ResponseWriter, r *http.Request) {
	ls, u, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	l := templates.PickLang(r, "")
	if !h.recent(w, l, ls) {
		return
	}
	// A session that ended since it was loaded signs in again.
	if !h.addPendingSecret(w, r, &ls, u, "/login") {
		return
	}
	h.renderReplaceTOTP(w, r, l, http.StatusOK, ls, u, totpPage{})
}

// submitReplaceTOTP serves POST /account/authenticator: a code from the
// new authenticator makes it the user's, in place of the old one. Wrong
// codes count towards the account's lock like any other code. Browsers
// remembered with the old authenticator must give a code again.
func (h *Handler) submitReplaceTOTP(w http.ResponseWriter, r *http.Request) {
	ls, u, l, ok := h.accountForm(w, r)
	if !ok || !h.recent(w, l, ls) {
		return
	}
	secret := ls.PendingTOTPSecret
	if secret == "" {
		// The enrolment page was never shown to this session.
		redirect(w, r, "/account/authenticator")
		return
	}
	code := stripSpaces(r.PostForm.Get("code"))
	if !wellFormedCode(code) {
		h.renderReplaceTOTP(w, r, l, http.StatusUnprocessableEntity, ls, u, totpPage{CodeError: l.T("totp.code_format")})
		return
	}
	ctx := r.Context()
	ev := storage.AuditEvent{Event: "totp.replaced", UserID: u.ID}
	tries, ok := h.countAccountCode(w, r, l, u, ev)
	if !ok {
		return
	}
	step, match, err := matchCode(secret, code, h.now())
	if err != nil {
		h.serverError(w, r, "check totp code", err, u.ID)
		return
	}
	if !match {
		ev.Outcome = "failure"
		h.record(r, ev)
		if tries >= MaxAccountCodes {
			h.lockedOut(w, r, l, u, tries)
			return
		}
		h.renderReplaceTOTP(w, r, l, http.StatusUnprocessableEntity, ls, u, totpPage{CodeError: l.T("account.totp.bad_code")})
		return
	}
	if err := h.store.ReplaceTOTP(ctx, u.ID, ls.ID, secret, step); err != nil {
		h.serverError(w, r, "replace totp", err, u.ID)
		return
	}
	// A remembered browser stands for a code of the authenticator it was
	// remembered with, which no longer signs in.
	if err := h.store.DeleteUserDevices(ctx, u.ID); err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "login: forget devices after replacing the authenticator",
			slog.String("request_id", requestID(w)), slog.String("user_id", u.ID), slog.String("error", err.Error()))
	}
	ev.Outcome = "success"
	h.record(r, ev)
	done(w, r, "totp")
}

// renderReplaceTOTP shows account_authenticator.html in language l: the
// QR code, URI and secret of the session's pending secret, and the code
// form with page's messages.
func (h *Handler) renderReplaceTOTP(w http.ResponseWriter, r *http.Request, l templates.Lang, status int, ls storage.LoginSession, u storage.User, page totpPage) {
	page.CSRFToken = ls.CSRFToken
	page.Username = u.Username
	page.Issuer = h.issuer
	if err := h.addEnrolment(&page, u.Username, ls.PendingTOTPSecret); err != nil {
		h.serverError(w, r, "render totp enrolment", err, u.ID)
		return
	}
	h.pages.Render(w, l, status, "account_authenticator.html", page)
}

// regenerateRecoveryCodes serves POST /account/recovery-codes: new
// recovery codes, for a recent login, shown once; the old ones stop
// working.
func (h *Handler) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	ls, u, l, ok := h.accountForm(w, r)
	if !ok || !h.recent(w, l, ls) {
		return
	}
	codes, hashes, err := h.newRecoveryCodes(u.ID)
	if err != nil {
		h.serverError(w, r, "make recovery codes", err, u.ID)
		return
	}
	if err := h.store.ReplaceRecoveryCodes(r.Context(), u.ID, hashes); err != nil {
		h.serverError(w, r, "replace recovery codes", err, u.ID)
		return
	}
	h.record(r, storage.AuditEvent{Event: "recovery_codes.regenerated", Outcome: "success", UserID: u.ID})
	h.showNewRecoveryCodes(w, l, u, codes, accountPath, l.T("account.codes.intro"))
}
