package login

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// The only TOTP profile twostep uses (RFC 6238 with the defaults every
// authenticator app supports): 6 digits, 30-second steps, HMAC-SHA-1,
// 160-bit secrets, and one step of clock skew either side.
const (
	totpPeriod     = 30
	totpDigits     = otp.DigitsSix
	totpAlgorithm  = otp.AlgorithmSHA1
	totpSecretSize = 20
	totpSkew       = 1
	qrSize         = 288 // pixels, as totp.html shows it
)

// totpPage is the data of totp.html.
type totpPage struct {
	CSRFToken string
	// Client names the application the user signs in to; "" when the
	// login serves no authorization request.
	Client   string
	Username string
	Issuer   string
	// Enrol is true while the user has no confirmed authenticator; only
	// then are QR, URI and Secret set.
	Enrol  bool
	QR     template.URL // data:image/png;base64,...
	URI    template.URL // otpauth://totp/...
	Secret string       // grouped in fours for typing
	// Error concerns the whole form; CodeError sits next to the code
	// field.
	Error     string
	CodeError string
	// RememberDays is how long "remember this device" lasts, in days; 0
	// hides the checkbox.
	RememberDays int
}

// showTOTP serves GET /login/totp: the code form, with the enrolment QR
// code, URI and secret for a user without a confirmed authenticator.
func (h *Handler) showTOTP(w http.ResponseWriter, r *http.Request) {
	ls, err := h.session(r)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		redirect(w, r, "/login")
		return
	case err != nil:
		h.serverError(w, r, "load login session", err, "")
		return
	}
	if ls.State != storage.StateTOTP {
		redirect(w, r, loginURL(ls.AuthRequestID))
		return
	}
	ar, err := h.authRequest(r.Context(), ls)
	if err != nil {
		h.serverError(w, r, "get auth request", err, ls.UserID)
		return
	}
	l := pageLang(r, ar)
	if ls.FailedCodes >= maxSessionCodes {
		h.sessionSpent(w, r, l, ls)
		return
	}
	u, ok := h.totpUser(w, r, l, ls)
	if !ok {
		return
	}
	if !u.HasTOTP() && !h.addPendingSecret(w, r, &ls, u, loginURL(ls.AuthRequestID)) {
		return
	}
	h.renderTOTP(w, r, http.StatusOK, ls, ar, u, totpPage{})
}

// addPendingSecret gives the session ls a new enrolment secret for u,
// unless it has one. The secret is stored before it is shown, so a reload
// shows the same one and the code from it can be checked; it becomes the
// user's only once a code verifies (ConfirmTOTP, ReplaceTOTP). If the
// session ended meanwhile the browser goes to gone; on failure a page is
// written. Either way it returns false.
func (h *Handler) addPendingSecret(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, u storage.User, gone string) bool {
	if ls.PendingTOTPSecret != "" {
		return true
	}
	key, err := totp.Generate(h.totpOpts(u.Username, nil))
	if err != nil {
		h.serverError(w, r, "generate totp secret", err, u.ID)
		return false
	}
	err = h.store.SetPendingTOTPSecret(r.Context(), ls.ID, key.Secret())
	switch {
	case errors.Is(err, storage.ErrConflict):
		redirect(w, r, gone)
		return false
	case err != nil:
		h.serverError(w, r, "set pending totp secret", err, u.ID)
		return false
	}
	ls.PendingTOTPSecret = key.Secret()
	return true
}

