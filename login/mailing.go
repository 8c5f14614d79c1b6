package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twostep/twostep/templates"
)

// mailTimeout bounds the work a request for a mailed link leaves behind:
// the lookups, the link and its delivery.
const mailTimeout = time.Minute

// The throttles of the forms that mail a link (/register and
// /login/forgot), which anyone may post: per address, so that nobody's
// mailbox is flooded, and per client address, so that nobody sprays mail
// at many addresses. Every request counts, whether it mails anything or
// not, so the throttle says nothing about which addresses have accounts.
func mailAddressThrottle() Backoff {
	return Backoff{After: 3, Base: time.Minute, LockAfter: 8, Lock: time.Hour}
}

func mailIPThrottle() Backoff {
	return Backoff{After: 20, Base: time.Second, LockAfter: 60, Lock: 15 * time.Minute}
}

// mailAddressKey throttles requests for mailed links per recipient; it
// hashes the lower-cased address, so the throttles table holds none.
func mailAddressKey(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return "mail:address:" + hex.EncodeToString(sum[:])
}

// mailIPKey throttles requests for mailed links per client address (an
// IPv6 /64 as one), apart from the password throttle's count.
func mailIPKey(ip string) string { return "mail:" + ipKey(ip) }

// throttleMail counts a request to mail email a link, per client address
// and per recipient. When either is blocked it writes the form page
// `page` in language l, with data(msg) as its data, msg telling how long
// to wait, and returns false.
func (h *Handler) throttleMail(w http.ResponseWriter, r *http.Request, l templates.Lang, email, page string, data func(msg string) any) bool {
	ctx := r.Context()
	ipk := mailIPKey(clientIP(r))
	ok, until, err := h.reserve(ctx, ipk, mailIPThrottle())
	if err == nil && ok {
		if ok, until, err = h.reserve(ctx, mailAddressKey(email), mailAddressThrottle()); err == nil && !ok {
			err = h.store.RefundAttempt(ctx, ipk)
		}
	}
	if err != nil {
		h.serverError(w, r, "throttle mail", err, "")
		return false
	}
	if ok {
		return true
	}
	secs := max(1, int(math.Ceil(until.Sub(h.now()).Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.pages.Render(w, l, http.StatusTooManyRequests, page, data(tooManyAttempts(l, time.Duration(secs)*time.Second)))
	return false
}

// inBackground runs send off the request path, so that the answer takes
// the same time whether send has anything to look up, store or mail. It
// gets a context of its own, which the client going away does not cancel,
// bounded by mailTimeout; its failure is logged. Wait waits for it.
func (h *Handler) inBackground(w http.ResponseWriter, r *http.Request, what string, send func(ctx context.Context, r *http.Request) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), mailTimeout)
	// The request is done with when the handler returns; the audit log
	// still wants its address and user agent.
	rc := r.Clone(ctx)
	id := requestID(w)
	h.mailing.Add(1)
	go func() {
		defer h.mailing.Done()
		defer cancel()
		if err := send(ctx, rc); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "login: "+what,
				slog.String("request_id", id), slog.String("error", err.Error()))
		}
	}()
}

// Wait blocks until the mail the Handler sends off the request path
// (registration and password reset links) has been sent or has failed.
// Call it once the server has stopped, before closing the Store.
func (h *Handler) Wait() { h.mailing.Wait() }
