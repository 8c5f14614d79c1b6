package login

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// accountPath is the self-service account page. A login that serves no
// authorization request ends there.
const accountPath = "/account"

// recentLogin is how long after its login a session may replace the
// authenticator or the recovery codes without signing in again: a
// browser left open for hours is not the user.
const recentLogin = 15 * time.Minute

// accountRoutes registers the account page and its forms. Every change is
// a POST carrying the session's CSRF token, but for the verification of an
// email address, whose link's secret is in the form instead.
func (h *Handler) accountRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+accountPath, h.showAccount)
	mux.HandleFunc("POST /account/profile", h.submitProfile)
	mux.HandleFunc("POST /account/email", h.resendVerification)
	mux.HandleFunc("GET /account/verify-email", h.showVerifyEmail)
	mux.HandleFunc("POST /account/verify-email", h.submitVerifyEmail)
	mux.HandleFunc("POST /account/password", h.submitNewPassword)
	mux.HandleFunc("GET /account/authenticator", h.showReplaceTOTP)
	mux.HandleFunc("POST /account/authenticator", h.submitReplaceTOTP)
	mux.HandleFunc("POST /account/recovery-codes", h.regenerateRecoveryCodes)
	mux.HandleFunc("POST /account/devices/revoke", h.revokeDevice)
	mux.HandleFunc("POST /account/apps/revoke", h.revokeApp)
	mux.HandleFunc("POST /account/sessions/revoke", h.revokeSession)
	mux.HandleFunc("POST /account/sessions/revoke-all", h.revokeAllSessions)
}

// accountPage is the data of account.html.
type accountPage struct {
	CSRFToken string
	Username  string
	// Notice says what the last change did; Error that a form was
	// refused, whose section says why.
	Notice   string
	Error    string
	Profile  profileForm
	Password passwordForm
	// MinPassword is the policy's shortest new password.
	MinPassword int
	// TOTPSince is when the authenticator was set up.
	TOTPSince string
	CodesLeft int
	Devices   []deviceRow
	Apps      []appRow
	Sessions  []sessionRow
}

// profileForm is the profile section of account.html.
type profileForm struct {
	Name  string
	Email string
	// Verified says whether Email is the stored, verified address.
	Verified bool
	// MailOff says that addresses cannot be verified: no mail is set up.
	MailOff bool
	// Resend offers to mail a new verification link for the stored
	// address.
	Resend     bool
	NameError  string
	EmailError string
}

// passwordForm is the change-password section of account.html; every
// field is empty again when it is shown.
type passwordForm struct {
	Error        string
	CurrentError string
	CodeError    string
	NewError     string
	ConfirmError string
}

// deviceRow is a remembered browser as account.html lists it.
type deviceRow struct {
	ID string
	// Browser names the browser in a few words; UserAgent is its whole
	// User-Agent.
	Browser   string
	UserAgent string
	IP        string
	Since     string
	LastUsed  string
}

// appRow is a client the user consented to.
type appRow struct {
	ClientID string
	Name     string
	Scopes   string
	Since    string
}

// sessionRow is a completed login of the user.
type sessionRow struct {
	SID       string
	Browser   string
	Started   string
	IP        string
	UserAgent string
	// Current marks the session of the browser looking at the page.
	Current bool
}

