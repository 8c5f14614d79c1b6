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

// NewDSN returns the DSN of a fresh, empty database that goes away when t
// ends: SQLiteDSN or PostgresDSN.
type NewDSN func(t testing.TB) string

// testKey is the secret key, version 1, that New seals with.
var testKey = storage.SecretKey{Version: 1, Key: []byte("twostep-storagetest-secret-key!!")}

// New opens the store at dsn with a fixed test secret key (version 1) and
// the clock now (time.Now when nil), migrates it, and closes it when t ends.
func New(t testing.TB, dsn string, now func() time.Time) *storage.Store {
	t.Helper()
	s := Reopen(t, dsn, now, testKey)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// Reopen opens another store on the database at dsn, which New has
// migrated, with the key ring keys (newest first) and the clock now, and
// closes it when t ends. It is how a test plays an instance whose secret
// keys differ.
func Reopen(t testing.TB, dsn string, now func() time.Time, keys ...storage.SecretKey) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), dsn, storage.Options{SecretKeys: keys, Now: now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
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

// dsnTest is a conformance test that opens more stores on the same
// database (with other secret keys, say), so it gets the database's DSN
// too.
type dsnTest struct {
	name string
	run  func(t *testing.T, dsn string, s *storage.Store, clk *Clock)
}

// Run runs the conformance suite. newDSN must give each subtest a fresh,
// empty database; the suite opens it with New, on a fake clock, so that
// expiry and throttling windows are deterministic.
func Run(t *testing.T, newDSN NewDSN) {
	var tests []dsnTest
	for _, group := range [][]test{
		fositeTests, transactionTests, userTests, clientTests, loginSessionTests,
		authRequestTests, grantTests, signingKeyTests, throttleTests, recoveryCodeTests,
		deviceTests, auditTests, expiryTests, concurrencyTests, backchannelTests, parTests, accountTests,
	} {
		for _, tc := range group {
			tests = append(tests, dsnTest{tc.name, func(t *testing.T, _ string, s *storage.Store, clk *Clock) { tc.run(t, s, clk) }})
		}
	}
	tests = append(tests, secretTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := NewClock(t0)
			dsn := newDSN(t)
			tc.run(t, dsn, New(t, dsn, clk.Now), clk)
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
