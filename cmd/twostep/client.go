package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
)

const clientUsage = `usage:
  twostep client add --id ID --redirect-uri URI [--redirect-uri URI ...]
                     [--post-logout-redirect-uri URI ...] [--name N]
                     [--public] [--no-pkce] [--skip-consent] [--require-par]
                     [--id-token-alg RS256|ES256] [--backchannel-logout-uri URI]
                     [--json]
  twostep client list
  twostep client show ID
  twostep client remove ID
`

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

var _ flag.Value = (*listFlag)(nil)

func runClient(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, clientUsage)
		return errors.New("client: no subcommand given")
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("client "+sub, e)
	var db dbFlags
	db.register(fs, e)
	var (
		id, name                            string
		redirects, logoutRedirects          listFlag
		public, noPKCE, skipConsent, asJSON bool
		requirePAR                          bool
		idTokenAlg                          string
		backchannelURI                      string
	)
	switch sub {
	case "add":
		fs.StringVar(&id, "id", "", "client ID (required)")
		fs.Var(&redirects, "redirect-uri", "allowed redirect URI (repeat for several; required)")
		fs.Var(&logoutRedirects, "post-logout-redirect-uri", "allowed post-logout redirect URI (repeatable)")
		fs.StringVar(&name, "name", "", "name shown on the consent page")
		fs.BoolVar(&public, "public", false, "a public client (no secret; PKCE required)")
		fs.BoolVar(&noPKCE, "no-pkce", false, "do not require PKCE from this confidential client")
		fs.BoolVar(&skipConsent, "skip-consent", false, "never ask users for consent (first-party apps)")
		fs.BoolVar(&requirePAR, "require-par", false, "accept only pushed authorization requests (RFC 9126) from this client")
		fs.StringVar(&idTokenAlg, "id-token-alg", oidc.RS256, "algorithm that signs this client's ID tokens: RS256 or ES256")
		fs.StringVar(&backchannelURI, "backchannel-logout-uri", "",
			"where a logout token is POSTed when a user signed in to this client logs out (https, or http on localhost)")
		fs.BoolVar(&asJSON, "json", false, `print {"client_id","client_secret"} as JSON`)
	case "list", "show", "remove":
	default:
		fmt.Fprint(e.stderr, clientUsage)
		return fmt.Errorf("client: unknown subcommand %q", sub)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{"add": 0, "list": 0, "show": 1, "remove": 1}[sub]
	if len(pos) != want {
		fmt.Fprint(e.stderr, clientUsage)
		if sub == "add" {
			return fmt.Errorf("client add: unexpected argument %q (repeat --redirect-uri for each URI)", pos[0])
		}
		return fmt.Errorf("client %s: want %d argument(s), got %d", sub, want, len(pos))
	}

	in := clientInput{
		ID: id, Name: name, RedirectURIs: redirects, PostLogoutRedirectURIs: logoutRedirects,
		Public: public, NoPKCE: noPKCE, SkipConsent: skipConsent, RequirePAR: requirePAR,
		IDTokenAlg: idTokenAlg, BackchannelLogoutURI: backchannelURI,
	}
	if sub == "add" {
		// Validate before touching the database.
		if _, err := in.client(); err != nil {
			return err
		}
	}
	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	record := cliAuditor(e, store).recordCLI

	switch sub {
	case "add":
		c, secret, err := registerClient(ctx, store, record, in)
		if err != nil {
			return err
		}
		if asJSON {
			out := map[string]string{"client_id": c.ID}
			if secret != "" {
				out["client_secret"] = secret
			}
			return json.NewEncoder(e.stdout).Encode(out)
		}
		fmt.Fprintf(e.stdout, "client %s added\n", c.ID)
		if secret != "" {
			fmt.Fprintf(e.stdout, "client secret: %s\n(shown once; only its hash is stored)\n", secret)
		}
		return nil
	case "list":
		clients, err := store.ListClients(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tTYPE\tREDIRECT URIS")
		for _, c := range clients {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.ID, c.Name, clientType(c), strings.Join(c.RedirectURIs, " "))
		}
		return w.Flush()
	case "show":
		c, err := store.Client(ctx, pos[0])
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("client show: no client %q", pos[0])
		} else if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "id:\t%s\nname:\t%s\ntype:\t%s\nredirect uris:\t%s\npost-logout redirect uris:\t%s\ngrant types:\t%s\nscopes:\t%s\npkce required:\t%t\nskip consent:\t%t\npar required:\t%t\nid token alg:\t%s\nbackchannel logout uri:\t%s\ncreated:\t%s\n",
			c.ID, c.Name, clientType(c), strings.Join(c.RedirectURIs, " "), strings.Join(c.PostLogoutRedirectURIs, " "),
			strings.Join(c.GrantTypes, " "), strings.Join(c.Scopes, " "), c.RequirePKCE, c.SkipConsent, c.RequirePAR, c.IDTokenAlg, c.BackchannelLogoutURI,
			c.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		return w.Flush()
	case "remove":
		if err := removeClient(ctx, store, record, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "client %s removed with its grants and tokens\n", pos[0])
	}
	return nil
}

