package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

const (
	demoUser   = "demo"
	demoClient = "demo-app"
)

// runDemo serves twostep on SQLite with a demo user, a demo client and a
// small relying party at /demo/ that shows the ID token's claims after the
// login, so a newcomer sees the whole flow in a browser.
func runDemo(ctx context.Context, e env, args []string) error {
	srv, err := start(ctx, e, "demo", "sqlite:twostep-demo.db", args)
	if err != nil {
		return err
	}
	defer srv.Close()
	issuer := strings.TrimRight(srv.flags.issuer, "/")
	password, err := seedDemo(ctx, srv.store, issuer)
	if err != nil {
		return err
	}
	srv.mux.Handle("/demo/", &demoRP{issuer: issuer, pages: srv.pages, log: srv.log})
	fmt.Fprintf(e.stdout, `
twostep demo is running.

  Open       %s/demo/
  Username   %s
  Password   %s

The first login shows a QR code: scan it with an authenticator app (Google
Authenticator, Aegis, 1Password, ...) and enter the 6-digit code.
Stop with Ctrl-C.

`, issuer, demoUser, password)
	return srv.serve(ctx)
}

// seedDemo creates (or refreshes) the demo user and client and returns the
// demo user's new password.
func seedDemo(ctx context.Context, store *storage.Store, issuer string) (string, error) {
	password, err := randomString(12)
	if err != nil {
		return "", err
	}
	hash, err := login.NewHasher(login.DefaultParams()).Hash(password)
	if err != nil {
		return "", err
	}
	u, err := store.GetUserByUsername(ctx, demoUser)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		id, err := randomString(16)
		if err != nil {
			return "", err
		}
		if err := store.CreateUser(ctx, storage.User{
			ID: id, Username: demoUser, Email: "demo@example.com", EmailVerified: true,
			Name: "Demo User", Groups: []string{"demo"}, PasswordHash: hash,
		}); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		if err := store.SetPasswordHash(ctx, u.ID, hash, ""); err != nil {
			return "", err
		}
	}
	// The client's URIs follow the issuer, so recreate it each start.
	if err := store.DeleteClient(ctx, demoClient); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "", err
	}
	c, err := newClient(demoClient, "twostep demo app", []string{issuer + "/demo/callback"},
		[]string{issuer + "/demo/"}, true, false, false)
	if err != nil {
		return "", err
	}
	return password, store.CreateClient(ctx, c)
}

// demoRP is a minimal relying party: a public client using PKCE, go-oidc
// and x/oauth2, exactly as an application would.
type demoRP struct {
	issuer string
	pages  *templates.Pages
	log    *slog.Logger

	mu       sync.Mutex
	provider *gooidc.Provider
}

// demoPage is the data of demo.html.
type demoPage struct {
	Claims   string
	UserInfo string
	Logout   string
	Error    string
}

const demoCookie = "twostep_demo_rp"

func (d *demoRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/demo/":
		d.pages.Render(w, templates.PickLang(r, ""), http.StatusOK, "demo.html", demoPage{})
	case "/demo/login":
		d.login(w, r)
	case "/demo/callback":
		d.callback(w, r)
	default:
		http.NotFound(w, r)
	}
}

// discover fetches the provider metadata once, on first use (the server is
// not listening yet when the demo is built).
func (d *demoRP) discover(ctx context.Context) (*gooidc.Provider, *oauth2.Config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider == nil {
		p, err := gooidc.NewProvider(ctx, d.issuer)
		if err != nil {
			return nil, nil, err
		}
		d.provider = p
	}
	return d.provider, &oauth2.Config{
		ClientID:    demoClient,
		Endpoint:    d.provider.Endpoint(),
		RedirectURL: d.issuer + "/demo/callback",
		Scopes:      []string{gooidc.ScopeOpenID, "profile", "email", "groups"},
	}, nil
}

func (d *demoRP) login(w http.ResponseWriter, r *http.Request) {
	_, cfg, err := d.discover(r.Context())
	if err != nil {
		d.fail(w, r, "discovery failed: "+err.Error())
		return
	}
	state, err1 := randomString(16)
	nonce, err2 := randomString(16)
	if err1 != nil || err2 != nil {
		d.fail(w, r, "no randomness")
		return
	}
	verifier := oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{
		Name: demoCookie, Value: state + "." + nonce + "." + verifier, Path: "/demo/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 1800,
	})
	http.Redirect(w, r, cfg.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (d *demoRP) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		d.fail(w, r, "the provider answered "+e+": "+q.Get("error_description"))
		return
	}
	c, err := r.Cookie(demoCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(c.Value, ".")
	}
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(q.Get("state"))) != 1 {
		d.fail(w, r, "state mismatch: start again from /demo/")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: demoCookie, Path: "/demo/", MaxAge: -1})
	provider, cfg, err := d.discover(ctx)
	if err != nil {
		d.fail(w, r, "discovery failed: "+err.Error())
		return
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		d.fail(w, r, "code exchange failed: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := provider.Verifier(&gooidc.Config{ClientID: demoClient}).Verify(ctx, raw)
	if err != nil {
		d.fail(w, r, "ID token did not verify: "+err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(parts[1])) != 1 {
		d.fail(w, r, "nonce mismatch")
		return
	}
	var claims map[string]any
	idToken.Claims(&claims)
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	var infoClaims map[string]any
	if err == nil {
		info.Claims(&infoClaims)
	}
	logout := d.issuer + "/oauth2/logout?" + url.Values{
		"id_token_hint": {raw}, "post_logout_redirect_uri": {d.issuer + "/demo/"},
	}.Encode()
	d.pages.Render(w, templates.PickLang(r, ""), http.StatusOK, "demo.html", demoPage{Claims: pretty(claims), UserInfo: pretty(infoClaims), Logout: logout})
}

// fail shows what went wrong: msg, a developer's detail, follows a line in
// the browser's language.
func (d *demoRP) fail(w http.ResponseWriter, r *http.Request, msg string) {
	d.log.Warn("demo relying party", "err", msg)
	d.pages.Render(w, templates.PickLang(r, ""), http.StatusBadRequest, "demo.html", demoPage{Error: msg})
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
