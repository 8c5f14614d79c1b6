package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/hkdf"

	"github.com/twostep/twostep/storage"
)

const defaultDatabase = "sqlite:twostep.db"

// dbFlags are the flags every command shares.
type dbFlags struct {
	database      string
	secretKeyFile string
}

// register adds --database and --secret-key-file to fs, defaulting from
// the environment.
func (f *dbFlags) register(fs *flag.FlagSet, e env) {
	def := e.getenv("TWOSTEP_DATABASE")
	if def == "" {
		def = defaultDatabase
	}
	fs.StringVar(&f.database, "database", def, "database DSN: sqlite:PATH or postgres://... (env TWOSTEP_DATABASE)")
	fs.StringVar(&f.secretKeyFile, "secret-key-file", e.getenv("TWOSTEP_SECRET_KEY_FILE"),
		"file holding the secret key (env TWOSTEP_SECRET_KEY_FILE, or the key itself in TWOSTEP_SECRET_KEY)")
}

// keys are the keys twostep derives from its one configured secret.
type keys struct {
	storage []byte // seals TOTP secrets and signing keys at rest
	hmac    []byte // signs codes and tokens (fosite's global secret)
}

// secretKey finds the secret every instance must share: TWOSTEP_SECRET_KEY,
// else the --secret-key-file, else, for SQLite only, a key file beside the
// database that is created on first use (mode 0600). PostgreSQL deployments
// must configure one, since several instances need the same.
func (f *dbFlags) secretKey(e env) (keys, error) {
	material := []byte(e.getenv("TWOSTEP_SECRET_KEY"))
	switch {
	case len(material) > 0:
	case f.secretKeyFile != "":
		b, err := os.ReadFile(f.secretKeyFile)
		if err != nil {
			return keys{}, fmt.Errorf("read secret key: %w", err)
		}
		material = []byte(strings.TrimSpace(string(b)))
	case strings.HasPrefix(f.database, "sqlite:"):
		var err error
		if material, err = sqliteKeyFile(strings.TrimPrefix(f.database, "sqlite:") + ".key"); err != nil {
			return keys{}, err
		}
	default:
		return keys{}, errors.New("a secret key is required with PostgreSQL: set TWOSTEP_SECRET_KEY (32+ random characters) or --secret-key-file, the same on every instance")
	}
	if len(material) < 32 {
		return keys{}, fmt.Errorf("the secret key is too short: %d characters, want at least 32", len(material))
	}
	return keys{storage: derive(material, "twostep storage sealing key"), hmac: derive(material, "twostep token hmac key")}, nil
}

func derive(material []byte, label string) []byte {
	out := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, material, nil, []byte(label)), out); err != nil {
		panic("hkdf: " + err.Error()) // 32 bytes of SHA-256 HKDF cannot fail
	}
	return out
}

// sqliteKeyFile reads the key file beside a SQLite database, creating it
// with a fresh random key if it does not exist.
func sqliteKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	key := base64.RawURLEncoding.EncodeToString(raw)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return sqliteKeyFile(path) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("create secret key file: %w", err)
	}
	if _, err := fh.WriteString(key + "\n"); err != nil {
		fh.Close()
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	if err := fh.Close(); err != nil {
		return nil, fmt.Errorf("write secret key file: %w", err)
	}
	return []byte(key), nil
}

// open opens and migrates the store the flags name.
func (f *dbFlags) open(ctx context.Context, e env, opts storage.Options) (*storage.Store, keys, error) {
	k, err := f.secretKey(e)
	if err != nil {
		return nil, keys{}, err
	}
	opts.SecretKey = k.storage
	store, err := storage.Open(ctx, f.database, opts)
	if err != nil {
		return nil, keys{}, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, keys{}, err
	}
	return store, k, nil
}

// parseArgs parses flags that may come before or after positional
// arguments ("user add alice --email a@b"), returning the positionals.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseNoArgs parses the flags of a command that takes no positional
// arguments, refusing any.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), pos[0])
	}
	return nil
}

// newFlagSet returns a FlagSet that reports errors to stderr and does not
// exit.
func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}
