package main

import (
	"context"
	"fmt"

	"github.com/twostep/twostep/storage"
)

func runMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("migrate", e)
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
	fmt.Fprintln(e.stdout, "database is up to date")
	return nil
}
