package login

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// The bounds of Invitation.Lifetime.
const (
	MinInviteLifetime = time.Minute
	MaxInviteLifetime = 30 * 24 * time.Hour
)

// ErrInvalidInvitation is wrapped by Invite's error for an invitation it
// refuses before storing anything: its text says what to change. A taken
// username wraps storage.ErrAlreadyExists instead.
var ErrInvalidInvitation = errors.New("invalid invitation")

// Invitation is what an administrator invites someone with.
type Invitation struct {
	// Email is where the invitation goes, a bare address; required.
	Email string
	// Username is the new account's; the email address when empty.
	Username string
	// Groups are the new account's groups; none may contain a comma.
	Groups []string
	// Lifetime is how long the link works: DefaultInviteLifetime when
	// zero, otherwise from MinInviteLifetime to MaxInviteLifetime.
	Lifetime time.Duration
	// Lang is the language of the mail; English when empty.
	Lang templates.Lang
}

// Invited is an invitation made by Invite.
type Invited struct {
	// Username is the account the link creates.
	Username string
	// Link is the one-time link that creates the account; it is not
	// stored anywhere (the database keeps its hash), so it is shown once.
	Link      string
	ExpiresAt time.Time
	// Mailed says whether the link was sent to the address. When a mailer
	// was given and sending failed, MailError says why; the link works
	// all the same, and can be handed over another way.
	Mailed    bool
	MailError error
}

// inviteMail is the data of every mail with a link: invite, register,
// register-exists (no Expires), reset and verify-email.
type inviteMail struct {
	Link string
	// Expires is when the link stops working, as mailExpiry writes it.
	Expires  string
	Username string
}

// mailExpiry writes a link's expiry for a mail: in UTC, to the minute,
// the same in every language.
func mailExpiry(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// Invite checks inv, stores a one-time link to baseURL's /join that
// creates the account with a password and an authenticator, and mails it
// when mailer is not nil, rendered from pages. It is the one way the
// command line and the admin API invite someone. An invitation it refuses
// wraps ErrInvalidInvitation, a taken username storage.ErrAlreadyExists;
// a failure to mail is not an error (see Invited.MailError).
//
// now is the time of the invitation, from the Store's clock; the link
// expires inv.Lifetime after it.
func Invite(ctx context.Context, store *storage.Store, mailer Mailer, pages *templates.Pages, baseURL string, inv Invitation, now time.Time) (Invited, error) {
	email, ok := parseEmail(inv.Email)
	if !ok {
		return Invited{}, fmt.Errorf("%w: %q is not an email address", ErrInvalidInvitation, inv.Email)
	}
	username := inv.Username
	if username == "" {
		username = email
	}
	if err := checkUsername(username); err != nil {
		if inv.Username == "" {
			return Invited{}, fmt.Errorf("%w: the address cannot be the username (%v); give a username", ErrInvalidInvitation, err)
		}
		return Invited{}, fmt.Errorf("%w: %v", ErrInvalidInvitation, err)
	}
	var groups []string
	for _, g := range inv.Groups {
		g = strings.TrimSpace(g)
		switch {
		case g == "":
			continue
		case strings.Contains(g, ","):
			return Invited{}, fmt.Errorf("%w: group %q contains a comma", ErrInvalidInvitation, g)
		}
		groups = append(groups, g)
	}
	lifetime := inv.Lifetime
	if lifetime == 0 {
		lifetime = DefaultInviteLifetime
	}
	if lifetime < MinInviteLifetime || lifetime > MaxInviteLifetime {
		return Invited{}, fmt.Errorf("%w: the link must work for 1m to 720h (30 days), got %s", ErrInvalidInvitation, inv.Lifetime)
	}
	base, err := url.Parse(baseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return Invited{}, fmt.Errorf("%w: the base URL %q is not an absolute http(s) URL", ErrInvalidInvitation, baseURL)
	}
	// The account is created when the link is followed, and a username
	// taken by then is refused there; this check spares the invitee a
	// link that cannot work.
	_, err = store.GetUserByUsername(ctx, username)
	switch {
	case err == nil:
		return Invited{}, fmt.Errorf("invite: a user named %q already exists: %w", username, storage.ErrAlreadyExists)
	case !errors.Is(err, storage.ErrNotFound):
		return Invited{}, fmt.Errorf("invite: %w", err)
	}

	t := storage.AccountToken{Purpose: storage.PurposeInvite, Email: email, Username: username, Groups: groups}
	link, err := newLink(ctx, store, randomToken, strings.TrimSuffix(baseURL, "/"), "/join", t, lifetime, now)
	if err != nil {
		return Invited{}, fmt.Errorf("invite: %w", err)
	}
	out := Invited{Username: username, Link: link, ExpiresAt: now.Add(lifetime)}
	if mailer == nil {
		return out, nil
	}
	l := inv.Lang
	if l == "" {
		l = templates.English
	}
	err = sendMail(ctx, mailer, pages, l, email, "invite", inviteMail{Link: link, Expires: mailExpiry(out.ExpiresAt), Username: username})
	out.Mailed, out.MailError = err == nil, err
	return out, nil
}

// randomToken is Handler.newToken for Invite, which has no Handler: 256
// bits from crypto/rand, base64url-encoded.
func randomToken() (string, error) { return randomBase64(rand.Reader, tokenBytes) }

// maxEmailLength is the longest address accepted (RFC 5321 §4.5.3.1.3
// bounds a path to 256 octets, including the angle brackets).
const maxEmailLength = 254

// parseEmail returns s, trimmed, if it is one bare email address (no
// display name, no angle brackets, no line breaks).
func parseEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxEmailLength || strings.ContainsAny(s, "\r\n<>\" ") {
		return "", false
	}
	a, err := netmail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", false
	}
	return s, true
}

// maxUsernameLength bounds a username, as `twostep user add` does.
const maxUsernameLength = 64

// checkUsername accepts 1 to 64 bytes of printable characters without
// spaces, like `twostep user add`.
func checkUsername(name string) error {
	if name == "" || len(name) > maxUsernameLength {
		return fmt.Errorf("a username must be 1 to %d characters, got %d", maxUsernameLength, len(name))
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("username %q has a space or control character", name)
		}
	}
	return nil
}
