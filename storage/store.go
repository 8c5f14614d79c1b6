package storage

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors returned by the Store. Callers test them with errors.Is.
var (
	// ErrNotFound means the row does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a row with the same unique key exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means a conditional update found the row in another
	// state: a step already taken, a code already used, a TOTP time step
	// already consumed.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the database could not be reached.
	ErrUnavailable = errors.New("database unavailable")
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Store.
type Options struct {
	// SecretKeys is the key ring that seals TOTP secrets and private
	// signing keys at rest, newest first: the newest seals, any of them
	// opens what it sealed. Required.
	SecretKeys []SecretKey
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// QueryTimeout bounds every database call; 10 s when zero.
	QueryTimeout time.Duration
	// MaxOpenConns, MaxIdleConns and ConnMaxLifetime tune the pool. Zero
	// open connections means the dialect's default (see defaultPool); zero
	// idle means as many as may be open, so a busy server keeps its
	// connections instead of opening one per query.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
}

// defaultPool is how many connections a Store opens at most. SQLite has
// one writer and every new connection re-reads the schema under a
// process-wide lock, so a few long-lived connections serve best (the load
// benchmarks measured 4 against unbounded churn: client_credentials went
// from ~3 000/s to ~8 000/s). PostgreSQL gets a bound too, so load cannot
// exhaust the server's max_connections; raise it with --db-max-open-conns.
func defaultPool(dialect string) int {
	if dialect == "sqlite" {
		return 4
	}
	return 20
}

// SecretKey is one version of the sealing key: a 32-byte AES-256 key.
// Every sealed value records the version that sealed it.
type SecretKey struct {
	Version uint32
	Key     []byte
}

// Store is the one storage implementation, over SQLite or PostgreSQL.
type Store struct {
	db      *sqlx.DB
	dialect string // "sqlite" or "postgres"
	// sealer is the AEAD of the newest key and sealVersion its version;
	// openers holds every key's AEAD by version.
	sealer      cipher.AEAD
	sealVersion uint32
	openers     map[uint32]cipher.AEAD
	now         func() time.Time
	timeout     time.Duration
}

// Open connects to the database named by dsn: "sqlite:PATH" (modernc.org/sqlite)
// or "postgres://..." / "postgresql://..." (lib/pq). It checks that the
// database answers but does not migrate it.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if len(opts.SecretKeys) == 0 {
		return nil, errors.New("open store: a secret key is required")
	}
	openers := make(map[uint32]cipher.AEAD, len(opts.SecretKeys))
	for _, k := range opts.SecretKeys {
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("open store: secret key %d must be 32 bytes, got %d", k.Version, len(k.Key))
		}
		if _, dup := openers[k.Version]; dup {
			return nil, fmt.Errorf("open store: secret key version %d given twice", k.Version)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		if openers[k.Version], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	driver, source, dialect, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sqlx.Open(driver, source)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = defaultPool(dialect)
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = opts.MaxOpenConns
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxIdleConns)
	if opts.ConnMaxLifetime > 0 {
		db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	}
	newest := opts.SecretKeys[0].Version
	s := &Store{
		db: db, dialect: dialect, sealer: openers[newest], sealVersion: newest, openers: openers,
		now: opts.Now, timeout: opts.QueryTimeout,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.timeout == 0 {
		s.timeout = 10 * time.Second
	}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	return s, nil
}

// parseDSN maps twostep's DSN forms to a driver name and its data source.
// Its errors never contain a password.
func parseDSN(dsn string) (driver, source, dialect string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		switch {
		case path == "":
			return "", "", "", errors.New("database: sqlite DSN needs a path, e.g. sqlite:twostep.db")
		case path == ":memory:" || strings.HasPrefix(path, "file:"):
			// Every pooled connection would open its own, empty, in-memory
			// database; and a file: URI would carry its own options.
			return "", "", "", fmt.Errorf("database: sqlite DSN %q: want sqlite:PATH to a file, e.g. sqlite:twostep.db", dsn)
		case strings.ContainsAny(path, "?#"):
			// The path becomes a URI: "?" would start options (twostep
			// sets its own) and "#" would cut the path.
			return "", "", "", fmt.Errorf("database: sqlite DSN %q: the path must not contain '?' or '#'", dsn)
		}
		// WAL lets readers run beside the one writer; busy_timeout makes
		// concurrent writers queue instead of failing; _txlock=immediate
		// takes the write lock at BEGIN, so a transaction never fails to
		// upgrade a read lock half-way through.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_time_format", "sqlite")
		q.Set("_txlock", "immediate")
		// SQLite decodes %XX escapes in a file: URI, so a literal % must
		// be escaped.
		return "sqlite", "file:" + strings.ReplaceAll(path, "%", "%25") + "?" + q.Encode(), "sqlite", nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		// lib/pq parses the URL only when it first connects, and quotes
		// the whole URL, password included, in its parse errors.
		u, err := url.Parse(dsn)
		if err != nil {
			var urlErr *url.Error
			if errors.As(err, &urlErr) {
				err = urlErr.Err
			}
			return "", "", "", fmt.Errorf("database: bad postgres DSN %q: %v", redactDSN(dsn), err)
		}
		// lib/pq bounds only the TCP dial by the context; without
		// connect_timeout a server that accepts but never answers hangs
		// the start-up handshake, and every request, forever.
		if q := u.Query(); !q.Has("connect_timeout") {
			q.Set("connect_timeout", "10")
			u.RawQuery = q.Encode()
		}
		return "postgres", u.String(), "postgres", nil
	default:
		return "", "", "", fmt.Errorf("database: unsupported DSN %q: want sqlite:PATH or postgres://...", redactDSN(dsn))
	}
}

