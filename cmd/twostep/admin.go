package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/templates"
)

// The admin API is a JSON API for administrators on a listener of its own
// (--admin-addr, off by default), behind a bearer token from
// TWOSTEP_ADMIN_TOKEN. Each of its actions runs the same function as the
// command that does it on the command line (createUser, registerClient, ...), so
// validation, defaults, secrets and the audit record are written once.

// minAdminToken is the shortest admin token accepted: 32 characters of a
// random token are far beyond guessing over the network.
const minAdminToken = 32

// maxAdminBody bounds an admin request's body.
const maxAdminBody = 64 << 10

// adminError is an administrator's mistake rather than a failure: the
// command line prints it, the admin API answers it with its status.
type adminError struct {
	status int
	err    error
}

func (e *adminError) Error() string { return e.err.Error() }
func (e *adminError) Unwrap() error { return e.err }

func badInput(err error) error { return &adminError{http.StatusBadRequest, err} }
func notFound(err error) error { return &adminError{http.StatusNotFound, err} }
func conflict(err error) error { return &adminError{http.StatusConflict, err} }

// adminToken is the token the admin API requires, or "" with no
// --admin-addr. Serving it without a strong token is refused.
func adminToken(addr string, getenv func(string) string) (string, error) {
	if addr == "" {
		return "", nil
	}
	token := getenv("TWOSTEP_ADMIN_TOKEN")
	if len(token) < minAdminToken {
		return "", fmt.Errorf("--admin-addr needs TWOSTEP_ADMIN_TOKEN set to a random token of at least %d characters", minAdminToken)
	}
	return token, nil
}

// adminAPI serves /admin/.
type adminAPI struct {
	store *storage.Store
	audit *auditor
	log   *slog.Logger
	// accounts are the server's account settings: the password policy,
	// and the mailer (nil: no mail), pages and base URL of invitations.
	accounts accountSettings
	// tokenHash is the SHA-256 of the token: comparing digests of equal
	// length in constant time leaks neither the token nor its length.
	tokenHash [sha256.Size]byte
}

// accountSettings are what creating users and invitations needs of the
// server's configuration.
type accountSettings struct {
	policy  login.PasswordPolicy
	mailer  login.Mailer
	pages   *templates.Pages
	baseURL string
}

func newAdminAPI(store *storage.Store, audit *auditor, logger *slog.Logger, token string, accounts accountSettings) *adminAPI {
	return &adminAPI{store: store, audit: audit, log: logger, tokenHash: sha256.Sum256([]byte(token)), accounts: accounts}
}

// handler is the admin API's whole surface.
func (a *adminAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /admin/users", a.json(a.listUsers))
	mux.Handle("POST /admin/users", a.json(a.addUser))
	mux.Handle("POST /admin/users/{name}/disable", a.json(a.userAction(func(r *http.Request, rec recordFunc, u storage.User) error {
		return setUserDisabled(r.Context(), a.store, rec, u, true)
	})))
	mux.Handle("POST /admin/users/{name}/enable", a.json(a.userAction(func(r *http.Request, rec recordFunc, u storage.User) error {
		return setUserDisabled(r.Context(), a.store, rec, u, false)
	})))
	mux.Handle("POST /admin/users/{name}/unlock", a.json(a.userAction(func(r *http.Request, rec recordFunc, u storage.User) error {
		return unlockUser(r.Context(), a.store, rec, u)
	})))
	mux.Handle("POST /admin/users/{name}/reset-totp", a.json(a.userAction(func(r *http.Request, rec recordFunc, u storage.User) error {
		return resetTOTP(r.Context(), a.store, rec, u)
	})))
	mux.Handle("POST /admin/invitations", a.json(a.addInvitation))
	mux.Handle("GET /admin/clients", a.json(a.listClients))
	mux.Handle("POST /admin/clients", a.json(a.addClient))
	mux.Handle("PUT /admin/clients/{id}", a.json(a.updateClient))
	mux.Handle("DELETE /admin/clients/{id}", a.json(a.removeClient))
	mux.Handle("GET /admin/audit", a.json(a.auditEvents))
	mux.Handle("/", a.json(func(*http.Request) (int, any, error) {
		return 0, nil, notFound(errors.New("no such endpoint"))
	}))
	return a.authenticate(mux)
}

// authenticate lets through only requests with the admin token
// (RFC 6750 §2.1); the token itself is never logged.
func (a *adminAPI) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(given))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			challenge := `Bearer realm="twostep-admin"`
			if ok {
				challenge += `, error="invalid_token"` // RFC 6750 §3.1
			}
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: unauthorized request",
				slog.String("ip", hostOf(r.RemoteAddr)), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Bool("token_given", ok))
			w.Header().Set("WWW-Authenticate", challenge)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// json adapts an admin endpoint: f returns a status and a body to encode,