func clientType(c *storage.Client) string {
	if c.Public {
		return "public"
	}
	return "confidential"
}

// clientInput is what `client add` and POST /admin/clients register a
// client from.
type clientInput struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	Public                 bool     `json:"public"`
	NoPKCE                 bool     `json:"no_pkce"`
	SkipConsent            bool     `json:"skip_consent"`
	RequirePAR             bool     `json:"require_par"`
	IDTokenAlg             string   `json:"id_token_alg"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
}

// client validates in and builds the client it describes, without a
// secret. A mistake in in is a badInput error.
func (in clientInput) client() (*storage.Client, error) {
	c, err := newClient(in.ID, in.Name, in.RedirectURIs, in.PostLogoutRedirectURIs, in.Public, in.NoPKCE, in.SkipConsent)
	if err != nil {
		return nil, badInput(err)
	}
	if !slices.Contains(oidc.Algorithms, in.IDTokenAlg) {
		return nil, badInput(fmt.Errorf("client add: --id-token-alg %q: want %s", in.IDTokenAlg, strings.Join(oidc.Algorithms, " or ")))
	}
	c.RequirePAR, c.IDTokenAlg = in.RequirePAR, in.IDTokenAlg
	if in.BackchannelLogoutURI != "" {
		// Back-Channel Logout 1.0 §2.2: no fragment; https, or http on
		// loopback, as for redirect URIs.
		if err := validRedirectURI(in.BackchannelLogoutURI); err != nil {
			return nil, badInput(fmt.Errorf("client add: --backchannel-logout-uri: %w", err))
		}
		c.BackchannelLogoutURI = in.BackchannelLogoutURI
	}
	return c, nil
}

// registerClient registers the client in describes, with a new secret unless
// it is public, and records the action: the one code path of `client add`
// and POST /admin/clients. The secret is returned here only; the store
// keeps its hash.
func registerClient(ctx context.Context, store *storage.Store, record recordFunc, in clientInput) (c *storage.Client, secret string, err error) {
	if c, err = in.client(); err != nil {
		return nil, "", err
	}
	if !c.Public {
		if secret, err = randomString(32); err != nil {
			return nil, "", err
		}
		c.SecretHash, _ = storage.SecretHasher{}.Hash(ctx, []byte(secret))
	}
	if err := store.CreateClient(ctx, c); errors.Is(err, storage.ErrAlreadyExists) {
		return nil, "", conflict(fmt.Errorf("client add: a client with ID %q already exists", c.ID))
	} else if err != nil {
		return nil, "", err
	}
	record(ctx, storage.AuditEvent{Event: "admin.client.add", ClientID: c.ID, Detail: clientType(c)})
	return c, secret, nil
}

// clientUpdate is what PUT /admin/clients/{id} may change; a field left
// out (nil) keeps its value.
type clientUpdate struct {
	Name                   *string   `json:"name"`
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	SkipConsent            *bool     `json:"skip_consent"`
	RequirePAR             *bool     `json:"require_par"`
	BackchannelLogoutURI   *string   `json:"backchannel_logout_uri"`
}

// updateClient applies u to the client with the given ID and records
// the action.
func updateClient(ctx context.Context, store *storage.Store, record recordFunc, id string, u clientUpdate) (*storage.Client, error) {
	c, err := store.Client(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(fmt.Errorf("client update: no client %q", id))
	} else if err != nil {
		return nil, err
	}
	if u.Name != nil {
		c.Name = *u.Name
	}
	if u.RedirectURIs != nil {
		if len(*u.RedirectURIs) == 0 {
			return nil, badInput(errors.New("client update: at least one redirect URI is required"))
		}
		c.RedirectURIs = *u.RedirectURIs
	}
	if u.PostLogoutRedirectURIs != nil {
		c.PostLogoutRedirectURIs = *u.PostLogoutRedirectURIs
	}
	for _, uri := range append(append([]string{}, c.RedirectURIs...), c.PostLogoutRedirectURIs...) {
		if err := validRedirectURI(uri); err != nil {
			return nil, badInput(fmt.Errorf("client update: %w", err))
		}
	}
	if u.SkipConsent != nil {
		c.SkipConsent = *u.SkipConsent
	}
	if u.RequirePAR != nil {
		c.RequirePAR = *u.RequirePAR
	}
	if u.BackchannelLogoutURI != nil {
		if *u.BackchannelLogoutURI != "" {
			if err := validRedirectURI(*u.BackchannelLogoutURI); err != nil {
				return nil, badInput(fmt.Errorf("client update: backchannel_logout_uri: %w", err))
			}
		}
		c.BackchannelLogoutURI = *u.BackchannelLogoutURI
	}
	if err := store.UpdateClient(ctx, c); errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(fmt.Errorf("client update: no client %q", id))
	} else if err != nil {
		return nil, err
	}
	record(ctx, storage.AuditEvent{Event: "admin.client.update", ClientID: c.ID})
	return c, nil
}

// removeClient deletes a client with its grants and tokens and records
// the action: the one code path of `client remove` and DELETE
// /admin/clients/{id}.
func removeClient(ctx context.Context, store *storage.Store, record recordFunc, id string) error {
	if err := store.DeleteClient(ctx, id); errors.Is(err, storage.ErrNotFound) {
		return notFound(fmt.Errorf("client remove: no client %q", id))
	} else if err != nil {
		return err
	}
	record(ctx, storage.AuditEvent{Event: "admin.client.remove", ClientID: id})
	return nil
}

// newClient validates the flags of `client add` and builds the client.
func newClient(id, name string, redirects, logoutRedirects []string, public, noPKCE, skipConsent bool) (*storage.Client, error) {
	if id == "" {
		return nil, errors.New("client add: --id is required")
	}
	if len(id) > 128 || strings.ContainsAny(id, " \t\r\n:") {
		return nil, fmt.Errorf("client add: client ID %q must be at most 128 characters without spaces or colons", id)
	}
	if len(redirects) == 0 {
		return nil, errors.New("client add: at least one --redirect-uri is required")
	}
	for _, u := range append(append([]string{}, redirects...), logoutRedirects...) {
		if err := validRedirectURI(u); err != nil {
			return nil, fmt.Errorf("client add: %w", err)
		}
	}
	if public && noPKCE {
		return nil, errors.New("client add: --no-pkce is not allowed for a --public client: PKCE is what protects its codes")
	}
	grants := []string{"authorization_code", "refresh_token"}
	if !public {
		grants = append(grants, "client_credentials")
	}
	return &storage.Client{
		ID: id, Name: name, RedirectURIs: redirects, PostLogoutRedirectURIs: logoutRedirects,
		GrantTypes: grants, ResponseTypes: []string{"code"}, Scopes: oidc.SupportedScopes,
		Public: public, RequirePKCE: public || !noPKCE, SkipConsent: skipConsent,
	}, nil
}

// validRedirectURI accepts absolute URIs without a fragment (RFC 6749
// §3.1.2) that use https, or http on a loopback host (RFC 8252 §7.3).
func validRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("redirect URI %q must be an absolute URL", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" || net.ParseIP(host).IsLoopback() {
			return nil
		}
		return fmt.Errorf("redirect URI %q must use https (http is allowed only on localhost)", raw)
	default:
		return fmt.Errorf("redirect URI %q must use https or http://localhost", raw)
	}
}
