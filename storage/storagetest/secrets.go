package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twostep/twostep/storage"
)

var secretTests = []dsnTest{
	{"Secrets/Reseal", testResealSecrets},
	{"Secrets/ResealUnknownKey", testResealUnknownKey},
}

// keyV2 and keyV3 are newer sealing keys than testKey (version 1).
var (
	keyV2 = storage.SecretKey{Version: 2, Key: []byte("twostep-storagetest-secret-key-2")}
	keyV3 = storage.SecretKey{Version: 3, Key: []byte("twostep-storagetest-secret-key-3")}
)

// sealed names one sealed value: its table, column and row.
type sealed struct{ table, column, id string }

// sealedVersion returns the key version a sealed value starts with.
func sealedVersion(t *testing.T, s *storage.Store, v sealed) uint32 {
	t.Helper()
	raw := rawColumn(t, s, v.table, v.column, "id", v.id)
	if len(raw) < 4 {
		t.Fatalf("%s.%s of %s: got %d bytes, want a sealed value", v.table, v.column, v.id, len(raw))
	}
	return binary.BigEndian.Uint32(raw)
}

// secretsData is what testResealSecrets stores and reads back.
type secretsData struct {
	totp    map[string]string // user ID → TOTP secret
	pending map[string]string // login session ID → pending TOTP secret
	keys    map[string][]byte // signing key ID → private key
}

// readSecrets reports whether s opens every sealed value in want, and
// whether each is what was stored.
func readSecrets(s *storage.Store, want secretsData) (ok bool, err error) {
	ctx := context.Background()
	for id, secret := range want.totp {
		u, err := s.GetUser(ctx, id)
		if err != nil {
			return false, err
		}
		if u.TOTPSecret != secret {
			return false, nil
		}
	}
	for id, secret := range want.pending {
		ls, err := s.GetLoginSession(ctx, id)
		if err != nil {
			return false, err
		}
		if ls.PendingTOTPSecret != secret {
			return false, nil
		}
	}
	keys, err := s.ListSigningKeys(ctx, time.Time{})
	if err != nil {
		return false, err
	}
	if len(keys) != len(want.keys) {
		return false, nil
	}
	for _, k := range keys {
		if !bytes.Equal(k.PrivateKey, want.keys[k.ID]) {
			return false, nil
		}
	}
	return true, nil
}

