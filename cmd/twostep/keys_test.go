package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRotateSecretsCLI follows the documented rotation: put a new key in
// front, re-seal, drop the old key.
func TestRotateSecretsCLI(t *testing.T) {
	ring := ""
	in := &instance{
		database: "sqlite:" + filepath.Join(t.TempDir(), "rotate.db"),
		getenv: func(k string) string {
			if k == "TWOSTEP_SECRET_KEYS" {
				return ring
			}
			return ""
		},
	}
	ring = "1:" + keyA
	mustCLI(t, in, "", "keys", "rotate") // seals a private signing key of each algorithm with version 1

	// Only the new key: the database holds a value it cannot open.
	ring = "2:" + keyB
	if _, _, err := runCLI(in, "", "keys", "rotate-secrets"); err == nil || !strings.Contains(err.Error(), "version 1 is not configured") {
		t.Fatalf("rotate-secrets without the old key: got %v, want version 1 is not configured", err)
	} else {
		checkNoMaterial(t, err.Error())
	}

	ring = "2:" + keyB + ",1:" + keyA
	out := mustCLI(t, in, "", "keys", "rotate-secrets")
	for _, want := range []string{"re-encrypted 2 sealed value(s) with secret key version 2", "version(s) 1", "TWOSTEP_SECRET_KEYS", "30 days"} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate-secrets: output lacks %q:\n%s", want, out)
		}
	}

	// Now the old key can go: everything opens with the new one alone.
	ring = "2:" + keyB
	out = mustCLI(t, in, "", "keys", "rotate-secrets")
	if !strings.Contains(out, "re-encrypted 0 sealed value(s)") || !strings.Contains(out, "only key configured") {
		t.Errorf("rotate-secrets with the new key alone: got\n%s", out)
	}
	mustCLI(t, in, "", "keys", "rotate")

	if audit := mustCLI(t, in, "", "audit"); strings.Count(audit, "admin.keys.rotate_secrets") != 2 || strings.Count(audit, "admin.keys.rotate ") != 4 {
		t.Errorf("audit: want four rotate (two algorithms, twice) and two rotate_secrets events:\n%s", audit)
	}
}

// TestKeysRotateAlg: `keys rotate --alg` rotates the key of one algorithm,
// and without it one of each; the retired key stays listed (and published)
// for the retention.
func TestKeysRotateAlg(t *testing.T) {
	in := cliInstance(t)
	type row struct{ alg, status string }
	list := func() map[string]row {
		t.Helper()
		rows := map[string]row{}
		for _, line := range strings.Split(strings.TrimSpace(mustCLI(t, in, "", "keys", "list")), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 {
				t.Fatalf("keys list line %q", line)
			}
			rows[f[0]] = row{alg: f[1], status: strings.Join(f[3:], " ")}
		}
		return rows
	}
	newKeys := func(out string) map[string]string { // kid -> alg
		t.Helper()
		ids := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, "new "); ok {
				f := strings.Fields(rest) // ALG signing key KID
				if len(f) != 4 {
					t.Fatalf("rotate output line %q", line)
				}
				ids[f[3]] = f[0]
			}
		}
		return ids
	}

	es := newKeys(mustCLI(t, in, "", "keys", "rotate", "--alg", "ES256"))
	if len(es) != 1 {
		t.Fatalf("rotate --alg ES256: got new keys %v, want one", es)
	}
	var ecID string
	for id, alg := range es {
		ecID = id
		if alg != "ES256" {
			t.Errorf("rotate --alg ES256: got a %s key", alg)
		}
	}
	if got := list(); len(got) != 1 || got[ecID] != (row{"ES256", "signing"}) {
		t.Errorf("keys list after rotate --alg ES256: got %v, want only %s ES256 signing", got, ecID)
	}

	all := newKeys(mustCLI(t, in, "", "keys", "rotate"))
	if len(all) != 2 {
		t.Fatalf("rotate: got new keys %v, want one per algorithm", all)
	}
	got := list()
	if len(got) != 3 {
		t.Fatalf("keys list after rotate: got %v, want 3 keys", got)
	}
	for id, alg := range all {
		if got[id] != (row{alg, "signing"}) {
			t.Errorf("new key %s: got %v, want %s signing", id, got[id], alg)
		}
	}
	if r := got[ecID]; r.alg != "ES256" || !strings.HasPrefix(r.status, "published until ") {
		t.Errorf("rotated-out ES256 key: got %v, want published until ...", r)
	}

	_, _, err := runCLI(in, "", "keys", "rotate", "--alg", "HS256")
	if err == nil || !strings.Contains(err.Error(), "--alg") {
		t.Errorf("rotate --alg HS256: got %v, want an error about --alg", err)
	}
	if n := len(list()); n != 3 {
		t.Errorf("after a refused rotate: got %d keys, want 3", n)
	}
}