// redactDSN hides a password in a DSN so it can be printed. What is not a
// hierarchical URL (scheme://user:password@host) is cut at the first
// character after which a password could follow.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Opaque != "" || u.Scheme == "" {
		if i := strings.IndexAny(dsn, ":@= "); i >= 0 {
			return dsn[:i+1] + "..."
		}
		return dsn
	}
	if u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect reports "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// DB exposes the pool for metrics and tests.
func (s *Store) DB() *sql.DB { return s.db.DB }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// Migrate applies the embedded migrations that are not applied yet, each in
// its own transaction. On PostgreSQL an advisory lock serialises instances
// that start at once; on SQLite the immediate transaction does.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == "postgres" {
		// 0x7477_6f73_7465_70 spells "twostep".
		const lockID = 0x74776f73746570
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*."+s.dialect+".sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimPrefix(f, "migrations/")
		version, err := strconv.ParseInt(name[:strings.IndexByte(name, '_')], 10, 64)
		if err != nil {
			return fmt.Errorf("migrate: bad migration name %q", name)
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if err := s.applyMigration(ctx, conn, version, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, conn *sqlx.Conn, version int64, body string) error {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), version); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO schema_migrations (version) VALUES (?)`), version); err != nil {
		return err
	}
	return tx.Commit()
}

// txKey carries a fosite transaction in a context.
type txKey struct{}

// BeginTX starts a transaction that the Store methods called with the
// returned context join. It implements fosite's storage.Transactional.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return ctx, s.translate("begin transaction", err)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction in ctx.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*sqlx.Tx)
	if !ok {
		return errors.New("commit: no transaction in context")
	}
	return s.translate("commit", tx.Commit())
}

// Rollback rolls back the transaction in ctx.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*sqlx.Tx)
	if !ok {
		return errors.New("rollback: no transaction in context")
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return s.translate("rollback", err)
	}
	return nil
}

// querier is what sqlx.DB and sqlx.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

func (s *Store) q(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(*sqlx.Tx); ok {
		return tx
	}
	return s.db
}

// exec runs a statement and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.q(ctx).ExecContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return 0, s.translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.translate(op, err)
	}
	return n, nil
}

// get scans one row into dest; no row is ErrNotFound.
func (s *Store) get(ctx context.Context, op string, dest any, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.translate(op, s.q(ctx).GetContext(ctx, dest, s.db.Rebind(query), args...))
}

// sel scans all rows into dest, a pointer to a slice.
func (s *Store) sel(ctx context.Context, op string, dest any, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.translate(op, s.q(ctx).SelectContext(ctx, dest, s.db.Rebind(query), args...))
}

// translate maps driver errors to the Store's sentinels at the boundary.
func (s *Store) translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w", op, ErrAlreadyExists)
		}
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch {
		case pqErr.Code == "23505":
			return fmt.Errorf("%s: %w", op, ErrAlreadyExists)
		case pqErr.Code == "22021":
			// Invalid UTF-8 or a NUL byte in a text value, e.g. a key taken
			// from a request: no row can have it.
			return fmt.Errorf("%s: %w: %v", op, ErrNotFound, err)
		case pqErr.Code.Class() == "08" || pqErr.Code == "57P01" || pqErr.Code == "57P02" || pqErr.Code == "57P03":
			return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
		}
	}
	if isConnError(err) {
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isConnError reports whether err means the database could not be reached.
func isConnError(err error) bool {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "bad connection", "broken pipe", "connection reset", "sql: database is closed", "no such host", "EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// seal encrypts plaintext under the newest key, bound to aad (the row it
// belongs to), so a sealed value copied into another row does not open.
// The result is the key version (4 bytes, big-endian), the nonce and the
// AES-GCM ciphertext.
func (s *Store) seal(plaintext []byte, aad string) ([]byte, error) {
	out := binary.BigEndian.AppendUint32(nil, s.sealVersion)
	nonce := make([]byte, s.sealer.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return s.sealer.Seal(out, nonce, plaintext, []byte(aad)), nil
}

// open decrypts what seal produced, with the key version it names.
func (s *Store) open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < 4 {
		return nil, errors.New("sealed value too short")
	}
	version := binary.BigEndian.Uint32(sealed)
	aead, ok := s.openers[version]
	if !ok {
		return nil, fmt.Errorf("open sealed value: secret key version %d is not configured", version)
	}
	sealed = sealed[4:]
	n := aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed value with secret key version %d (wrong key?): %w", version, err)
	}
	return plain, nil
}

// utc normalises a time for storage: UTC, no monotonic reading, microsecond
// precision (what PostgreSQL keeps), so a value read back equals the one
// written.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: utc(t), Valid: true}
}