// submitTOTP serves POST /login/totp: the second factor, and during
// enrolment the confirmation of the new authenticator.
func (h *Handler) submitTOTP(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ls, ar, ok := h.formSession(w, r, storage.StateTOTP)
	if !ok {
		return
	}
	l := pageLang(r, ar)
	u, ok := h.totpUser(w, r, l, ls)
	if !ok {
		return
	}
	ctx := r.Context()
	enrol := !u.HasTOTP()
	secret := u.TOTPSecret
	if enrol {
		secret = ls.PendingTOTPSecret
		if secret == "" {
			// The enrolment page was never shown to this session.
			redirect(w, r, "/login/totp")
			return
		}
	}
	code := stripSpaces(r.PostForm.Get("code"))
	if !wellFormedCode(code) {
		h.renderTOTP(w, r, http.StatusUnprocessableEntity, ls, ar, u, totpPage{CodeError: l.T("totp.code_format")})
		return
	}
	ev := storage.AuditEvent{Event: "login.totp", UserID: u.ID, ClientID: ar.ClientID}
	tries, ok := h.countCode(w, r, l, ls, u, ev)
	if !ok {
		return
	}

	now := h.now()
	var codes []string
	step, ok, err := matchCode(secret, code, now)
	if err != nil {
		h.serverError(w, r, "check totp code", err, u.ID)
		return
	}
	if ok {
		// The store accepts each step once, and only steps later than the
		// last one accepted, so a code (or an older one) cannot be replayed
		// (RFC 6238 §5.2).
		if enrol {
			var hashes []string
			if codes, hashes, err = h.newRecoveryCodes(u.ID); err != nil {
				h.serverError(w, r, "make recovery codes", err, u.ID)
				return
			}
			err = h.store.ConfirmTOTP(ctx, u.ID, secret, step, hashes)
		} else {
			err = h.store.UseTOTPStep(ctx, u.ID, step)
		}
		switch {
		case errors.Is(err, storage.ErrConflict):
			// Counted as a wrong code: it may be the one that spends the
			// session or locks the account.
			ev.Outcome = "replayed"
			h.record(r, ev)
			h.wrongCode(w, r, l, ls, u, tries, func() {
				h.renderTOTP(w, r, http.StatusUnprocessableEntity, ls, ar, u, totpPage{CodeError: l.T("totp.code_used")})
			})
			return
		case err != nil:
			h.serverError(w, r, "use totp step", err, u.ID)
			return
		}
	}
	if !ok {
		ev.Outcome = "failure"
		h.record(r, ev)
		h.wrongCode(w, r, l, ls, u, tries, func() {
			h.renderTOTP(w, r, http.StatusUnprocessableEntity, ls, ar, u, totpPage{CodeError: l.T("totp.bad_code")})
		})
		return
	}
	if !h.complete(w, r, ls, storage.StateTOTP, u, now, []string{"pwd", "otp", "mfa"}, storage.ACRTOTP) {
		return
	}
	ev.Outcome = "success"
	h.record(r, ev)
	if r.PostForm.Get("remember") != "" && h.remember > 0 {
		h.rememberDevice(w, r, u, ar.ClientID, now)
	}
	if enrol {
		h.record(r, storage.AuditEvent{Event: "totp.enrolled", Outcome: "success", UserID: u.ID, ClientID: ar.ClientID})
		h.showNewRecoveryCodes(w, l, u, codes, continueURL(ls), "")
		return
	}
	h.proceed(w, r, ls)
}

// countCode counts a second-factor attempt, before it is checked, against
// the login session (maxSessionCodes) and the account (MaxAccountCodes),
// and returns the account's count. When either is used up it writes the
// page that says so, in language l, and returns false.
func (h *Handler) countCode(w http.ResponseWriter, r *http.Request, l templates.Lang, ls storage.LoginSession, u storage.User, ev storage.AuditEvent) (int, bool) {
	ctx := r.Context()
	err := h.store.CountSessionCodeFailure(ctx, ls.ID, maxSessionCodes)
	switch {
	case errors.Is(err, storage.ErrConflict):
		ev.Outcome = "throttled"
		h.record(r, ev)
		h.sessionSpent(w, r, l, ls)
		return 0, false
	case err != nil:
		h.serverError(w, r, "count code", err, u.ID)
		return 0, false
	}
	return h.countAccountCode(w, r, l, u, ev)
}

// wrongCode answers a wrong code, given the account's count of
// consecutive wrong codes: the lock when that reached MaxAccountCodes, the
// end of the login session when it has had its maxSessionCodes attempts,
// or else retry, which shows the form again. Pages are in language l.
func (h *Handler) wrongCode(w http.ResponseWriter, r *http.Request, l templates.Lang, ls storage.LoginSession, u storage.User, tries int, retry func()) {
	switch {
	case tries >= MaxAccountCodes:
		h.lockedOut(w, r, l, u, tries)
	case ls.FailedCodes+1 >= maxSessionCodes:
		h.sessionSpent(w, r, l, ls)
	default:
		retry()
	}
}

// lockedOut records that the wrong code just counted, the account's tries
// in a row, locked u's account, and says so in language l.
func (h *Handler) lockedOut(w http.ResponseWriter, r *http.Request, l templates.Lang, u storage.User, tries int) {
	h.record(r, storage.AuditEvent{Event: "account.locked", Outcome: "success", UserID: u.ID,
		Detail: fmt.Sprintf("%d consecutive wrong codes", tries)})
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: account locked after too many wrong codes",
		slog.String("request_id", requestID(w)), slog.String("user_id", u.ID))
	h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_locked"))
}

