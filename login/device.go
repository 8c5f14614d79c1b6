package login

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twostep/twostep/storage"
)

// DeviceCookieName is the cookie of a remembered browser. It is sent only
// to the login pages.
const DeviceCookieName = "twostep_device"

// maxUserAgent bounds the user agent kept with a remembered device or a
// login session.
const maxUserAgent = 256

// userAgent is r's User-Agent as valid UTF-8, cut to at most maxUserAgent
// bytes on a character boundary.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(r.UserAgent(), "\uFFFD")
	n := min(len(ua), maxUserAgent)
	for n < len(ua) && n > 0 && !utf8.RuneStart(ua[n]) {
		n--
	}
	return ua[:n]
}

// rememberDevice remembers this browser for u after a TOTP code: a row
// keyed by the hash of a new random cookie value. A failure is logged and
// costs the user only the shortcut.
func (h *Handler) rememberDevice(w http.ResponseWriter, r *http.Request, u storage.User, clientID string, now time.Time) {
	value, err := h.newToken()
	if err == nil {
		err = h.store.CreateDevice(r.Context(), storage.Device{
			ID: sessionID(value), UserID: u.ID, UserAgent: userAgent(r), IP: clientIP(r),
			CreatedAt: now, ExpiresAt: now.Add(h.remember),
		})
	}
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "login: remember device",
			slog.String("request_id", requestID(w)), slog.String("user_id", u.ID), slog.String("error", err.Error()))
		return
	}
	h.record(r, storage.AuditEvent{Event: "device.remembered", Outcome: "success", UserID: u.ID, ClientID: clientID,
		Detail: sessionID(value)[:12]})
	http.SetCookie(w, &http.Cookie{
		Name:     DeviceCookieName,
		Value:    value,
		Path:     "/login",
		MaxAge:   int(h.remember.Seconds()),
		Expires:  now.Add(h.remember),
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteStrictMode,
	})
}

// rememberedDevice returns the device this browser was remembered as for
// u, if the feature is on, u still has the authenticator that verified it,
// it is younger than RememberDevice, and the login serves an authorization
// request that does not ask for a fresh second factor. A login that serves
// none leads to the account page, which always wants the code.
// Any doubt, a database failure included, means no: the TOTP step follows.
func (h *Handler) rememberedDevice(w http.ResponseWriter, r *http.Request, u storage.User, ar storage.AuthRequest, now time.Time) (storage.Device, bool) {
	if h.remember <= 0 || !u.HasTOTP() || ar.ID == "" {
		return storage.Device{}, false
	}
	c, err := r.Cookie(DeviceCookieName)
	if err != nil || !validToken(c.Value) {
		return storage.Device{}, false
	}
	d, err := h.store.UseDevice(r.Context(), sessionID(c.Value), u.ID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "login: look up remembered device",
				slog.String("request_id", requestID(w)), slog.String("user_id", u.ID), slog.String("error", err.Error()))
		}
		return storage.Device{}, false
	}
	// A device remembered under a longer RememberDevice than today's counts
	// only as long as today's allows.
	if now.Sub(d.CreatedAt) >= h.remember || freshFactorRequired(ar, d.CreatedAt, now) {
		return storage.Device{}, false
	}
	return d, true
}

// freshFactorRequired reports whether the authorization request wants a
// second factor checked now rather than when the device was remembered:
// prompt=login, a max_age shorter than the device's age (OpenID Connect
// Core 1.0 §3.1.2.1), or acr_values naming the TOTP class.
func freshFactorRequired(ar storage.AuthRequest, verifiedAt, now time.Time) bool {
	if slices.Contains(strings.Fields(ar.Form.Get("prompt")), "login") {
		return true
	}
	if slices.Contains(strings.Fields(ar.Form.Get("acr_values")), storage.ACRTOTP) {
		return true
	}
	if v := ar.Form.Get("max_age"); v != "" {
		maxAge, err := strconv.ParseInt(v, 10, 64)
		if err != nil || maxAge < 0 || now.Sub(verifiedAt) > time.Duration(maxAge)*time.Second {
			return true
		}
	}
	return false
}
