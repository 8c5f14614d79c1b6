// Command twostep is an OpenID Connect provider whose login is always two
// layers: username and password, then a TOTP code.
//
// Usage:
//
//	twostep serve   [--addr 127.0.0.1:8080] [--issuer http://localhost:8080] [--admin-addr 127.0.0.1:9090]
//	twostep demo
//	twostep migrate
//	twostep user add|list|show|disable|passwd|reset-totp|unlock|devices|invite ...
//	twostep client add|list|show|remove ...
//	twostep keys list|rotate|rotate-secrets
//	twostep audit [--user NAME] [--since 24h] [--limit 1000] [--json]
//
// Every command takes --database DSN (env TWOSTEP_DATABASE): sqlite:PATH
// (the default, sqlite:twostep.db) or postgres://..., and finds the secret
// key ring in TWOSTEP_SECRET_KEYS ("2:KEY,1:KEY", the active key first),
// TWOSTEP_SECRET_KEY, --secret-key-file, or, on SQLite, PATH.key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "twostep:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: twostep COMMAND [flags]

commands:
  serve      run the provider
  demo       run the provider on SQLite with a demo user, client and relying party
  migrate    apply database migrations
  user       add | list | show | disable | passwd | reset-totp | unlock | devices | invite
  client     add | list | show | remove
  keys       list | rotate | rotate-secrets
  audit      print the audit log: logins, tokens, administrators' actions
  healthcheck  exit 0 if a running twostep is ready (for container health checks)

Every command takes --database DSN (env TWOSTEP_DATABASE): sqlite:PATH (default
sqlite:twostep.db) or postgres://... The secret key ring comes from
TWOSTEP_SECRET_KEYS ("2:KEY,1:KEY", the active key first; each KEY 32+ random
characters), TWOSTEP_SECRET_KEY (one key, version 1), --secret-key-file, or on
SQLite the file PATH.key, created on first use. Run "twostep COMMAND -h" for its flags.
`

// env is the program's view of its environment: everything run may touch
// from outside, so tests can drive it end to end.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program: it parses args, runs one command and returns
// its error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, e, rest)
	case "demo":
		return runDemo(ctx, e, rest)
	case "migrate":
		return runMigrate(ctx, e, rest)
	case "user":
		return runUser(ctx, e, rest)
	case "client":
		return runClient(ctx, e, rest)
	case "keys":
		return runKeys(ctx, e, rest)
	case "audit":
		return runAudit(ctx, e, rest)
	case "healthcheck":
		return runHealthcheck(ctx, e, rest)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