// sessionSpent tells the user that this login has had all its code
// attempts and must start again from the password. The session row stays
// until it expires, refusing every further code, so that a concurrent
// right code already being checked can still finish.
func (h *Handler) sessionSpent(w http.ResponseWriter, r *http.Request, l templates.Lang, ls storage.LoginSession) {
	h.pages.Render(w, l, http.StatusTooManyRequests, "notice.html", noticePage{
		Title:   l.T("totp.spent_title"),
		Message: l.T("totp.spent"),
		Next:    loginURL(ls.AuthRequestID),
		Action:  l.T("totp.sign_in_again"),
	})
}

// stripSpaces removes white space, which people type into codes.
func stripSpaces(s string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsSpace(c) {
			return -1
		}
		return c
	}, s)
}

// totpUser loads the user a session in the TOTP state belongs to. A user
// disabled (or deleted) after the password step is refused here: the
// session is ended and an error page written in language l.
func (h *Handler) totpUser(w http.ResponseWriter, r *http.Request, l templates.Lang, ls storage.LoginSession) (storage.User, bool) {
	u, err := h.store.GetUser(r.Context(), ls.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.serverError(w, r, "get user", err, ls.UserID)
		return storage.User{}, false
	}
	if err == nil && !u.Disabled {
		return u, true
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: disabled or deleted user refused at totp step",
		slog.String("request_id", requestID(w)), slog.String("user_id", ls.UserID))
	if err := h.store.DeleteLoginSession(r.Context(), ls.ID); err != nil {
		h.serverError(w, r, "delete login session", err, ls.UserID)
		return storage.User{}, false
	}
	h.clearCookie(w)
	h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_disabled"))
	return storage.User{}, false
}

// renderTOTP shows totp.html, for a login serving ar, with page's
// messages, adding the enrolment QR code, URI and secret only when the
// user has no confirmed authenticator: a returning user never sees their
// secret again.
func (h *Handler) renderTOTP(w http.ResponseWriter, r *http.Request, status int, ls storage.LoginSession, ar storage.AuthRequest, u storage.User, page totpPage) {
	var err error
	if page.Client, err = h.clientName(r.Context(), ar); err != nil {
		h.serverError(w, r, "get client", err, u.ID)
		return
	}
	page.CSRFToken = ls.CSRFToken
	page.Username = u.Username
	page.Issuer = h.issuer
	if h.remember > 0 {
		page.RememberDays = int(h.remember.Hours()+23) / 24
	}
	if !u.HasTOTP() {
		if err := h.addEnrolment(&page, u.Username, ls.PendingTOTPSecret); err != nil {
			h.serverError(w, r, "render totp enrolment", err, u.ID)
			return
		}
	}
	h.pages.Render(w, pageLang(r, ar), status, "totp.html", page)
}

// addEnrolment fills the QR code, otpauth:// URI and grouped secret for
// secret into page.
func (h *Handler) addEnrolment(page *totpPage, username, secret string) error {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw) == 0 {
		return errors.New("pending totp secret is missing or not base32")
	}
	key, err := totp.Generate(h.totpOpts(username, raw))
	if err != nil {
		return fmt.Errorf("build otpauth uri: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return fmt.Errorf("draw qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode qr code: %w", err)
	}
	page.Enrol = true
	// Both URLs are built here from a generated secret and escaped
	// components; html/template would otherwise refuse the data: and
	// otpauth: schemes.
	page.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
	page.URI = template.URL(key.URL())
	page.Secret = groupSecret(key.Secret())
	return nil
}

// totpOpts is the key profile for a new or pending secret; secret nil
// draws a fresh one from h.rand.
func (h *Handler) totpOpts(username string, secret []byte) totp.GenerateOpts {
	return totp.GenerateOpts{
		Issuer:      h.issuer,
		AccountName: username,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Secret:      secret,
		Digits:      totpDigits,
		Algorithm:   totpAlgorithm,
		Rand:        h.rand,
	}
}

// groupSecret writes a base32 secret in groups of four for typing.
func groupSecret(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// wellFormedCode reports whether code is exactly six ASCII digits.
func wellFormedCode(code string) bool {
	if len(code) != totpDigits.Length() {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// matchCode returns the RFC 6238 time step whose code equals code, trying
// the current step and totpSkew steps either side. Every candidate is
// computed and compared in constant time; if two match, the later wins,
// which burns more of the replay window rather than less.
func matchCode(secret, code string, now time.Time) (step int64, ok bool, err error) {
	current := now.Unix() / totpPeriod
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlgorithm}
	for s := current - totpSkew; s <= current+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), opts)
		if err != nil {
			return 0, false, fmt.Errorf("generate totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, ok = s, true
		}
	}
	return step, ok, nil
}
