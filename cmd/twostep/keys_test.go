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
	mustCLI(t, in, "", "keys", "rotate") // seals a private signing key with version 1

	// Only the new key: the database holds a value it cannot open.
	ring = "2:" + keyB
	if _, _, err := runCLI(in, "", "keys", "rotate-secrets"); err == nil || !strings.Contains(err.Error(), "version 1 is not configured") {
		t.Fatalf("rotate-secrets without the old key: got %v, want version 1 is not configured", err)
	} else {
		checkNoMaterial(t, err.Error())
	}

	ring = "2:" + keyB + ",1:" + keyA
	out := mustCLI(t, in, "", "keys", "rotate-secrets")
	for _, want := range []string{"re-encrypted 1 sealed value(s) with secret key version 2", "version(s) 1", "TWOSTEP_SECRET_KEYS", "30 days"} {
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

	if audit := mustCLI(t, in, "", "audit"); strings.Count(audit, "admin.keys.rotate_secrets") != 2 || strings.Count(audit, "admin.keys.rotate ") != 2 {
		t.Errorf("audit: want two rotate and two rotate_secrets events:\n%s", audit)
	}
}
