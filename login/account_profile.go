package login

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// cleanName returns s without surrounding space if validName accepts it.
func cleanName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	return s, validName(s)
}

// cleanEmail returns s without surrounding space if it is empty (the user
// has no address) or one bare address that parseEmail accepts.
func cleanEmail(s string) (string, bool) {
	if strings.TrimSpace(s) == "" {
		return "", true
	}
	return parseEmail(s)
}

// submitProfile serves POST /account/profile: the user's display name
// and email address. A changed address is no longer verified; when mail
// is set up, a link to verify it goes to the new address.
func (h *Handler) submitProfile(w http.ResponseWriter, r *http.Request) {
	ls, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	name, nameOK := cleanName(r.PostForm.Get("name"))
	email, emailOK := cleanEmail(r.PostForm.Get("email"))
	if !nameOK || !emailOK {
		form := profileForm{
			Name:  strings.ToValidUTF8(r.PostForm.Get("name"), "\uFFFD"),
			Email: strings.ToValidUTF8(r.PostForm.Get("email"), "\uFFFD"),
		}
		if !nameOK {
			form.NameError = l.T("account.name_invalid", "max", maxNameLength)
		}
		if !emailOK {
			form.EmailError = l.T("account.email_invalid")
		}
		h.renderAccount(w, r, l, http.StatusUnprocessableEntity, ls, u, accountPage{Profile: form})
		return
	}
	if err := h.store.UpdateProfile(r.Context(), u.ID, name, email); err != nil {
		h.serverError(w, r, "update profile", err, u.ID)
		return
	}
	var changed []string
	if name != u.Name {
		changed = append(changed, "name")
	}
	if email != u.Email {
		changed = append(changed, "email")
	}
	detail := "unchanged"
	if len(changed) > 0 {
		detail = "changed: " + strings.Join(changed, ", ")
	}
	h.record(r, storage.AuditEvent{Event: "profile.updated", Outcome: "success", UserID: u.ID, Detail: detail})
	switch {
	case email == u.Email || email == "" || h.mailer == nil:
		done(w, r, "profile")
	case h.sendVerification(w, r, l, u.ID, email):
		done(w, r, "email_sent")
	default:
		done(w, r, "email_not_sent")
	}
}

// resendVerification serves POST /account/email: another verification
// link for the user's stored, unverified address.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) {
	_, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	switch {
	case h.mailer == nil || u.Email == "" || u.EmailVerified:
		redirect(w, r, accountPath)
	case h.sendVerification(w, r, l, u.ID, u.Email):
		done(w, r, "email_sent")
	default:
		done(w, r, "email_not_sent")
	}
}

// verifyMailKey throttles the verification mails of a user: they go to
// whatever address the user typed, which may be anyone's.
func verifyMailKey(userID string) string { return "account:verify-mail:" + userID }

// sendVerification mails email, in language l, a link that marks it
// verified for the user, and reports whether it went. The mails of a user
// are throttled like wrong passwords; a refused or failed mail is logged
// and audited, and the profile stays as it is.
func (h *Handler) sendVerification(w http.ResponseWriter, r *http.Request, l templates.Lang, userID, email string) bool {
	ctx := r.Context()
	ev := storage.AuditEvent{Event: "email.verification_sent", UserID: userID}
	ok, _, err := h.reserve(ctx, verifyMailKey(userID), h.account)
	if err == nil && !ok {
		ev.Outcome = "throttled"
		h.record(r, ev)
		return false
	}
	var link string
	if err == nil {
		link, err = h.link(ctx, "/account/verify-email",
			storage.AccountToken{Purpose: storage.PurposeVerifyEmail, UserID: userID, Email: email}, verifyEmailLifetime)
	}
	if err == nil {
		err = sendMail(ctx, h.mailer, h.pages, l, email, "verify-email",
			inviteMail{Link: link, Expires: mailExpiry(h.now().Add(verifyEmailLifetime))})
	}
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "login: send verification mail",
			slog.String("request_id", requestID(w)), slog.String("user_id", userID), slog.String("error", err.Error()))
		ev.Outcome = "failure"
		h.record(r, ev)
		return false
	}
	ev.Outcome = "success"
	h.record(r, ev)
	return true
}

// verifyEmailPage is the data of account_verify.html.
type verifyEmailPage struct {
	Token string
	Email string
}

// showVerifyEmail serves GET /account/verify-email?token=...: a button
// that confirms the address. A GET never spends the link, since mail
// scanners fetch links before people do.
func (h *Handler) showVerifyEmail(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	secret := r.URL.Query().Get("token")
	t, err := h.linkToken(r.Context(), storage.PurposeVerifyEmail, secret)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.pages.Error(w, l, http.StatusBadRequest, l.T("account.verify.bad_link"))
		return
	case err != nil:
		h.serverError(w, r, "get verification link", err, "")
		return
	}
	h.pages.Render(w, l, http.StatusOK, "account_verify.html", verifyEmailPage{Token: secret, Email: t.Email})
}

// submitVerifyEmail serves POST /account/verify-email: it spends the link
// in the form and marks its address verified, if the user's address is
// still that one. The link's secret is what proves the mailbox; no login
// is needed, as the link may be opened on another device.
func (h *Handler) submitVerifyEmail(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	l := templates.PickLang(r, "")
	ctx := r.Context()
	t, err := h.linkToken(ctx, storage.PurposeVerifyEmail, r.PostForm.Get("token"))
	if err == nil {
		err = h.store.VerifyEmailWithToken(ctx, t.ID)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.record(r, storage.AuditEvent{Event: "email.verified", Outcome: "failure", UserID: t.UserID})
		h.pages.Error(w, l, http.StatusBadRequest, l.T("account.verify.bad_link"))
		return
	case err != nil:
		h.serverError(w, r, "verify email", err, t.UserID)
		return
	}
	h.record(r, storage.AuditEvent{Event: "email.verified", Outcome: "success", UserID: t.UserID})
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title:   l.T("account.verify.done_title"),
		Message: l.T("account.verify.done", "email", t.Email),
		Next:    accountPath,
		Action:  l.T("account.go"),
	})
}
