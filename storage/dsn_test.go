package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name        string
		dsn         string
		wantDriver  string
		wantSource  string // prefix
		wantErrText string // "" for no error
	}{
		{"sqlite relative", "sqlite:twostep.db", "sqlite", "file:twostep.db?", ""},
		{"sqlite absolute", "sqlite:/var/lib/twostep/db.sqlite", "sqlite", "file:/var/lib/twostep/db.sqlite?", ""},
		{"sqlite with slashes", "sqlite:///var/lib/twostep.db", "sqlite", "file:/var/lib/twostep.db?", ""},
		{"sqlite percent escaped", "sqlite:/tmp/100%.db", "sqlite", "file:/tmp/100%25.db?", ""},
		{"postgres", "postgres://u:p@db:5432/twostep?sslmode=disable", "postgres", "postgres://u:p@db:5432/twostep?connect_timeout=10&sslmode=disable", ""},
		{"postgresql", "postgresql://db/twostep", "postgres", "postgresql://db/twostep?connect_timeout=10", ""},
		{"own connect_timeout kept", "postgres://db/twostep?connect_timeout=3", "postgres", "postgres://db/twostep?connect_timeout=3", ""},
		{"empty", "", "", "", "unsupported DSN"},
		{"sqlite without path", "sqlite:", "", "", "needs a path"},
		{"sqlite slashes only", "sqlite://", "", "", "needs a path"},
		{"sqlite in memory", "sqlite::memory:", "", "", "to a file"},
		{"sqlite file URI", "sqlite:file:x.db?mode=ro", "", "", "to a file"},
		{"sqlite with options", "sqlite:x.db?_pragma=foreign_keys(0)", "", "", "must not contain '?'"},
		{"sqlite with fragment", "sqlite:x.db#y", "", "", "must not contain '?' or '#'"},
		{"bare path", "twostep.db", "", "", "want sqlite:PATH or postgres://"},
		{"mysql", "mysql://root:hunter2@db/twostep", "", "", `unsupported DSN "mysql://root:xxxxx@db/twostep"`},
		{"key-value postgres", "host=db user=u password=hunter2", "", "", "unsupported DSN"},
		{"not a URL", "root:hunter2@tcp(db)/twostep", "", "", "unsupported DSN"},
		{"bad postgres port", "postgres://u:hunter2@db:port/twostep", "", "", `bad postgres DSN`},
		{"bad postgres escape", "postgres://u:hunter2@db/%zz", "", "", `bad postgres DSN`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			driver, source, dialect, err := parseDSN(tc.dsn)
			if tc.wantErrText != "" {
				if err == nil {
					t.Fatalf("got driver %q, source %q, want an error containing %q", driver, source, tc.wantErrText)
				}
				if !strings.Contains(err.Error(), tc.wantErrText) {
					t.Errorf("got error %q, want it to contain %q", err, tc.wantErrText)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("got error %q, want the password redacted", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if driver != tc.wantDriver || dialect != tc.wantDriver || !strings.HasPrefix(source, tc.wantSource) {
				t.Errorf("got %q, %q, %q, want driver and dialect %q, source starting %q", driver, source, dialect, tc.wantDriver, tc.wantSource)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	sqliteDSN := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	ring := []SecretKey{{Version: 1, Key: make([]byte, 32)}}
	tests := []struct {
		name        string
		dsn         string
		keys        []SecretKey
		wantErr     error // nil: any error
		wantErrText string
	}{
		{"no key", sqliteDSN, nil, nil, "a secret key is required"},
		{"short key", sqliteDSN, []SecretKey{{Version: 1, Key: make([]byte, 16)}}, nil, "secret key 1 must be 32 bytes, got 16"},
		{"short older key", sqliteDSN, []SecretKey{{Version: 2, Key: make([]byte, 32)}, {Version: 1, Key: make([]byte, 31)}}, nil, "secret key 1 must be 32 bytes, got 31"},
		{"version twice", sqliteDSN, []SecretKey{{Version: 3, Key: make([]byte, 32)}, {Version: 3, Key: make([]byte, 32)}}, nil, "secret key version 3 given twice"},
		{"bad DSN", "mysql://root:hunter2@db/x", ring, nil, "unsupported DSN"},
		{"bad postgres URL", "postgres://u:hunter2@db:port/x", ring, nil, "bad postgres DSN"},
		{"unreachable postgres", "postgres://u:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", ring, ErrUnavailable, "postgres"},
		{"sqlite directory missing", "sqlite:" + filepath.Join(t.TempDir(), "missing", "a.db"), ring, ErrUnavailable, "sqlite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dsn, Options{SecretKeys: tc.keys})
			if err == nil {
				s.Close()
				t.Fatalf("got a store, want an error containing %q", tc.wantErrText)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("got %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErrText) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got error %q, want it to contain %q and no password", err, tc.wantErrText)
			}
		})
	}
}

// TestOpenSQLitePath checks that the file opened is the one named, even
// with characters that mean something in a URI.
func TestOpenSQLitePath(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a b%41;c.db")
	s, err := Open(ctx, "sqlite:"+path, Options{SecretKeys: []SecretKey{{Version: 1, Key: make([]byte, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("stat the named file: %v", err)
	}
}
