package login

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// joinPage is the data of join.html: the form that creates an invited or
// registered account.
type joinPage struct {
	// Token is the link's secret, carried in a hidden field: a 256-bit
	// secret the browser had to be given, so it also stops cross-site
	// posts.
	Token     string
	Username  string
	Email     string
	Name      string
	MinLength int
	// Error concerns the whole form; the others sit next to their field.
	Error         string
	NameError     string
	PasswordError string
	ConfirmError  string
}

// maxNameLength bounds the display name a new account gives itself, in
// characters.
const maxNameLength = 200

// userIDBytes is the size of a new user's random ID (the subject): 128
// bits, as `twostep user add` makes.
const userIDBytes = 16

// showJoin serves GET /join?token=...: the form that creates the account
// an invitation or a registration link is for. It changes nothing, so a
// mail scanner fetching the link spends nothing.
func (h *Handler) showJoin(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	t, ok := h.joinLink(w, r, l, r.URL.Query().Get("token"))
	if !ok {
		return
	}
	h.pages.Render(w, l, http.StatusOK, "join.html", joinPage{
		Token: r.URL.Query().Get("token"), Username: t.Username, Email: t.Email, MinLength: h.policy.minLength(),
	})
}

// submitJoin serves POST /join: it creates the account with the chosen
// password, spending the link in the same transaction, and starts a login
// whose password step is done, so that the TOTP step enrols the
// authenticator next.
func (h *Handler) submitJoin(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	l := templates.PickLang(r, "")
	secret := r.PostForm.Get("token")
	t, ok := h.joinLink(w, r, l, secret)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	password := r.PostForm.Get("password")
	page := joinPage{
		Token: secret, Username: t.Username, Email: t.Email, Name: name, MinLength: h.policy.minLength(),
		PasswordError: newPasswordProblem(l, h.policy, password, t.Username, t.Email),
	}
	if !validName(name) {
		page.NameError = l.T("join.name_invalid")
	}
	if page.PasswordError == "" && r.PostForm.Get("confirm") != password {
		page.ConfirmError = l.T("join.password_mismatch")
	}
	if page.NameError != "" || page.PasswordError != "" || page.ConfirmError != "" {
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "join.html", page)
		return
	}

	ctx := r.Context()
	hash, err := h.hasher.Hash(password)
	if err != nil {
		h.serverError(w, r, "hash password", err, "")
		return
	}
	id, err := h.newUserID()
	if err != nil {
		h.serverError(w, r, "make user id", err, "")
		return
	}
	u := storage.User{
		ID: id, Username: t.Username, Email: t.Email, Name: name, Groups: t.Groups, PasswordHash: hash,
		// The link reached this address: following it verified it.
		EmailVerified: true,
	}
	ev := storage.AuditEvent{Event: "user.joined", UserID: u.ID, Detail: t.Purpose}
	err = h.store.CreateUserWithToken(ctx, t.Purpose, t.ID, u)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Spent a moment ago, by a double submit or another browser.
		h.joinLinkInvalid(w, l)
		return
	case errors.Is(err, storage.ErrAlreadyExists):
		ev.UserID, ev.Outcome = "", "taken"
		h.record(r, ev)
		h.pages.Error(w, l, http.StatusConflict, l.T("join.taken", "user", t.Username))
		return
	case err != nil:
		h.serverError(w, r, "create user", err, "")
		return
	}
	ev.Outcome = "success"
	h.record(r, ev)

	// The password was just chosen, so the login goes on from the TOTP
	// step, which enrols the authenticator.
	value, csrf, err := h.newTokens()
	if err != nil {
		h.serverError(w, r, "start login session", err, u.ID)
		return
	}
	now := h.now()
	ls := storage.LoginSession{
		ID: sessionID(value), State: storage.StateTOTP, UserID: u.ID, CSRFToken: csrf, PasswordAt: now,
		IP: clientIP(r), UserAgent: userAgent(r), CreatedAt: now, ExpiresAt: now.Add(stepLifetime),
	}
	if err := h.store.CreateLoginSession(ctx, ls); err != nil {
		h.serverError(w, r, "start login session", err, u.ID)
		return
	}
	h.setCookie(w, value, ls.ExpiresAt)
	redirect(w, r, "/login/totp")
}

// joinLink returns the invitation or registration link the secret names,
// if this server's registration mode lets it create an account. Otherwise
// it writes the page that says why, in language l, and returns false;
// nothing changes either way.
func (h *Handler) joinLink(w http.ResponseWriter, r *http.Request, l templates.Lang, secret string) (storage.AccountToken, bool) {
	if h.signup == RegistrationClosed {
		h.pages.Error(w, l, http.StatusForbidden, l.T("join.closed"))
		return storage.AccountToken{}, false
	}
	ctx := r.Context()
	t, err := h.linkToken(ctx, storage.PurposeInvite, secret)
	if errors.Is(err, storage.ErrNotFound) {
		t, err = h.linkToken(ctx, storage.PurposeRegister, secret)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		h.joinLinkInvalid(w, l)
		return storage.AccountToken{}, false
	case err != nil:
		h.serverError(w, r, "get account token", err, "")
		return storage.AccountToken{}, false
	case t.Purpose == storage.PurposeRegister && h.signup != RegistrationOpen:
		// Registered while registration was open; it is not any more.
		h.pages.Error(w, l, http.StatusForbidden, l.T("join.closed"))
		return storage.AccountToken{}, false
	}
	return t, true
}

// joinLinkInvalid says, in language l, that an invitation or
// registration link has expired or was used.
func (h *Handler) joinLinkInvalid(w http.ResponseWriter, l templates.Lang) {
	h.pages.Render(w, l, http.StatusNotFound, "notice.html", noticePage{
		Title: l.T("join.link_title"), Message: l.T("join.link_invalid"), Next: "/login", Action: l.T("button.sign_in"),
	})
}

// newUserID returns a new user's random, opaque ID: 128 bits,
// base64url-encoded, like `twostep user add` makes.
func (h *Handler) newUserID() (string, error) { return randomBase64(h.rand, userIDBytes) }

// validName accepts a display name of at most maxNameLength printable
// characters; "" is allowed.
func validName(name string) bool {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLength {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// newPasswordProblem says, in language l, why p refuses password as the
// new password of the account username with address email, or returns
// "" if p accepts it. Check's own error is in English for the command
// line; the pages say the same in the reader's language.
func newPasswordProblem(l templates.Lang, p PasswordPolicy, password, username, email string) string {
	if p.Check(password, username, email) == nil {
		return ""
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < p.minLength():
		return l.T("join.password_short", "min", p.minLength())
	case n > MaxPasswordLength:
		return l.T("join.password_long", "max", MaxPasswordLength)
	case username != "" && strings.EqualFold(password, username),
		email != "" && strings.EqualFold(password, email):
		return l.T("join.password_name")
	}
	return l.T("join.password_breached")
}
