package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the "postgres" driver for the admin connection

	"github.com/twostep/twostep/storage"
)

// PostgresEnv names the environment variable that holds the DSN of a
// PostgreSQL server for tests, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresEnv = "TWOSTEP_TEST_POSTGRES"

// NewStore returns a fresh, migrated, empty store whose clock is now, and
// arranges for it to be closed when t ends.
type NewStore func(t *testing.T, now func() time.Time) *storage.Store

// New opens the store at dsn with a fixed test secret key and the clock now
// (time.Now when nil), migrates it, and closes it when t ends.
func New(t testing.TB, dsn string, now func() time.Time) *storage.Store {
	t.Helper()
	ctx := context.Background()
	s, err := storage.Open(ctx, dsn, storage.Options{SecretKey: []byte("twostep-storagetest-secret-key!!"), Now: now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// SQLiteDSN returns the DSN of a new SQLite database file in a directory
// that is removed when t ends.
func SQLiteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "twostep.db")
}

// PostgresAdminDSN returns the DSN in TWOSTEP_TEST_POSTGRES. When it is
// empty the test is skipped, or fails if CI=true: on CI a PostgreSQL run
// that silently skips would let a backend go untested.
func PostgresAdminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is empty but CI=true: PostgreSQL tests must run on CI", PostgresEnv)
		}
		t.Skipf("%s is empty; set it to a PostgreSQL DSN to run this test", PostgresEnv)
	}
	return dsn
}

// PostgresDSN creates a schema with a random name on the server in
// TWOSTEP_TEST_POSTGRES and returns a DSN whose connections use it (lib/pq
// sends unknown DSN parameters, here search_path, as run-time parameters).
// The schema is dropped when t ends. Like PostgresAdminDSN it skips, or
// fails on CI, when the variable is empty.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminDSN(t)
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", PostgresEnv)
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatalf("open admin connection: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "twostep_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// t0 is where the suite's fake clocks start. It carries nanoseconds so that
// the tests see the store truncate to microseconds.
var t0 = time.Date(2030, time.March, 4, 5, 6, 7, 123456789, time.UTC)

// test is one conformance test: it gets a fresh store and the fake clock
// that store reads.
type test struct {
	name string
	run  func(t *testing.T, s *storage.Store, clk *Clock)
}

// Run runs the conformance suite. newStore must give each subtest a fresh,
// migrated, empty store that reads the clock it is given, so that expiry
// and throttling windows are deterministic.
func Run(t *testing.T, newStore NewStore) {
	var tests []test
	for _, group := range [][]test{
		fositeTests, transactionTests, userTests, clientTests, loginSessionTests,
		authRequestTests, grantTests, signingKeyTests, throttleTests, expiryTests, concurrencyTests,
	} {
		tests = append(tests, group...)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := NewClock(t0)
			tc.run(t, newStore(t, clk.Now), clk)
		})
	}
}

// sameTime reports whether got is in UTC and equals want to the microsecond,
// the precision every backend keeps.
func sameTime(got, want time.Time) bool {
	return got.Location() == time.UTC && got.Truncate(time.Microsecond).Equal(want.Truncate(time.Microsecond))
}

// rebind rewrites a query written with ? placeholders for s's dialect.
func rebind(s *storage.Store, query string) string {
	if s.Dialect() == "postgres" {
		return sqlx.Rebind(sqlx.DOLLAR, query)
	}
	return query
}

// rawColumn reads one column of one row as bytes, straight from the
// database, bypassing the Store's decoding.
func rawColumn(t *testing.T, s *storage.Store, table, column, keyColumn, key string) []byte {
	t.Helper()
	var raw []byte
	query := rebind(s, `SELECT `+column+` FROM `+table+` WHERE `+keyColumn+` = ?`)
	if err := s.DB().QueryRowContext(context.Background(), query, key).Scan(&raw); err != nil {
		t.Fatalf("read raw %s.%s: %v", table, column, err)
	}
	return raw
}

// execRaw runs a statement written with ? placeholders straight against the
// database, bypassing the Store.
func execRaw(t *testing.T, s *storage.Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB().ExecContext(context.Background(), rebind(s, query), args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}