// or an error, answered with an adminError's status or 500.
func (a *adminAPI) json(f func(r *http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := f(r)
		var ae *adminError
		switch {
		case errors.As(err, &ae):
			writeJSON(w, ae.status, map[string]string{"error": ae.Error()})
		case err != nil:
			a.log.LogAttrs(r.Context(), slog.LevelError, "admin: request failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("err", err.Error()))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		case body == nil:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, body)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // bodies may hold a secret
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// decode reads one JSON object of at most maxAdminBody bytes into dst,
// refusing fields dst does not have.
func decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badInput(fmt.Errorf("request body: %w", err))
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return badInput(errors.New("request body: want exactly one JSON object"))
	}
	return nil
}

// record is the recordFunc of one admin request.
func (a *adminAPI) record(r *http.Request) recordFunc {
	return func(_ context.Context, ev storage.AuditEvent) { a.audit.recordAdmin(r, ev) }
}

// adminUser is a user as the admin API shows it.
type adminUser struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Groups    []string  `json:"groups"`
	Disabled  bool      `json:"disabled"`
	Locked    bool      `json:"locked"`
	HasTOTP   bool      `json:"has_totp"`
	CreatedAt time.Time `json:"created_at"`
	// Password is the generated password, in the answer to its creation
	// only.
	Password string `json:"password,omitempty"`
}

func newAdminUser(u storage.User) adminUser {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	return adminUser{
		ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, Groups: groups, Disabled: u.Disabled,
		Locked: u.FailedCodes >= login.MaxAccountCodes, HasTOTP: u.HasTOTP(), CreatedAt: u.CreatedAt.UTC(),
	}
}

func (a *adminAPI) listUsers(r *http.Request) (int, any, error) {
	users, err := a.store.ListUsers(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]adminUser, 0, len(users))
	for _, u := range users {
		out = append(out, newAdminUser(u))
	}
	return http.StatusOK, out, nil
}

func (a *adminAPI) addUser(r *http.Request) (int, any, error) {
	var in newUser
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	in.Policy = a.accounts.policy
	u, generated, err := createUser(r.Context(), a.store, a.record(r), in)
	if err != nil {
		return 0, nil, err
	}
	if u, err = a.store.GetUser(r.Context(), u.ID); err != nil {
		return 0, nil, err
	}
	out := newAdminUser(u)
	out.Password = generated
	return http.StatusCreated, out, nil
}

// userAction runs do on the user named in the path and answers with the
// user as it is after.
func (a *adminAPI) userAction(do func(r *http.Request, rec recordFunc, u storage.User) error) func(*http.Request) (int, any, error) {
	return func(r *http.Request) (int, any, error) {
		name := r.PathValue("name")
		u, err := a.store.GetUserByUsername(r.Context(), name)
		if errors.Is(err, storage.ErrNotFound) {
			return 0, nil, notFound(fmt.Errorf("no user %q", name))
		} else if err != nil {
			return 0, nil, err
		}
		if err := do(r, a.record(r), u); err != nil {
			return 0, nil, err
		}
		if u, err = a.store.GetUser(r.Context(), u.ID); err != nil {
			return 0, nil, err
		}
		return http.StatusOK, newAdminUser(u), nil
	}
}

// adminClient is a client as the admin API shows it.
type adminClient struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Public                 bool      `json:"public"`
	RequirePKCE            bool      `json:"require_pkce"`
	SkipConsent            bool      `json:"skip_consent"`
	RequirePAR             bool      `json:"require_par"`
	IDTokenAlg             string    `json:"id_token_alg"`
	BackchannelLogoutURI   string    `json:"backchannel_logout_uri"`
	CreatedAt              time.Time `json:"created_at"`
	// ClientSecret is in the answer to the client's creation only.
	ClientSecret string `json:"client_secret,omitempty"`
}

func newAdminClient(c *storage.Client) adminClient {
	orEmpty := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return adminClient{
		ID: c.ID, Name: c.Name, RedirectURIs: orEmpty(c.RedirectURIs), PostLogoutRedirectURIs: orEmpty(c.PostLogoutRedirectURIs),
		GrantTypes: orEmpty(c.GrantTypes), Public: c.Public, RequirePKCE: c.RequirePKCE, SkipConsent: c.SkipConsent,
		RequirePAR: c.RequirePAR, IDTokenAlg: c.IDTokenAlg, BackchannelLogoutURI: c.BackchannelLogoutURI,
		CreatedAt: c.CreatedAt.UTC(),
	}
}

func (a *adminAPI) listClients(r *http.Request) (int, any, error) {
	clients, err := a.store.ListClients(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]adminClient, 0, len(clients))
	for _, c := range clients {
		out = append(out, newAdminClient(c))
	}
	return http.StatusOK, out, nil
}

func (a *adminAPI) addClient(r *http.Request) (int, any, error) {
	in := clientInput{IDTokenAlg: oidc.RS256} // the default of client add
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, secret, err := registerClient(r.Context(), a.store, a.record(r), in)
	if err != nil {
		return 0, nil, err
	}
	out := newAdminClient(c)
	out.ClientSecret = secret
	return http.StatusCreated, out, nil
}

func (a *adminAPI) updateClient(r *http.Request) (int, any, error) {
	var u clientUpdate
	if err := decode(r, &u); err != nil {
		return 0, nil, err
	}
	c, err := updateClient(r.Context(), a.store, a.record(r), r.PathValue("id"), u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newAdminClient(c), nil
}

func (a *adminAPI) removeClient(r *http.Request) (int, any, error) {
	if err := removeClient(r.Context(), a.store, a.record(r), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// auditEvents answers GET /admin/audit?user=NAME&since=24h&limit=1000 as
// `twostep audit --json` prints, in one JSON array.
func (a *adminAPI) auditEvents(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	since, limit := 24*time.Hour, 1000
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, nil, badInput(fmt.Errorf("since must be a positive duration such as 24h, got %q", v))
		}
		since = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, nil, badInput(fmt.Errorf("limit must be a positive integer, got %q", v))
		}
		limit = n
	}
	events, names, err := auditEvents(r.Context(), a.store, q.Get("user"), since, limit)
	if err != nil {
		return 0, nil, err
	}
	out := make([]auditLine, 0, len(events))
	for _, ev := range events {
		out = append(out, newAuditLine(ev, names))
	}
	return http.StatusOK, out, nil
}
