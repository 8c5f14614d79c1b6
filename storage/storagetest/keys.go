package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var signingKeyTests = []test{
	{"SigningKeys/Rotation", testSigningKeyRotation},
	{"SigningKeys/SealedAtRest", testSigningKeySealed},
	{"SigningKeys/Duplicate", testSigningKeyDuplicate},
	{"SigningKeys/PerAlgorithm", testSigningKeyPerAlgorithm},
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testSigningKeyRotation(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if keys, err := s.ListSigningKeys(ctx, time.Time{}); err != nil || len(keys) != 0 {
		t.Fatalf("list keys of an empty store: got %d, %v, want none", len(keys), err)
	}
	var created []storage.SigningKey
	for _, id := range []string{"key-1", "key-2", "key-3"} {
		k := storage.SigningKey{ID: id, Algorithm: "RS256", PrivateKey: randomBytes(t, 64)}
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		k.CreatedAt = clk.Now()
		created = append(created, k)
		clk.Add(time.Hour)
	}
	// Each key retired when the next one was created.
	created[0].RetiredAt = created[1].CreatedAt
	created[1].RetiredAt = created[2].CreatedAt

	tests := []struct {
		name  string
		since time.Time
		want  []storage.SigningKey
	}{
		{"all", time.Time{}, []storage.SigningKey{created[2], created[1], created[0]}},
		{"retired after since", created[1].CreatedAt.Add(-time.Minute), []storage.SigningKey{created[2], created[1], created[0]}},
		{"retired at since", created[1].CreatedAt, []storage.SigningKey{created[2], created[1]}},
		{"only the current", clk.Now(), []storage.SigningKey{created[2]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListSigningKeys(ctx, tc.since)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.ID != w.ID || g.Algorithm != w.Algorithm || !bytes.Equal(g.PrivateKey, w.PrivateKey) {
					t.Errorf("key %d: got %s %s, want %s %s (newest first, private key intact)", i, g.ID, g.Algorithm, w.ID, w.Algorithm)
				}
				if !sameTime(g.CreatedAt, w.CreatedAt) {
					t.Errorf("key %s: got created at %v, want %v", w.ID, g.CreatedAt, w.CreatedAt)
				}
				if w.RetiredAt.IsZero() && !g.RetiredAt.IsZero() || !w.RetiredAt.IsZero() && !sameTime(g.RetiredAt, w.RetiredAt) {
					t.Errorf("key %s: got retired at %v, want %v", w.ID, g.RetiredAt, w.RetiredAt)
				}
			}
		})
	}
}

func testSigningKeySealed(t *testing.T, s *storage.Store, _ *Clock) {
	ctx := context.Background()
	der := randomBytes(t, 128)
	if err := s.CreateSigningKey(ctx, storage.SigningKey{ID: "key-1", Algorithm: "RS256", PrivateKey: der}); err != nil {
		t.Fatal(err)
	}
	raw := rawColumn(t, s, "signing_keys", "private_key", "id", "key-1")
	if len(raw) <= len(der) || bytes.Contains(raw, der[:32]) {
		t.Errorf("the private key is not sealed at rest: got %d bytes in the column", len(raw))
	}
}

func testSigningKeyDuplicate(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	if err := s.CreateSigningKey(ctx, storage.SigningKey{ID: "key-1", Algorithm: "RS256", PrivateKey: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	err := s.CreateSigningKey(ctx, storage.SigningKey{ID: "key-1", Algorithm: "RS256", PrivateKey: []byte("two")})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("create with a taken ID: got %v, want storage.ErrAlreadyExists", err)
	}
	// The failed create must not have retired the signing key.
	keys, err := s.ListSigningKeys(ctx, clk.Now())
	if err != nil || len(keys) != 1 || !keys[0].RetiredAt.IsZero() || string(keys[0].PrivateKey) != "one" {
		t.Errorf("list keys after the failed create: got %+v, %v, want key-1 still current", keys, err)
	}
}

// testSigningKeyPerAlgorithm: a new key retires the keys of its own
// algorithm only, so one key per algorithm signs.
func testSigningKeyPerAlgorithm(t *testing.T, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	for _, k := range []storage.SigningKey{
		{ID: "rsa-1", Algorithm: "RS256"},
		{ID: "ec-1", Algorithm: "ES256"},
		{ID: "rsa-2", Algorithm: "RS256"},
	} {
		k.PrivateKey = randomBytes(t, 32)
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("create %s: %v", k.ID, err)
		}
		clk.Add(time.Minute)
	}
	keys, err := s.ListSigningKeys(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	retired := map[string]bool{}
	for _, k := range keys {
		retired[k.ID] = !k.RetiredAt.IsZero()
	}
	want := map[string]bool{"rsa-2": false, "ec-1": false, "rsa-1": true}
	if len(retired) != len(want) {
		t.Fatalf("got keys %v, want %v (id: retired)", retired, want)
	}
	for id, w := range want {
		if retired[id] != w {
			t.Errorf("key %s: got retired %t, want %t", id, retired[id], w)
		}
	}
}
