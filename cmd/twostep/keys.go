package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
)

const keysUsage = `usage:
  twostep keys list             list the token signing keys
  twostep keys rotate [--alg RS256|ES256|all]
                                start signing with a new signing key of the
                                algorithm (default all: one of each)
  twostep keys rotate-secrets   re-encrypt the database under the first key of TWOSTEP_SECRET_KEYS
`

func runKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, keysUsage)
		return errors.New("keys: want a subcommand: list, rotate or rotate-secrets")
	}
	sub, args := args[0], args[1:]
	if sub != "list" && sub != "rotate" && sub != "rotate-secrets" {
		fmt.Fprint(e.stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q: want list, rotate or rotate-secrets", sub)
	}
	fs := newFlagSet("keys "+sub, e)
	var db dbFlags
	db.register(fs, e)
	alg := "all"
	if sub == "rotate" {
		fs.StringVar(&alg, "alg", "all", "algorithm of the key to rotate: RS256, ES256 or all")
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	algs := oidc.Algorithms
	if alg != "all" {
		if !slices.Contains(oidc.Algorithms, alg) {
			return fmt.Errorf("keys rotate: --alg %q: want %s or all", alg, strings.Join(oidc.Algorithms, ", "))
		}
		algs = []string{alg}
	}
	store, ring, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	switch sub {
	case "rotate":
		for _, alg := range algs {
			id, err := oidc.GenerateKey(ctx, store, alg)
			if err != nil {
				return err
			}
			cliAuditor(e, store).recordCLI(ctx, storage.AuditEvent{Event: "admin.keys.rotate", Detail: alg + " signing key " + id})
			fmt.Fprintf(e.stdout, "new %s signing key %s\n", alg, id)
		}
		// The retention outlasts every token an old key signed (ID tokens
		// live an hour); running instances pick the new key up within a
		// minute.
		fmt.Fprintf(e.stdout, "the previous key stays in the JWKS for %s, so the tokens it signed still verify\n", oidc.DefaultKeyRetention)
		return nil
	case "rotate-secrets":
		return rotateSecrets(ctx, e, store, ring)
	}
	keys, err := store.ListSigningKeys(ctx, time.Now().Add(-oidc.DefaultKeyRetention))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tALG\tCREATED\tSTATUS")
	for _, k := range keys {
		status := "signing"
		if !k.RetiredAt.IsZero() {
			status = "published until " + k.RetiredAt.Add(oidc.DefaultKeyRetention).Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), status)
	}
	return w.Flush()
}

// refreshTokenLifetime is how long the refresh tokens an older key signed
// may still be presented (oidc gives them 30 days).
const refreshTokenLifetime = "30 days"

// rotateSecrets re-encrypts every sealed value under the ring's first key,
// after which the database no longer needs the older ones.
func rotateSecrets(ctx context.Context, e env, store *storage.Store, ring keyRing) error {
	n, err := store.ResealSecrets(ctx)
	if err != nil {
		return err
	}
	active := ring.versions[0].version
	cliAuditor(e, store).recordCLI(ctx, storage.AuditEvent{
		Event: "admin.keys.rotate_secrets", Detail: fmt.Sprintf("%d values re-sealed with version %d", n, active),
	})
	fmt.Fprintf(e.stdout, "re-encrypted %d sealed value(s) with secret key version %d\n", n, active)
	if len(ring.versions) == 1 {
		fmt.Fprintf(e.stdout, "version %d is the only key configured: nothing else to remove\n", active)
		return nil
	}
	fmt.Fprintf(e.stdout, `the database no longer needs secret key version(s) %s: they can now be removed from
TWOSTEP_SECRET_KEYS or the key file (then restart every instance). They still verify the
codes and tokens they signed, so refresh tokens issued before the rotation stop working when
they are removed; wait %s to let those expire, or accept that their clients sign in again.
`, ring.versionList(1), refreshTokenLifetime)
	return nil
}