// accountTime writes a time for the account page: in UTC, to the minute,
// the same in every language.
func accountTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// accountSession loads the browser's login session and its user for the
// account page. The page needs both factors checked in this login: a
// browser without a session, one half-way through the login, and one
// that skipped the code as a remembered device go to the password page,
// which starts a login that always asks for the code and then comes back
// here. A disabled or deleted user's session is ended.
func (h *Handler) accountSession(w http.ResponseWriter, r *http.Request) (storage.LoginSession, storage.User, bool) {
	ls, err := h.Current(r)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		redirect(w, r, "/login")
		return storage.LoginSession{}, storage.User{}, false
	case err != nil:
		h.serverError(w, r, "load login session", err, "")
		return storage.LoginSession{}, storage.User{}, false
	}
	if ls.ACR != storage.ACRTOTP && ls.ACR != storage.ACRRecoveryCode {
		redirect(w, r, "/login")
		return storage.LoginSession{}, storage.User{}, false
	}
	u, err := h.store.GetUser(r.Context(), ls.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.serverError(w, r, "get user", err, ls.UserID)
		return storage.LoginSession{}, storage.User{}, false
	}
	if err == nil && !u.Disabled {
		return ls, u, true
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: disabled or deleted user refused at the account page",
		slog.String("request_id", requestID(w)), slog.String("user_id", ls.UserID))
	if err := h.store.DeleteLoginSession(r.Context(), ls.ID); err != nil {
		h.serverError(w, r, "delete login session", err, ls.UserID)
		return storage.LoginSession{}, storage.User{}, false
	}
	h.clearCookie(w)
	l := templates.PickLang(r, "")
	h.pages.Error(w, l, http.StatusForbidden, l.T("login.account_disabled"))
	return storage.LoginSession{}, storage.User{}, false
}

// accountForm reads a form posted to the account page: bounded in size,
// from a session accountSession accepts, carrying that session's CSRF
// token. Otherwise it writes the answer, changes nothing and returns
// false. l is the page's language.
func (h *Handler) accountForm(w http.ResponseWriter, r *http.Request) (ls storage.LoginSession, u storage.User, l templates.Lang, ok bool) {
	if !h.parseForm(w, r) {
		return ls, u, l, false
	}
	if ls, u, ok = h.accountSession(w, r); !ok {
		return ls, u, l, false
	}
	l = templates.PickLang(r, "")
	token := r.PostForm.Get("csrf_token")
	if ls.CSRFToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ls.CSRFToken)) != 1 {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: csrf token mismatch",
			slog.String("request_id", requestID(w)), slog.String("step", "account"), slog.String("user_id", u.ID))
		h.pages.Error(w, l, http.StatusForbidden, l.T("login.bad_csrf"))
		return ls, u, l, false
	}
	return ls, u, l, true
}

// recent reports whether the session's login is recent enough to change
// the second factor. Otherwise it asks the user, in language l, to sign
// in again.
func (h *Handler) recent(w http.ResponseWriter, l templates.Lang, ls storage.LoginSession) bool {
	if h.now().Sub(ls.AuthTime) <= recentLogin {
		return true
	}
	h.pages.Render(w, l, http.StatusForbidden, "notice.html", noticePage{
		Title:   l.T("account.reauth_title"),
		Message: l.T("account.reauth", "wait", l.N("time.minutes", int(recentLogin.Minutes()))),
		Next:    "/login",
		Action:  l.T("totp.sign_in_again"),
	})
	return false
}

// done sends the browser back to the account page after a change, which
// the page then names: a redirect, so that reloading the page does not
// post the form again.
func done(w http.ResponseWriter, r *http.Request, what string) {
	redirect(w, r, accountPath+"?"+url.Values{"done": {what}}.Encode())
}

// doneNotice is what the account page says after the change `what` (a
// value done was given); "" for anything else.
func doneNotice(l templates.Lang, what string) string {
	switch what {
	case "profile":
		return l.T("account.done.profile")
	case "email_sent":
		return l.T("account.done.email_sent")
	case "email_not_sent":
		return l.T("account.done.email_not_sent")
	case "password":
		return l.T("account.done.password")
	case "totp":
		return l.T("account.done.totp")
	case "device":
		return l.T("account.done.device")
	case "app":
		return l.T("account.done.app")
	case "session":
		return l.T("account.done.session")
	}
	return ""
}

// showAccount serves GET /account: the overview of the account.
func (h *Handler) showAccount(w http.ResponseWriter, r *http.Request) {
	ls, u, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	l := templates.PickLang(r, "")
	h.renderAccount(w, r, l, http.StatusOK, ls, u, accountPage{Notice: doneNotice(l, r.URL.Query().Get("done"))})
}

