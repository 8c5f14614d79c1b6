package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/hkdf"

	"github.com/twostep/twostep/storage"
)

const defaultDatabase = "sqlite:twostep.db"

// dbFlags are the flags every command shares.
type dbFlags struct {
	database      string
	secretKeyFile string
	// log, when set, receives the notice that a key file was created;
	// otherwise it goes to stderr as a plain line.
	log *slog.Logger
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
		"file holding the secret key or key ring (env TWOSTEP_SECRET_KEY_FILE; or the ring itself in TWOSTEP_SECRET_KEYS)")
}

// minKeyLength is the shortest key material accepted, in characters.
const minKeyLength = 32

// keyVersion is one version of the secret key. Its material is used as
// given (a base64 string is not decoded): HKDF derives the actual keys.
type keyVersion struct {
	version  uint32
	material []byte
}

// keyRing is the secret key in all its versions, the active one first: it
// seals new values and signs new tokens; the others still open what they
// sealed and verify what they signed.
type keyRing struct {
	versions []keyVersion
	// created is the key file this start created, if it did.
	created string
}

// storageKeys are the storage sealing keys, one per version, active first.
func (k keyRing) storageKeys() []storage.SecretKey {
	out := make([]storage.SecretKey, len(k.versions))
	for i, v := range k.versions {
		out[i] = storage.SecretKey{Version: v.version, Key: derive(v.material, "twostep storage sealing key")}
	}
	return out
}

// hmac is fosite's global secret: derived from the active version.
func (k keyRing) hmac() []byte { return derive(k.versions[0].material, "twostep token hmac key") }

// rotatedHMAC are the older versions' HMAC secrets, so that codes and
// tokens they signed keep verifying until those versions leave the ring.
func (k keyRing) rotatedHMAC() [][]byte {
	var out [][]byte
	for _, v := range k.versions[1:] {
		out = append(out, derive(v.material, "twostep token hmac key"))
	}
	return out
}

// versionList is "2, 1": the versions, active first.
func (k keyRing) versionList(from int) string {
	var vs []string
	for _, v := range k.versions[from:] {
		vs = append(vs, strconv.FormatUint(uint64(v.version), 10))
	}
	return strings.Join(vs, ", ")
}

// String names the versions, never the material.
func (k keyRing) String() string { return "secret key versions " + k.versionList(0) }

// GoString keeps %#v from printing the material.
func (k keyRing) GoString() string { return k.String() }

// LogValue keeps the material out of logs.
func (k keyRing) LogValue() slog.Value { return slog.StringValue(k.String()) }

// secretKeys finds the key ring every instance must share, from the first
// of: TWOSTEP_SECRET_KEYS (a ring), TWOSTEP_SECRET_KEY (one key, version
// 1), --secret-key-file (either), and, for SQLite only, the key file
// beside the database, created on first use (mode 0600). PostgreSQL
// deployments must configure one, since several instances need the same.
func (f *dbFlags) secretKeys(e env) (keyRing, error) {
	ring := e.getenv("TWOSTEP_SECRET_KEYS")
	single := e.getenv("TWOSTEP_SECRET_KEY")
	switch {
	case ring != "" && single != "":
		return keyRing{}, errors.New("set TWOSTEP_SECRET_KEYS or TWOSTEP_SECRET_KEY, not both")
	case ring != "" && f.secretKeyFile != "":
		return keyRing{}, errors.New("set TWOSTEP_SECRET_KEYS or --secret-key-file (TWOSTEP_SECRET_KEY_FILE), not both")
	case ring != "":
		return parseKeyRing(ring, "TWOSTEP_SECRET_KEYS")
	case single != "":
		return singleKey([]byte(single), "TWOSTEP_SECRET_KEY")
	case f.secretKeyFile != "":
		b, err := os.ReadFile(f.secretKeyFile)
		if err != nil {
			return keyRing{}, fmt.Errorf("read secret key: %w", err)
		}
		return parseKeyFile(b, f.secretKeyFile)
	case strings.HasPrefix(f.database, "sqlite:"):
		return sqliteKeyFile(strings.TrimPrefix(f.database, "sqlite:") + ".key")
	}
	return keyRing{}, errors.New("a secret key is required with PostgreSQL: set TWOSTEP_SECRET_KEYS " +
		"(VERSION:KEY,..., each key 32+ random characters), TWOSTEP_SECRET_KEY or --secret-key-file, the same on every instance")
}

// singleKey is a ring of one key, version 1.
func singleKey(material []byte, source string) (keyRing, error) {
	if len(material) < minKeyLength {
		return keyRing{}, fmt.Errorf("%s: the secret key is too short: %d characters, want at least %d", source, len(material), minKeyLength)
	}
	return keyRing{versions: []keyVersion{{version: 1, material: material}}}, nil
}

