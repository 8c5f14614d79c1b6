package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/twostep/twostep/oidc"
	"github.com/twostep/twostep/storage"
)

func runKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return errors.New("keys: want a subcommand: list or rotate")
	}
	sub, args := args[0], args[1:]
	if sub != "list" && sub != "rotate" {
		return fmt.Errorf("keys: unknown subcommand %q: want list or rotate", sub)
	}
	fs := newFlagSet("keys "+sub, e)
	var db dbFlags
	db.register(fs, e)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	store, _, err := db.open(ctx, e, storage.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if sub == "rotate" {
		id, err := oidc.GenerateKey(ctx, store)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "new signing key %s; the previous key stays in the JWKS for %s\n", id, oidc.DefaultKeyRetention)
		return nil
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
