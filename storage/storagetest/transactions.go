package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"

	"github.com/twostep/twostep/storage"
)

// transactionTests check fosite's storage.Transactional: the Store methods
// called with the context BeginTX returns join its transaction.
var transactionTests = []test{
	{"Transaction/Finish", testTransactionFinish},
	{"Transaction/Isolation", testTransactionIsolation},
	{"Transaction/JoinedByCompoundWrites", testTransactionJoined},
	{"Transaction/NoTransaction", testNoTransaction},
}

func testTransactionFinish(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	tests := []struct {
		name    string
		finish  func(context.Context) error
		wantErr error // of a Get after the transaction ends
	}{
		{"commit keeps the write", s.Commit, nil},
		{"rollback discards the write", s.Rollback, fosite.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig := "access-" + tc.name
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatalf("begin: %v", err)
			}
			if err := s.CreateAccessTokenSession(txCtx, sig, newRequest(clk, "client-1", "request-1", "user-1")); err != nil {
				s.Rollback(txCtx)
				t.Fatalf("create in transaction: %v", err)
			}
			if _, err := s.GetAccessTokenSession(txCtx, sig, newSession()); err != nil {
				s.Rollback(txCtx)
				t.Fatalf("get in the same transaction: got %v, want nil", err)
			}
			if err := tc.finish(txCtx); err != nil {
				t.Fatalf("finish: %v", err)
			}
			_, err = s.GetAccessTokenSession(ctx, sig, newSession())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("get after the transaction: got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// testTransactionIsolation checks that a write is invisible outside its
// transaction until it commits.
func testTransactionIsolation(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer s.Rollback(txCtx)
	if err := s.CreateAccessTokenSession(txCtx, "access-1", newRequest(clk, "client-1", "request-1", "user-1")); err != nil {
		t.Fatalf("create in transaction: %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "access-1", newSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("get outside the open transaction: got %v, want fosite.ErrNotFound", err)
	}
	if err := s.Commit(txCtx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "access-1", newSession()); err != nil {
		t.Errorf("get after commit: got %v, want nil", err)
	}
}

// testTransactionJoined checks that methods that write several rows in
// their own transaction join the caller's instead, so the caller's
// rollback undoes them.
func testTransactionJoined(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	createClient(t, s, "client-1")
	tests := []struct {
		name  string
		write func(ctx context.Context) error
		check func(t *testing.T)
	}{
		{
			"DeleteClient",
			func(ctx context.Context) error { return s.DeleteClient(ctx, "client-1") },
			func(t *testing.T) {
				if _, err := s.Client(ctx, "client-1"); err != nil {
					t.Errorf("get client after the rollback: got %v, want nil", err)
				}
			},
		},
		{
			"CreateSigningKey",
			func(ctx context.Context) error {
				return s.CreateSigningKey(ctx, storage.SigningKey{ID: "key-1", Algorithm: "RS256", PrivateKey: []byte("der")})
			},
			func(t *testing.T) {
				keys, err := s.ListSigningKeys(ctx, clk.Now())
				if err != nil || len(keys) != 0 {
					t.Errorf("list keys after the rollback: got %d keys, %v, want none", len(keys), err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatalf("begin: %v", err)
			}
			if err := tc.write(txCtx); err != nil {
				s.Rollback(txCtx)
				t.Fatalf("write in transaction: %v", err)
			}
			if err := s.Rollback(txCtx); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			tc.check(t)
		})
	}
}

func testNoTransaction(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	if err := s.Commit(ctx); err == nil {
		t.Error("commit without a transaction: got nil, want an error")
	}
	if err := s.Rollback(ctx); err == nil {
		t.Error("rollback without a transaction: got nil, want an error")
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if err := s.Commit(txCtx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// fosite rolls back on every error path, including after a failed
	// commit; a finished transaction makes that a no-op.
	if err := s.Rollback(txCtx); err != nil {
		t.Errorf("rollback after commit: got %v, want nil", err)
	}
}
