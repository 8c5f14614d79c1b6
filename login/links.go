package login

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/twostep/twostep/mail"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// How long each kind of one-time link works.
const (
	// DefaultInviteLifetime is how long an invitation works unless the
	// administrator says otherwise.
	DefaultInviteLifetime = 7 * 24 * time.Hour
	registerLifetime      = 24 * time.Hour
	verifyEmailLifetime   = 24 * time.Hour
	// resetLifetime is short: the link is mailed, and mailboxes leak.
	resetLifetime = 30 * time.Minute
)

// errNoMail is returned when a feature needs mail and none is configured.
var errNoMail = errors.New("mail is not configured")

// newLink stores t, with a fresh secret as its ID's preimage and expiring
// after lifetime, and returns the URL of path on baseURL that carries the
// secret. The database keeps only the secret's hash, like a session
// cookie's.
func newLink(ctx context.Context, store *storage.Store, newToken func() (string, error), baseURL, path string, t storage.AccountToken, lifetime time.Duration, now time.Time) (string, error) {
	secret, err := newToken()
	if err != nil {
		return "", err
	}
	t.ID = sessionID(secret)
	t.CreatedAt = now
	t.ExpiresAt = now.Add(lifetime)
	if err := store.CreateAccountToken(ctx, t); err != nil {
		return "", fmt.Errorf("store %s link: %w", t.Purpose, err)
	}
	return baseURL + path + "?" + url.Values{"token": {secret}}.Encode(), nil
}

// link is newLink with the handler's store, randomness, base URL and
// clock.
func (h *Handler) link(ctx context.Context, path string, t storage.AccountToken, lifetime time.Duration) (string, error) {
	return newLink(ctx, h.store, h.newToken, h.baseURL, path, t, lifetime, h.now())
}

// sendMail renders the mail `name` in language l with data and sends it
// to the address to; errNoMail when mail is off.
func sendMail(ctx context.Context, mailer Mailer, pages *templates.Pages, l templates.Lang, to, name string, data any) error {
	if mailer == nil {
		return errNoMail
	}
	m, err := pages.Mail(l, name, data)
	if err != nil {
		return err
	}
	if err := mailer.Send(ctx, mail.Message{To: to, Subject: m.Subject, Text: m.Text, HTML: m.HTML}); err != nil {
		return fmt.Errorf("send %s mail: %w", name, err)
	}
	return nil
}

// linkToken returns the unused, unexpired token of purpose that the
// secret in a link names; a malformed secret is storage.ErrNotFound
// without a database lookup.
func (h *Handler) linkToken(ctx context.Context, purpose, secret string) (storage.AccountToken, error) {
	if !validToken(secret) {
		return storage.AccountToken{}, fmt.Errorf("link token: %w", storage.ErrNotFound)
	}
	return h.store.GetAccountToken(ctx, purpose, sessionID(secret))
}