// renderAccount shows account.html for u, in language l, with the forms'
// messages in page; what the page lists is loaded here. A zero
// page.Profile shows the stored profile.
func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, l templates.Lang, status int, ls storage.LoginSession, u storage.User, page accountPage) {
	ctx := r.Context()
	page.CSRFToken = ls.CSRFToken
	page.Username = u.Username
	if status >= http.StatusBadRequest {
		page.Error = l.T("account.error")
	}
	page.MinPassword = h.policy.minLength()
	page.TOTPSince = accountTime(u.TOTPConfirmedAt)
	if page.Profile == (profileForm{}) {
		page.Profile = profileForm{Name: u.Name, Email: u.Email}
	}
	page.Profile.Verified = u.EmailVerified && page.Profile.Email == u.Email
	page.Profile.MailOff = h.mailer == nil
	page.Profile.Resend = h.mailer != nil && u.Email != "" && !u.EmailVerified

	var err error
	if page.CodesLeft, err = h.store.RecoveryCodesLeft(ctx, u.ID); err != nil {
		h.serverError(w, r, "count recovery codes", err, u.ID)
		return
	}
	devices, err := h.store.ListDevices(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list devices", err, u.ID)
		return
	}
	for _, d := range devices {
		page.Devices = append(page.Devices, deviceRow{
			ID: d.ID, Browser: describeBrowser(l, d.UserAgent), UserAgent: d.UserAgent, IP: d.IP,
			Since: accountTime(d.CreatedAt), LastUsed: accountTime(d.LastUsedAt),
		})
	}
	grants, err := h.store.ListGrants(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list grants", err, u.ID)
		return
	}
	for _, g := range grants {
		name, err := h.clientName(ctx, storage.AuthRequest{ClientID: g.ClientID})
		if err != nil {
			h.serverError(w, r, "get client", err, u.ID)
			return
		}
		page.Apps = append(page.Apps, appRow{
			ClientID: g.ClientID, Name: name, Scopes: strings.Join(g.Scopes, " "), Since: accountTime(g.CreatedAt),
		})
	}
	sessions, err := h.store.ListUserLoginSessions(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list login sessions", err, u.ID)
		return
	}
	for _, s := range sessions {
		page.Sessions = append(page.Sessions, sessionRow{
			SID: s.SID, Browser: describeBrowser(l, s.UserAgent), Started: accountTime(s.AuthTime), IP: s.IP,
			UserAgent: s.UserAgent, Current: s.ID == ls.ID,
		})
	}
	h.pages.Render(w, l, status, "account.html", page)
}

// The browsers and systems describeBrowser recognises, by a token of
// their User-Agent, the more specific first: Edge's and Opera's also name
// Chrome and Safari, Chrome's on iOS and Android's name Safari, an
// iPhone's names Mac OS X and Android's Linux.
var (
	uaBrowsers = [][2]string{
		{"Edg/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"}, {"CriOS/", "Chrome"}, {"FxiOS/", "Firefox"},
		{"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	}
	uaSystems = [][2]string{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Windows", "Windows"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	}
)

// describeBrowser names the browser and system of a User-Agent in a few
// words of language l ("Firefox on Linux"), or the User-Agent itself when
// it names neither.
func describeBrowser(l templates.Lang, ua string) string {
	find := func(known [][2]string) string {
		for _, k := range known {
			if strings.Contains(ua, k[0]) {
				return k[1]
			}
		}
		return ""
	}
	browser, system := find(uaBrowsers), find(uaSystems)
	switch {
	case browser != "" && system != "":
		return l.T("account.browser_on", "browser", browser, "system", system)
	case browser != "" || system != "":
		return browser + system
	case ua != "":
		return ua
	}
	return l.T("account.unknown_browser")
}

// auditID shortens an identifier for the audit log: enough to tell rows
// apart, too little to stand for them.
func auditID(id string) string { return id[:min(len(id), 12)] }
