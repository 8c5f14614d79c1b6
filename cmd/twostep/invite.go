package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// runUserInvite is `twostep user invite EMAIL`: it prints a one-time link
// that creates the account, and mails it when mail is configured.
func runUserInvite(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("user invite", e)
	var (
		db                     dbFlags
		mf                     mailFlags
		username, groups, lang string
		issuer, brandName      string
		lifetime               time.Duration
	)
	db.register(fs, e)
	mf.register(fs, e)
	fs.StringVar(&username, "username", "", "username of the new account (default: the email address)")
	fs.StringVar(&groups, "groups", "", "comma-separated groups of the new account")
	fs.DurationVar(&lifetime, "expires", login.DefaultInviteLifetime, "how long the link works, from 1m to 720h")
	fs.StringVar(&lang, "lang", string(templates.English), "language of the mail: en, fr or de")
	fs.StringVar(&issuer, "issuer", envOr(e, "TWOSTEP_ISSUER", "http://localhost:8080"), "issuer URL, as browsers reach it, for the link (env TWOSTEP_ISSUER)")
	fs.StringVar(&brandName, "brand-name", envOr(e, "TWOSTEP_BRAND_NAME", "twostep"), "name the mail gives the service (env TWOSTEP_BRAND_NAME)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprint(e.stderr, userUsage)
		return fmt.Errorf("user invite: want 1 argument (the email address), got %d", len(pos))
	}

	// Validate everything before touching the database.
	base, err := checkIssuer(issuer)
	if err != nil {
		return fmt.Errorf("user invite: %w", err)
	}
	l, err := parseLang(lang)
	if err != nil {
		return fmt.Errorf("user invite: --lang: %w", err)
	}
	mailer, err := mf.mailer()
	if err != nil {
		return fmt.Errorf("user invite: %w", err)
	}
	pages, err := templates.Parse(templates.Brand{Name: brandName})
	if err != nil {
		return err
	}
	inv := login.Invitation{Email: pos[0], Username: username, Groups: splitGroups(groups), Lifetime: lifetime, Lang: l}

	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	got, err := invite(ctx, store, cliAuditor(e, store).recordCLI, accountSettings{mailer: mailer, pages: pages, baseURL: base.String()}, inv)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "invited %s as %s; the link works once, until %s:\n%s\n",
		inv.Email, got.Username, got.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"), got.Link)
	switch {
	case got.Mailed:
		fmt.Fprintf(e.stdout, "mailed to %s\n", inv.Email)
	case got.MailError != nil:
		return fmt.Errorf("user invite: the invitation stands, but mailing it failed: %w; give the link to %s yourself", got.MailError, inv.Email)
	default:
		fmt.Fprintf(e.stdout, "not mailed (no --smtp-url): give the link to %s yourself\n", inv.Email)
	}
	return nil
}

// invite makes an invitation with the server's account settings and
// records it: the one code path of `user invite` and POST
// /admin/invitations.
func invite(ctx context.Context, store *storage.Store, record recordFunc, acc accountSettings, inv login.Invitation) (login.Invited, error) {
	got, err := login.Invite(ctx, store, acc.mailer, acc.pages, acc.baseURL, inv, time.Now())
	switch {
	case errors.Is(err, login.ErrInvalidInvitation):
		return got, badInput(fmt.Errorf("user invite: %w", err))
	case errors.Is(err, storage.ErrAlreadyExists):
		return got, conflict(fmt.Errorf("user invite: a user named %q already exists", firstOf(inv.Username, inv.Email)))
	case err != nil:
		return got, err
	}
	detail := fmt.Sprintf("%s until %s, mailed", got.Username, got.ExpiresAt.UTC().Format(time.RFC3339))
	if !got.Mailed {
		detail += " no"
	}
	record(ctx, storage.AuditEvent{Event: "user.invited", Detail: detail})
	return got, nil
}

// firstOf returns the first of its arguments that is not "".
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// splitGroups splits a comma-separated list, dropping empty entries.
func splitGroups(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// parseLang is the language of the pages named s; "" is English.
func parseLang(s string) (templates.Lang, error) {
	if s == "" {
		return templates.English, nil
	}
	for _, l := range templates.Langs() {
		if string(l) == s {
			return l, nil
		}
	}
	return "", fmt.Errorf("%q is not a language of the pages; want en, fr or de", s)
}

// adminInvitation is an invitation as the admin API shows it, once.
type adminInvitation struct {
	Username  string    `json:"username"`
	Link      string    `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
	Mailed    bool      `json:"mailed"`
	// MailError says why mailing failed; the link works all the same.
	MailError string `json:"mail_error,omitempty"`
}

// addInvitation answers POST /admin/invitations {email, username, groups,
// expires, lang} with 201 and the link, which is shown only here.
func (a *adminAPI) addInvitation(r *http.Request) (int, any, error) {
	var in struct {
		Email    string   `json:"email"`
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
		// Expires is how long the link works, e.g. "168h"; "" is the
		// default.
		Expires string `json:"expires"`
		Lang    string `json:"lang"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var lifetime time.Duration
	if in.Expires != "" {
		d, err := time.ParseDuration(in.Expires)
		if err != nil || d <= 0 {
			return 0, nil, badInput(fmt.Errorf("expires must be a positive duration such as 168h, got %q", in.Expires))
		}
		lifetime = d
	}
	l, err := parseLang(in.Lang)
	if err != nil {
		return 0, nil, badInput(fmt.Errorf("lang: %w", err))
	}
	got, err := invite(r.Context(), a.store, a.record(r), a.accounts, login.Invitation{
		Email: in.Email, Username: in.Username, Groups: in.Groups, Lifetime: lifetime, Lang: l,
	})
	if err != nil {
		return 0, nil, err
	}
	out := adminInvitation{Username: got.Username, Link: got.Link, ExpiresAt: got.ExpiresAt.UTC(), Mailed: got.Mailed}
	if got.MailError != nil {
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: mail invitation", slog.String("err", got.MailError.Error()))
		out.MailError = got.MailError.Error()
	}
	return http.StatusCreated, out, nil
}