// parseKeyFile reads a key file: a key ring, or a single key (version 1)
// as earlier versions of twostep wrote. Surrounding whitespace is ignored.
func parseKeyFile(b []byte, path string) (keyRing, error) {
	s := strings.TrimSpace(string(b))
	if looksLikeRing(s) {
		return parseKeyRing(s, path)
	}
	return singleKey([]byte(s), path)
}

// looksLikeRing reports whether s starts with "VERSION:", as a ring does;
// a single key generated by twostep (base64url) has no colon.
func looksLikeRing(s string) bool {
	v, _, ok := strings.Cut(s, ":")
	return ok && v != "" && strings.Trim(v, "0123456789") == ""
}

// parseKeyRing parses "2:KEY,1:KEY": versions (positive integers, each
// once) with their keys (at least minKeyLength characters, used as given,
// each once), the active one first. Entries may also be separated by
// newlines, as in a key file. Errors name the source and the entry's
// position, never its text, which may be key material.
func parseKeyRing(s, source string) (keyRing, error) {
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
	var ring keyRing
	seen := map[uint32]int{}
	for i, entry := range entries {
		n := i + 1
		entry = strings.TrimSpace(entry)
		v, material, ok := strings.Cut(entry, ":")
		if !ok {
			return keyRing{}, fmt.Errorf("%s: entry %d is not VERSION:KEY", source, n)
		}
		version, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || version == 0 {
			return keyRing{}, fmt.Errorf("%s: entry %d: the version before ':' must be an integer from 1 to %d", source, n, uint32(math.MaxUint32))
		}
		material = strings.TrimSpace(material)
		if len(material) < minKeyLength {
			return keyRing{}, fmt.Errorf("%s: entry %d (version %d): the key is too short: %d characters, want at least %d",
				source, n, version, len(material), minKeyLength)
		}
		if first, dup := seen[uint32(version)]; dup {
			return keyRing{}, fmt.Errorf("%s: entries %d and %d both have version %d", source, first, n, version)
		}
		for j, earlier := range ring.versions {
			if subtle.ConstantTimeCompare(earlier.material, []byte(material)) == 1 {
				return keyRing{}, fmt.Errorf("%s: entries %d and %d (versions %d and %d) have the same key", source, j+1, n, earlier.version, version)
			}
		}
		seen[uint32(version)] = n
		ring.versions = append(ring.versions, keyVersion{version: uint32(version), material: []byte(material)})
	}
	if len(ring.versions) == 0 {
		return keyRing{}, fmt.Errorf("%s: no keys: want VERSION:KEY[,VERSION:KEY...], the active key first", source)
	}
	return ring, nil
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
func sqliteKeyFile(path string) (keyRing, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return parseKeyFile(b, path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return keyRing{}, fmt.Errorf("read secret key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return keyRing{}, err
	}
	key := base64.RawURLEncoding.EncodeToString(raw)
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return sqliteKeyFile(path) // another process created it first
	}
	if err != nil {
		return keyRing{}, fmt.Errorf("create secret key file: %w", err)
	}
	if _, err := fh.WriteString(key + "\n"); err != nil {
		fh.Close()
		return keyRing{}, fmt.Errorf("write secret key file: %w", err)
	}
	if err := fh.Close(); err != nil {
		return keyRing{}, fmt.Errorf("write secret key file: %w", err)
	}
	ring, err := singleKey([]byte(key), path)
	ring.created = path
	return ring, err
}

// open opens and migrates the store the flags name, with the key ring
// they find.
func (f *dbFlags) open(ctx context.Context, e env, opts storage.Options) (*storage.Store, keyRing, error) {
	ring, err := f.secretKeys(e)
	if err != nil {
		return nil, keyRing{}, err
	}
	if ring.created != "" {
		f.announceKeyFile(e, ring.created)
	}
	opts.SecretKeys = ring.storageKeys()
	store, err := storage.Open(ctx, f.database, opts)
	if err != nil {
		return nil, keyRing{}, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, keyRing{}, err
	}
	return store, ring, nil
}

// announceKeyFile says, once, that a key file was created: the database is
// unreadable without it, so it belongs in the backups.
func (f *dbFlags) announceKeyFile(e env, path string) {
	const msg = "created the secret key file; back it up with the database, which cannot be read without it"
	if f.log != nil {
		f.log.Info(msg, "path", path)
		return
	}
	fmt.Fprintf(e.stderr, "twostep: %s: %s\n", msg, path)
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
