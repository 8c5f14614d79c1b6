package login

import (
	"context"
	"fmt"
	"net/http"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// registerPage is the data of register.html.
type registerPage struct {
	Email string
	// Error concerns the whole form (throttling); EmailError sits next to
	// the field.
	Error      string
	EmailError string
}

// showRegister serves GET /register: the form where anyone asks for a
// link that creates an account, when registration is open.
func (h *Handler) showRegister(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	if h.signup != RegistrationOpen {
		h.registrationClosed(w, l)
		return
	}
	h.pages.Render(w, l, http.StatusOK, "register.html", registerPage{})
}

// submitRegister serves POST /register. Whether or not the address has
// an account, the answer is the same page, as fast: the lookup and the
// mail happen after it. An address without an account gets a link that
// creates one (so it exists only once the address is proven); one with an
// account gets a mail that says so and how to reset the password.
func (h *Handler) submitRegister(w http.ResponseWriter, r *http.Request) {
	l := templates.PickLang(r, "")
	if h.signup != RegistrationOpen {
		h.registrationClosed(w, l)
		return
	}
	if !h.parseForm(w, r) {
		return
	}
	typed := r.PostForm.Get("email")
	email, ok := parseEmail(typed)
	if ok && checkUsername(email) != nil {
		// The address becomes the username, which it cannot be.
		ok = false
	}
	if !ok {
		h.pages.Render(w, l, http.StatusUnprocessableEntity, "register.html", registerPage{
			Email: typed, EmailError: l.T("register.bad_email"),
		})
		return
	}
	if !h.throttleMail(w, r, l, email, "register.html", func(msg string) any {
		return registerPage{Email: email, Error: msg}
	}) {
		return
	}
	h.inBackground(w, r, "registration mail", func(ctx context.Context, _ *http.Request) error {
		return h.mailRegistration(ctx, l, email)
	})
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("register.sent_title"), Message: l.T("register.sent", "email", email),
	})
}

// mailRegistration sends email, in language l, a link that creates an
// account for it, or, if an account has the address, a mail that says so.
func (h *Handler) mailRegistration(ctx context.Context, l templates.Lang, email string) error {
	users, err := h.store.UsersByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("find users by email: %w", err)
	}
	if len(users) > 0 {
		return sendMail(ctx, h.mailer, h.pages, l, email, "register-exists", inviteMail{Link: h.baseURL + "/login/forgot"})
	}
	t := storage.AccountToken{Purpose: storage.PurposeRegister, Email: email, Username: email}
	now := h.now()
	link, err := newLink(ctx, h.store, h.newToken, h.baseURL, "/join", t, registerLifetime, now)
	if err != nil {
		return err
	}
	return sendMail(ctx, h.mailer, h.pages, l, email, "register", inviteMail{
		Link: link, Expires: mailExpiry(now.Add(registerLifetime)), Username: email,
	})
}

// registrationClosed says, in language l, that nobody may register here.
// It answers 404: the page exists only when registration is open.
func (h *Handler) registrationClosed(w http.ResponseWriter, l templates.Lang) {
	h.pages.Render(w, l, http.StatusNotFound, "notice.html", noticePage{
		Title: l.T("register.closed_title"), Message: l.T("register.closed"), Next: "/login", Action: l.T("button.sign_in"),
	})
}
