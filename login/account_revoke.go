package login

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// The revocations of the account page name a row of the user's: the
// store deletes it only if it is theirs, so an ID of another user's row
// changes nothing and gets the same answer as one that does not exist.

// revokeDevice serves POST /account/devices/revoke: a remembered browser
// must give a code again.
func (h *Handler) revokeDevice(w http.ResponseWriter, r *http.Request) {
	_, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	id := r.PostForm.Get("device")
	ev := storage.AuditEvent{Event: "device.revoked", UserID: u.ID, Detail: auditID(id)}
	if !h.revoked(w, r, l, ev, h.store.DeleteDevice(r.Context(), u.ID, id)) {
		return
	}
	done(w, r, "device")
}

// revokeApp serves POST /account/apps/revoke: the user's consent for a
// client is forgotten, and every code and token the client holds for the
// user is revoked with it.
func (h *Handler) revokeApp(w http.ResponseWriter, r *http.Request) {
	_, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	clientID := r.PostForm.Get("client_id")
	ev := storage.AuditEvent{Event: "consent.revoked", UserID: u.ID, ClientID: clientID}
	if !h.revoked(w, r, l, ev, h.store.RevokeGrant(r.Context(), u.ID, clientID)) {
		return
	}
	done(w, r, "app")
}

// revokeSession serves POST /account/sessions/revoke: one of the user's
// sessions, named by its sid, ends, and the clients it signed in to are
// told. Ending this browser's own session signs it out.
func (h *Handler) revokeSession(w http.ResponseWriter, r *http.Request) {
	ls, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	sid := r.PostForm.Get("sid")
	ev := storage.AuditEvent{Event: "session.revoked", UserID: u.ID, Detail: auditID(sid)}
	// The store ends no session for an empty sid.
	if !h.revoked(w, r, l, ev, h.store.DeleteUserLoginSessionBySID(r.Context(), u.ID, sid)) {
		return
	}
	// Only after the delete proved the session the user's.
	h.queueLogouts(w, r, u.ID, sid)
	if sid != ls.SID {
		done(w, r, "session")
		return
	}
	h.clearCookie(w)
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("account.signed_out_title"), Message: l.T("account.signed_out"), Next: "/login", Action: l.T("button.sign_in"),
	})
}

// revokeAllSessions serves POST /account/sessions/revoke-all: "sign out
// everywhere". Every login session of the user ends, this browser's and
// half-finished ones included, and the clients they signed in to are told.
func (h *Handler) revokeAllSessions(w http.ResponseWriter, r *http.Request) {
	_, u, l, ok := h.accountForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	sessions, err := h.store.ListUserLoginSessions(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, "list login sessions", err, u.ID)
		return
	}
	if err := h.store.DeleteUserLoginSessions(ctx, u.ID); err != nil {
		h.serverError(w, r, "delete login sessions", err, u.ID)
		return
	}
	sids := make([]string, 0, len(sessions))
	for _, s := range sessions {
		sids = append(sids, s.SID)
	}
	h.queueLogouts(w, r, u.ID, sids...)
	h.record(r, storage.AuditEvent{Event: "session.revoked_all", Outcome: "success", UserID: u.ID,
		Detail: fmt.Sprintf("%d sessions", len(sessions))})
	h.clearCookie(w)
	h.pages.Render(w, l, http.StatusOK, "notice.html", noticePage{
		Title: l.T("account.signed_out_title"), Message: l.T("account.signed_out_everywhere"), Next: "/login", Action: l.T("button.sign_in"),
	})
}

// revoked finishes a revocation that returned err: audited as ev, and
// true on success; a row that is not the user's (storage.ErrNotFound) is
// a 404 page in language l, any other failure the error page.
func (h *Handler) revoked(w http.ResponseWriter, r *http.Request, l templates.Lang, ev storage.AuditEvent, err error) bool {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		ev.Outcome = "failure"
		h.record(r, ev)
		h.pages.Error(w, l, http.StatusNotFound, l.T("account.gone"))
		return false
	case err != nil:
		h.serverError(w, r, ev.Event, err, ev.UserID)
		return false
	}
	ev.Outcome = "success"
	h.record(r, ev)
	return true
}
