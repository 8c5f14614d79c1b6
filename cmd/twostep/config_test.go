package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/hkdf"

	"github.com/twostep/twostep/storage"
)

// Key material used by the ring tests; no error may quote any of it.
const (
	keyA = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	keyB = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="
	keyC = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC="
	// shortKey is 31 characters: one too few.
	shortKey = "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS"
)

func versions(r keyRing) []uint32 {
	var out []uint32
	for _, v := range r.versions {
		out = append(out, v.version)
	}
	return out
}

// checkNoMaterial fails if msg quotes any test key, or a long part of one.
func checkNoMaterial(t *testing.T, msg string) {
	t.Helper()
	for _, k := range []string{keyA, keyB, keyC, shortKey, "garbage-key-material-0123456789abcdef"} {
		if strings.Contains(msg, k[:8]) {
			t.Errorf("error %q quotes key material", msg)
		}
	}
}

func TestParseKeyRing(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint32 // versions, active first
		wantErr string
	}{
		{"two keys, newest first", "2:" + keyB + ",1:" + keyA, []uint32{2, 1}, ""},
		{"one key", "7:" + keyA, []uint32{7}, ""},
		{"spaces and a trailing comma", " 2:" + keyB + " , 1:" + keyA + ",", []uint32{2, 1}, ""},
		{"newlines, as in a file", "3:" + keyC + "\n2:" + keyB + "\n1:" + keyA, []uint32{3, 2, 1}, ""},
		// A new key may be rolled out to every instance before it becomes
		// the active one: the first entry is active, whatever its number.
		{"older version active", "1:" + keyA + ",2:" + keyB, []uint32{1, 2}, ""},
		{"largest version", "4294967295:" + keyA, []uint32{4294967295}, ""},
		{"key with a colon", "1:" + keyA + ":x", []uint32{1}, ""},
		{"empty", "", nil, "no keys"},
		{"only commas", ",,", nil, "no keys"},
		{"no version", keyA, nil, "entry 1 is not VERSION:KEY"},
		{"garbage second entry", "2:" + keyB + ",garbage-key-material-0123456789abcdef", nil, "entry 2 is not VERSION:KEY"},
		{"version zero", "0:" + keyA, nil, "version before ':' must be an integer from 1"},
		{"negative version", "-1:" + keyA, nil, "version before ':' must be an integer from 1"},
		{"version not a number", "v2:" + keyA, nil, "version before ':' must be an integer from 1"},
		{"version too large", "4294967296:" + keyA, nil, "version before ':' must be an integer from 1"},
		{"key material as the version", keyA + ":" + keyB, nil, "entry 1: the version"},
		{"empty key", "1:", nil, "entry 1 (version 1): the key is too short: 0 characters"},
		{"short key", "2:" + keyB + ",1:" + shortKey, nil, "entry 2 (version 1): the key is too short: 31 characters, want at least 32"},
		{"duplicate version", "2:" + keyB + ",2:" + keyA, nil, "entries 1 and 2 both have version 2"},
		{"duplicate key", "2:" + keyA + ",1:" + keyA, nil, "entries 1 and 2 (versions 2 and 1) have the same key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKeyRing(tc.in, "TWOSTEP_SECRET_KEYS")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "TWOSTEP_SECRET_KEYS: ") {
					t.Errorf("error %q does not name its source", err)
				}
				checkNoMaterial(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want versions %v", err, tc.want)
			}
			if !slices.Equal(versions(got), tc.want) {
				t.Errorf("got versions %v, want %v", versions(got), tc.want)
			}
		})
	}
}

// TestKeyDerivation pins the derivation: a single key must keep deriving
// the keys earlier versions of twostep derived from it, or an upgraded
// server could not read its own database.
func TestKeyDerivation(t *testing.T) {
	hkdf32 := func(material, label string) []byte {
		out := make([]byte, 32)
		if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(material), nil, []byte(label)), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ring, err := parseKeyRing("2:"+keyB+",1:"+keyA, "test")
	if err != nil {
		t.Fatal(err)
	}
	sk := ring.storageKeys()
	if len(sk) != 2 || sk[0].Version != 2 || sk[1].Version != 1 {
		t.Fatalf("storage keys: got %d keys, want versions 2 and 1", len(sk))
	}
	if !bytes.Equal(sk[0].Key, hkdf32(keyB, "twostep storage sealing key")) ||
		!bytes.Equal(sk[1].Key, hkdf32(keyA, "twostep storage sealing key")) {
		t.Errorf("storage keys are not HKDF(key, %q)", "twostep storage sealing key")
	}
	if !bytes.Equal(ring.hmac(), hkdf32(keyB, "twostep token hmac key")) {
		t.Errorf("hmac: not derived from the active key, version 2")
	}
	rotated := ring.rotatedHMAC()
	if len(rotated) != 1 || !bytes.Equal(rotated[0], hkdf32(keyA, "twostep token hmac key")) {
		t.Errorf("rotated hmac secrets: want exactly version 1's")
	}
	if bytes.Equal(sk[0].Key, ring.hmac()) {
		t.Errorf("the sealing key and the hmac key are the same")
	}
	single, err := singleKey([]byte(keyA), "TWOSTEP_SECRET_KEY")
	if err != nil {
		t.Fatal(err)
	}
	if s := single.storageKeys(); len(s) != 1 || s[0].Version != 1 || !bytes.Equal(s[0].Key, sk[1].Key) {
		t.Errorf("a single key is not version 1 with the same derivation")
	}
	if single.rotatedHMAC() != nil {
		t.Errorf("a single key has rotated hmac secrets")
	}
	for _, s := range []string{ring.String(), ring.GoString(), ring.LogValue().String()} {
		checkNoMaterial(t, s)
	}
}

func TestSecretKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	singleFile := write("single.key", keyA+"\n")
	ringFile := write("ring.key", "2:"+keyB+"\n1:"+keyA+"\n")
	shortFile := write("short.key", shortKey+"\n")
	badRingFile := write("bad-ring.key", "2:"+keyB+",2:"+keyA)
	pg := "postgres://u@localhost/db"
	sqlite := "sqlite:" + filepath.Join(dir, "x.db")
	tests := []struct {
		name     string
		env      map[string]string
		database string
		file     string
		want     []uint32
		wantErr  string
	}{
		{"ring", map[string]string{"TWOSTEP_SECRET_KEYS": "2:" + keyB + ",1:" + keyA}, pg, "", []uint32{2, 1}, ""},
		{"single key", map[string]string{"TWOSTEP_SECRET_KEY": keyA}, pg, "", []uint32{1}, ""},
		{"single key too short", map[string]string{"TWOSTEP_SECRET_KEY": shortKey}, pg, "", nil, "TWOSTEP_SECRET_KEY: the secret key is too short: 31 characters"},
		{"single key wins over a file", map[string]string{"TWOSTEP_SECRET_KEY": keyC}, pg, ringFile, []uint32{1}, ""},
		{"file with a single key", nil, pg, singleFile, []uint32{1}, ""},
		{"file with a ring", nil, pg, ringFile, []uint32{2, 1}, ""},
		{"file with a short key", nil, pg, shortFile, nil, shortFile + ": the secret key is too short"},
		{"file with a bad ring", nil, pg, badRingFile, nil, badRingFile + ": entries 1 and 2 both have version 2"},
		{"missing file", nil, pg, filepath.Join(dir, "nope"), nil, "read secret key"},
		{"ring and single key", map[string]string{"TWOSTEP_SECRET_KEYS": "1:" + keyA, "TWOSTEP_SECRET_KEY": keyB}, pg, "", nil, "not both"},
		{"ring and file", map[string]string{"TWOSTEP_SECRET_KEYS": "1:" + keyA}, pg, singleFile, nil, "not both"},
		{"postgres without a key", nil, pg, "", nil, "a secret key is required with PostgreSQL"},
		{"sqlite default file", nil, sqlite, "", []uint32{1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env{getenv: func(k string) string { return tc.env[k] }}
			f := dbFlags{database: tc.database, secretKeyFile: tc.file}
			got, err := f.secretKeys(e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				checkNoMaterial(t, err.Error())
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want versions %v", err, tc.want)
			}
			if !slices.Equal(versions(got), tc.want) {
				t.Errorf("got versions %v, want %v", versions(got), tc.want)
			}
		})
	}
}

// TestSQLiteKeyFile: the key file beside a SQLite database is created once,
// private, said so once, and read back the same on later starts, in either
// format.
func TestSQLiteKeyFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "twostep.db")
	ctx := context.Background()
	open := func() (keyRing, string) {
		t.Helper()
		var stderr bytes.Buffer
		f := dbFlags{database: "sqlite:" + db}
		store, ring, err := f.open(ctx, env{getenv: func(string) string { return "" }, stderr: &stderr}, storage.Options{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		store.Close()
		return ring, stderr.String()
	}
	first, said := open()
	if !strings.Contains(said, "created the secret key file") || !strings.Contains(said, db+".key") {
		t.Errorf("first start: stderr %q, want a line naming the created key file", said)
	}
	fi, err := os.Stat(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: got %v, want 0600", fi.Mode().Perm())
	}
	second, said := open()
	if said != "" {
		t.Errorf("second start: stderr %q, want nothing", said)
	}
	if second.created != "" || !bytes.Equal(first.hmac(), second.hmac()) {
		t.Errorf("second start: a different key, or created again")
	}

	// The operator turns the file into a ring with a new active key.
	old, err := os.ReadFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db+".key", []byte("2:"+keyB+"\n1:"+strings.TrimSpace(string(old))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	third, _ := open()
	if !slices.Equal(versions(third), []uint32{2, 1}) {
		t.Fatalf("ring file: got versions %v, want 2, 1", versions(third))
	}
	if r := third.rotatedHMAC(); len(r) != 1 || !bytes.Equal(r[0], first.hmac()) {
		t.Errorf("ring file: the old key's hmac secret is not among the rotated ones")
	}
}
