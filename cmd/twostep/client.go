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

	var c *storage.Client
	if sub == "add" {
		if c, err = newClient(id, name, redirects, logoutRedirects, public, noPKCE, skipConsent); err != nil {
			return err
		}
		if !slices.Contains(oidc.Algorithms, idTokenAlg) {
			return fmt.Errorf("client add: --id-token-alg %q: want %s", idTokenAlg, strings.Join(oidc.Algorithms, " or "))
		}
		c.RequirePAR, c.IDTokenAlg = requirePAR, idTokenAlg
		if backchannelURI != "" {
			// Back-Channel Logout 1.0 §2.2: no fragment; https, or http
			// on loopback, as for redirect URIs.
			if err := validRedirectURI(backchannelURI); err != nil {
				return fmt.Errorf("client add: --backchannel-logout-uri: %w", err)
			}
			c.BackchannelLogoutURI = backchannelURI
		}
	}
	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "add":
		secret := ""
		if !public {
			if secret, err = randomString(32); err != nil {
				return err
			}
			c.SecretHash, _ = storage.SecretHasher{}.Hash(ctx, []byte(secret))
		}
		if err := store.CreateClient(ctx, c); errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("client add: a client with ID %q already exists", c.ID)
		} else if err != nil {
			return err
		}
		cliAuditor(e, store).recordCLI(ctx, storage.AuditEvent{Event: "admin.client.add", ClientID: c.ID, Detail: clientType(c)})
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
		if err := store.DeleteClient(ctx, pos[0]); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("client remove: no client %q", pos[0])
		} else if err != nil {
			return err
		}
		cliAuditor(e, store).recordCLI(ctx, storage.AuditEvent{Event: "admin.client.remove", ClientID: pos[0]})
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
