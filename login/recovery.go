package login

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

const (
	// recoveryCodeCount codes are made at enrolment, each good once.
	recoveryCodeCount = 10
	// recoveryCodeBytes is 80 random bits: 16 base32 characters, too many
	// to guess online and, hashed with SHA-256, to search offline.
	recoveryCodeBytes = 10
)

// recoveryEncoding writes recovery codes in lower-case base32, which has
// no 0/O or 1/l to confuse.
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// recoveryPage is the data of recovery.html.
type recoveryPage struct {
	CSRFToken string
	Username  string
	Error     string
}

// codesPage is the data of codes.html, which shows new recovery codes once.
type codesPage struct {
	// Intro replaces the enrolment's introduction when set.
	Intro string
	Codes []string
	// Download is the codes as a text/plain data: URL, for saving them.
	Download template.URL
	Next     string
}

// noticePage is the data of notice.html: a message and where to go next.
type noticePage struct {
	Title   string
	Message string
	Next    string
	Action  string
}

// newRecoveryCodes returns fresh recovery codes for the user, formatted
// for reading, and their hashes for the store.
func (h *Handler) newRecoveryCodes(userID string) (codes, hashes []string, err error) {
	for range recoveryCodeCount {
		b := make([]byte, recoveryCodeBytes)
		if _, err := io.ReadFull(h.rand, b); err != nil {
			return nil, nil, fmt.Errorf("read random recovery code: %w", err)
		}
		raw := recoveryEncoding.EncodeToString(b)
		codes = append(codes, raw[0:4]+"-"+raw[4:8]+"-"+raw[8:12]+"-"+raw[12:16])
		hashes = append(hashes, recoveryHash(userID, raw))
	}
	return codes, hashes, nil
}

// recoveryHash is what the store keeps of a normalised recovery code:
// SHA-256 over the user ID and the code, so equal codes of two users
// differ.
func recoveryHash(userID, code string) string {
	sum := sha256.Sum256([]byte(userID + ":" + code))
	return hex.EncodeToString(sum[:])
}

// normalRecoveryCode strips what people add when they type a recovery
// code (spaces, dashes, capitals) and reports whether the rest is one.
func normalRecoveryCode(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(stripSpaces(s), "-", ""))
	if len(s) != recoveryEncoding.EncodedLen(recoveryCodeBytes) {
		return "", false
	}
	if _, err := recoveryEncoding.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// showNewRecoveryCodes shows the user's new recovery codes, once, in
// language l, with a download and the way on to next. intro, if not "",
// replaces the enrolment's introduction.
func (h *Handler) showNewRecoveryCodes(w http.ResponseWriter, l templates.Lang, u storage.User, codes []string, next, intro string) {
	text := l.T("codes.file", "issuer", h.issuer, "user", u.Username) + "\n\n" + strings.Join(codes, "\n") + "\n"
	h.pages.Render(w, l, http.StatusOK, "codes.html", codesPage{
		Intro: intro,
		Codes: codes,
		// Built here from generated codes, all escaped; html/template would
		// otherwise refuse the data: scheme.
		Download: template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text)),
		Next:     next,
	})
}

// showRecovery serves GET /login/recovery: the recovery-code form, for a
// login in the TOTP step of a user with a confirmed authenticator.
func (h *Handler) showRecovery(w http.ResponseWriter, r *http.Request) {
	ls, ar, u, ok := h.recoverySession(w, r)
	if !ok {
		return
	}
	h.renderRecovery(w, pageLang(r, ar), http.StatusOK, ls, u, "")
}

// recoverySession loads the session of a recovery-code page, the
// authorization request it serves and its user. A browser in another step
// goes back to it; a user still enrolling has no codes yet.
func (h *Handler) recoverySession(w http.ResponseWriter, r *http.Request) (storage.LoginSession, storage.AuthRequest, storage.User, bool) {
	var ar storage.AuthRequest
	ls, err := h.session(r)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		redirect(w, r, "/login")
		return ls, ar, storage.User{}, false
	case err != nil:
		h.serverError(w, r, "load login session", err, "")
		return ls, ar, storage.User{}, false
	}
	if ls.State != storage.StateTOTP {
		redirect(w, r, loginURL(ls.AuthRequestID))
		return ls, ar, storage.User{}, false
	}
	if ar, err = h.authRequest(r.Context(), ls); err != nil {
		h.serverError(w, r, "get auth request", err, ls.UserID)
		return ls, ar, storage.User{}, false
	}
	l := pageLang(r, ar)
	if ls.FailedCodes >= maxSessionCodes {
		h.sessionSpent(w, r, l, ls)
		return ls, ar, storage.User{}, false
	}
	u, ok := h.totpUser(w, r, l, ls)
	if !ok {
		return ls, ar, u, false
	}
	if !u.HasTOTP() {
		redirect(w, r, "/login/totp")
		return ls, ar, u, false
	}
	return ls, ar, u, true
}

// submitRecovery serves POST /login/recovery: a recovery code instead of a
// TOTP code. It counts as a code attempt like a TOTP code does, works
// once, and the login it completes claims no `otp`.
func (h *Handler) submitRecovery(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	if _, _, ok := h.formSession(w, r, storage.StateTOTP); !ok {
		return
	}
	ls, ar, u, ok := h.recoverySession(w, r)
	if !ok {
		return
	}
	l := pageLang(r, ar)
	code, ok := normalRecoveryCode(r.PostForm.Get("code"))
	if !ok {
		h.renderRecovery(w, l, http.StatusUnprocessableEntity, ls, u, l.T("recovery.format"))
		return
	}
	ctx := r.Context()
	ev := storage.AuditEvent{Event: "login.recovery_code", UserID: u.ID, ClientID: ar.ClientID}
	tries, ok := h.countCode(w, r, l, ls, u, ev)
	if !ok {
		return
	}
	left, err := h.store.UseRecoveryCode(ctx, u.ID, recoveryHash(u.ID, code))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		ev.Outcome = "failure"
		h.record(r, ev)
		h.wrongCode(w, r, l, ls, u, tries, func() {
			h.renderRecovery(w, l, http.StatusUnprocessableEntity, ls, u, l.T("recovery.bad_code"))
		})
		return
	case err != nil:
		h.serverError(w, r, "use recovery code", err, u.ID)
		return
	}
	// RFC 8176: a password and a second factor, but not an OTP device.
	if !h.complete(w, r, ls, storage.StateTOTP, u, h.now(), []string{"pwd", "mfa"}, storage.ACRRecoveryCode) {
		return
	}
	ev.Outcome, ev.Detail = "success", fmt.Sprintf("%d left", left)
	h.record(r, ev)
	msg := l.N("recovery.used", left)
	if left <= 3 {
		msg += " " + l.T("recovery.running_out")
	}
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("recovery.used_title"), Message: msg, Next: continueURL(ls), Action: l.T("button.continue"),
	})
}

// renderRecovery shows recovery.html in language l with an error, if any.
func (h *Handler) renderRecovery(w http.ResponseWriter, l templates.Lang, status int, ls storage.LoginSession, u storage.User, msg string) {
	h.pages.Render(w, l, status, "recovery.html", recoveryPage{CSRFToken: ls.CSRFToken, Username: u.Username, Error: msg})
}