// testResealSecrets rotates the sealing key: a store whose ring is
// [v2, v1] reads what v1 sealed, reseals it under v2, and then a store with
// only v2 reads everything while one with only v1 reads nothing.
func testResealSecrets(t *testing.T, dsn string, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	want := secretsData{
		totp:    map[string]string{"id-alice": "ALICESECRETABCDEFGHIJKLMNOPQRSTU", "id-carol": "CAROLSECRETABCDEFGHIJKLMNOPQRSTU"},
		pending: map[string]string{"login-1": "PENDINGSECRETABCDEFGHIJKLMNOPQRS"},
		keys:    map[string][]byte{"key-1": randomBytes(t, 64), "key-2": randomBytes(t, 64)},
	}
	// Sealed under v1 by the suite's store: 2 TOTP secrets, 1 pending
	// secret, 2 signing keys. Bob has no authenticator: nothing to seal.
	for _, id := range []string{"id-alice", "id-bob", "id-carol"} {
		createUser(t, s, id, id[3:])
	}
	for _, id := range []string{"id-alice", "id-carol"} {
		if err := s.ConfirmTOTP(ctx, id, want.totp[id], 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	createLoginSession(t, s, clk, "login-1", storage.StateTOTP, "id-dave")
	if err := s.SetPendingTOTPSecret(ctx, "login-1", want.pending["login-1"]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"key-1", "key-2"} {
		if err := s.CreateSigningKey(ctx, storage.SigningKey{ID: id, Algorithm: "RS256", PrivateKey: want.keys[id]}); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	values := []sealed{
		{"users", "totp_secret", "id-alice"},
		{"users", "totp_secret", "id-carol"},
		{"login_sessions", "pending_totp_secret", "login-1"},
		{"signing_keys", "private_key", "key-1"},
		{"signing_keys", "private_key", "key-2"},
	}
	for _, v := range values {
		if got := sealedVersion(t, s, v); got != 1 {
			t.Errorf("%s.%s of %s: got key version %d, want 1", v.table, v.column, v.id, got)
		}
	}

	// The rotated instance seals new values under v2 and still opens v1's.
	rotated := Reopen(t, dsn, clk.Now, keyV2, testKey)
	want.totp["id-dave"] = "DAVESECRETABCDEFGHIJKLMNOPQRSTUV"
	createUser(t, rotated, "id-dave", "dave")
	if err := rotated.ConfirmTOTP(ctx, "id-dave", want.totp["id-dave"], 1, nil); err != nil {
		t.Fatal(err)
	}
	dave := sealed{"users", "totp_secret", "id-dave"}
	if got := sealedVersion(t, rotated, dave); got != 2 {
		t.Errorf("a value sealed by the rotated store: got key version %d, want 2", got)
	}
	if ok, err := readSecrets(rotated, want); !ok || err != nil {
		t.Fatalf("read with [v2, v1] before resealing: got %v, %v, want every secret", ok, err)
	}

	n, err := rotated.ResealSecrets(ctx)
	if err != nil || n != len(values) {
		t.Errorf("reseal: got %d, %v, want %d (every value v1 sealed, not v2's)", n, err, len(values))
	}
	for _, v := range append(values, dave) {
		if got := sealedVersion(t, s, v); got != 2 {
			t.Errorf("%s.%s of %s after resealing: got key version %d, want 2", v.table, v.column, v.id, got)
		}
	}
	if n, err := rotated.ResealSecrets(ctx); err != nil || n != 0 {
		t.Errorf("reseal again: got %d, %v, want 0", n, err)
	}

	tests := []struct {
		name   string
		keys   []storage.SecretKey
		wantOK bool
	}{
		{"[v2, v1]", []storage.SecretKey{keyV2, testKey}, true},
		{"only v2", []storage.SecretKey{keyV2}, true},
		{"[v3, v2]", []storage.SecretKey{keyV3, keyV2}, true},
		{"only v1", []storage.SecretKey{testKey}, false},
		{"a wrong key as v2", []storage.SecretKey{{Version: 2, Key: keyV3.Key}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := readSecrets(Reopen(t, dsn, clk.Now, tc.keys...), want)
			if tc.wantOK && (!ok || err != nil) {
				t.Errorf("got %v, %v, want every secret read", ok, err)
			}
			if !tc.wantOK && err == nil {
				t.Errorf("got %v, nil, want an error", ok)
			}
		})
	}
	// Each store that cannot open a value fails on every kind of value.
	v1 := Reopen(t, dsn, clk.Now, testKey)
	for _, read := range []struct {
		name string
		read func() error
	}{
		{"user", func() error { _, err := v1.GetUser(ctx, "id-alice"); return err }},
		{"login session", func() error { _, err := v1.GetLoginSession(ctx, "login-1"); return err }},
		{"signing keys", func() error { _, err := v1.ListSigningKeys(ctx, time.Time{}); return err }},
	} {
		if err := read.read(); err == nil {
			t.Errorf("read %s with only v1 after resealing: got nil, want an error", read.name)
		}
	}
}

// testResealUnknownKey checks that a value no key of the ring opens fails
// the whole run, and that the values resealed before it are rolled back.
func testResealUnknownKey(t *testing.T, dsn string, s *storage.Store, clk *Clock) {
	ctx := context.Background()
	// Alice's secret is sealed under v2; the signing key, read after the
	// users, under v1, which the ring [v3, v2] lacks.
	v2 := Reopen(t, dsn, clk.Now, keyV2)
	createUser(t, v2, "id-alice", "alice")
	if err := v2.ConfirmTOTP(ctx, "id-alice", "ALICESECRETABCDEFGHIJKLMNOPQRSTU", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSigningKey(ctx, storage.SigningKey{ID: "key-1", Algorithm: "RS256", PrivateKey: []byte("der")}); err != nil {
		t.Fatal(err)
	}
	n, err := Reopen(t, dsn, clk.Now, keyV3, keyV2).ResealSecrets(ctx)
	if err == nil || n != 0 {
		t.Errorf("reseal without v1: got %d, %v, want 0 and an error", n, err)
	}
	for _, tc := range []struct {
		value sealed
		want  uint32
	}{
		{sealed{"users", "totp_secret", "id-alice"}, 2},
		{sealed{"signing_keys", "private_key", "key-1"}, 1},
	} {
		if got := sealedVersion(t, s, tc.value); got != tc.want {
			t.Errorf("%s.%s of %s after a failed reseal: got key version %d, want %d", tc.value.table, tc.value.column, tc.value.id, got, tc.want)
		}
	}
	if u, err := v2.GetUser(ctx, "id-alice"); err != nil || u.TOTPSecret != "ALICESECRETABCDEFGHIJKLMNOPQRSTU" {
		t.Errorf("read with v2 after a failed reseal: got %q, %v, want the secret", u.TOTPSecret, err)
	}
}
