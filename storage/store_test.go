package storage_test

import (
	"context"
	"path/filepath"
	"testing"

	fositestorage "github.com/ory/fosite/storage"

	"github.com/twostep/twostep/storage"
	"github.com/twostep/twostep/storage/storagetest"
)

// fosite calls BeginTX, Commit and Rollback only if the store implements
// its storage.Transactional.
var _ fositestorage.Transactional = (*storage.Store)(nil)

func TestSQLite(t *testing.T) {
	storagetest.Run(t, storagetest.SQLiteDSN)
}

func TestPostgres(t *testing.T) {
	storagetest.PostgresAdminDSN(t)
	storagetest.Run(t, storagetest.PostgresDSN)
}

// backends names each database the tests run against; dsn skips (or fails
// on CI) when the database is not available.
var backends = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", storagetest.SQLiteDSN},
	{"postgres", storagetest.PostgresDSN},
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			s := storagetest.New(t, dsn, nil) // migrates once
			if err := s.CreateUser(ctx, storage.User{ID: "id-alice", Username: "alice", PasswordHash: "h"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate again: %v", err)
			}
			// Another instance starting on the same database migrates too.
			other := storagetest.New(t, dsn, nil)
			if err := other.Migrate(ctx); err != nil {
				t.Fatalf("migrate from another store: %v", err)
			}
			if _, err := other.GetUser(ctx, "id-alice"); err != nil {
				t.Errorf("get user after migrating again: got %v, want nil", err)
			}
			var versions int
			if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob("migrations/*." + s.Dialect() + ".sql")
			if err != nil || len(files) == 0 {
				t.Fatalf("list migrations: got %d files, %v, want some", len(files), err)
			}
			if versions != len(files) {
				t.Errorf("got %d rows in schema_migrations, want 1 per migration (%d)", versions, len(files))
			}
		})
	}
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			stores := make([]*storage.Store, 4)
			for i := range stores {
				s, err := storage.Open(ctx, dsn, storage.Options{SecretKeys: []storage.SecretKey{{Version: 1, Key: make([]byte, 32)}}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				stores[i] = s
			}
			errs := make(chan error, len(stores))
			for _, s := range stores {
				go func() { errs <- s.Migrate(ctx) }()
			}
			for range stores {
				if err := <-errs; err != nil {
					t.Errorf("migrate: %v", err)
				}
			}
			if _, err := stores[0].ListUsers(ctx); err != nil {
				t.Errorf("list users after concurrent migrations: %v", err)
			}
		})
	}
}
