package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twostep/twostep/login"
	"github.com/twostep/twostep/storage"
)

// TestUserUnlockAndDevices drives `user show`, `user unlock` and `user
// devices` through run against a locked user with remembered devices.
func TestUserUnlockAndDevices(t *testing.T) {
	in := cliInstance(t)
	mustCLI(t, in, "a long enough password\n", "user", "add", "alice", "--password-stdin")
	store := openTestStore(t, in)
	ctx := context.Background()
	alice, err := store.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		_, err := store.CountCodeFailure(ctx, alice.ID, login.MaxAccountCodes)
		if errors.Is(err, storage.ErrConflict) {
			break
		}
		if err != nil || i > login.MaxAccountCodes {
			t.Fatalf("count code failure %d: %v", i, err)
		}
	}
	now := time.Now()
	one := "abcdef0123456789" + strings.Repeat("1", 48)
	two := "abcdef01" + strings.Repeat("2", 56)
	for _, d := range []storage.Device{
		{ID: one, UserID: alice.ID, UserAgent: "Firefox/130", IP: "192.0.2.10", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(720 * time.Hour)},
		{ID: two, UserID: alice.ID, UserAgent: "Safari/17", IP: "192.0.2.11", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
	} {
		if err := store.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	showLine := func(field string) string {
		t.Helper()
		out := mustCLI(t, in, "", "user", "show", "alice")
		m := regexp.MustCompile(`(?m)^` + field + `:\s+(.*)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("user show has no %q line:\n%s", field, out)
		}
		return m[1]
	}
	if got := showLine("locked"); !strings.HasPrefix(got, "yes, after 100 wrong codes") {
		t.Errorf("user show, locked: got %q, want yes, after 100 wrong codes", got)
	}
	if got := showLine("recovery codes left"); got != "0" {
		t.Errorf("user show, recovery codes left: got %q, want 0", got)
	}
	if got := showLine("remembered devices"); got != "2" {
		t.Errorf("user show, remembered devices: got %q, want 2", got)
	}

	out := mustCLI(t, in, "", "user", "devices", "alice")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("user devices: got\n%s\nwant a header and 2 devices", out)
	}
	// Newest first: Safari, then Firefox.
	for i, want := range []struct{ id, ip, ua string }{{two[:12], "192.0.2.11", "Safari/17"}, {one[:12], "192.0.2.10", "Firefox/130"}} {
		f := strings.Fields(lines[i+1])
		if len(f) != 6 || f[0] != want.id || f[4] != want.ip || f[5] != want.ua {
			t.Errorf("user devices line %d: got %q, want ID %s, IP %s, user agent %s", i+1, lines[i+1], want.id, want.ip, want.ua)
		}
		for _, ts := range f[1:4] {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Errorf("user devices line %d: %q is not an RFC 3339 time", i+1, ts)
			}
		}
	}

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"prefix too short", []string{"--revoke", "abcdef0"}, "at least 8 characters"},
		{"ambiguous prefix", []string{"--revoke", "abcdef01"}, "2 devices whose ID starts with"},
		{"unknown device", []string{"--revoke", "ffffffffffff"}, `no device "ffffffffffff"`},
		{"both revoke flags", []string{"--revoke", one[:12], "--revoke-all"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(in, "", append([]string{"user", "devices", "alice"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if ds, _ := store.ListDevices(ctx, alice.ID); len(ds) != 2 {
		t.Fatalf("after refused revocations: %d devices, want 2", len(ds))
	}

	if out := mustCLI(t, in, "", "user", "devices", "alice", "--revoke", one[:12]); !strings.Contains(out, "forgot device "+one[:12]) {
		t.Errorf("--revoke: got %q", out)
	}
	if ds, _ := store.ListDevices(ctx, alice.ID); len(ds) != 1 || ds[0].ID != two {
		t.Errorf("after --revoke %s: got %v, want only the other device", one[:12], ds)
	}
	if out := mustCLI(t, in, "", "user", "devices", "alice", "--revoke-all"); !strings.Contains(out, "forgot 1 remembered device(s)") {
		t.Errorf("--revoke-all: got %q", out)
	}
	if out := mustCLI(t, in, "", "user", "devices", "alice"); strings.Count(out, "\n") != 1 {
		t.Errorf("user devices after --revoke-all: got\n%s\nwant only the header", out)
	}

	if out := mustCLI(t, in, "", "user", "unlock", "alice"); !strings.Contains(out, "the lock after 100 wrong codes is lifted") {
		t.Errorf("user unlock: got %q", out)
	}
	if got := showLine("locked"); got != "no" {
		t.Errorf("user show after unlock, locked: got %q, want no", got)
	}
	if out := mustCLI(t, in, "", "user", "unlock", "alice"); !strings.Contains(out, "was not locked") {
		t.Errorf("user unlock of an unlocked user: got %q", out)
	}
	if u, _ := store.GetUserByUsername(ctx, "alice"); u.FailedCodes != 0 {
		t.Errorf("after unlock: %d failed codes, want 0", u.FailedCodes)
	}

	audit := mustCLI(t, in, "", "audit", "--user", "alice")
	if n := strings.Count(audit, "device.revoked"); n != 2 {
		t.Errorf("audit: %d device.revoked events, want 2:\n%s", n, audit)
	}
	if n := strings.Count(audit, "admin.user.unlock"); n != 2 {
		t.Errorf("audit: %d admin.user.unlock events, want 2:\n%s", n, audit)
	}

	for _, sub := range []string{"unlock", "devices", "show"} {
		if _, _, err := runCLI(in, "", "user", sub, "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
			t.Errorf("user %s nobody: got %v, want no user", sub, err)
		}
	}
}

// TestUserPasswordPolicy: `user add --password-stdin` and `user passwd`
// refuse a password that fails login.PasswordPolicy, say why, exit
// non-zero and write nothing.
func TestUserPasswordPolicy(t *testing.T) {
	in := cliInstance(t)
	mustCLI(t, in, "a long enough password\n", "user", "add", "carol", "--email", "Carol@example.com", "--password-stdin")
	store := openTestStore(t, in)
	ctx := context.Background()
	before, err := store.GetUserByUsername(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"add: 11 characters", "eleven char\n", []string{"user", "add", "dave", "--password-stdin"}, "at least 12 characters long, got 11"},
		{"add: 129 characters", strings.Repeat("x", 129) + "\n", []string{"user", "add", "dave", "--password-stdin"}, "at most 128 characters long"},
		{"add: breached", "1qaz2wsx3edc\n", []string{"user", "add", "dave", "--password-stdin"},
			"password refused: it is in a list of common breached passwords; choose another"},
		{"add: the username", "Dave.Longname\n", []string{"user", "add", "dave.longname", "--password-stdin"}, "must not be your username or email"},
		{"add: the email", "dave@example.com\n", []string{"user", "add", "dave", "--email", "DAVE@example.com", "--password-stdin"}, "must not be your username or email"},
		{"add: below a raised minimum", "fifteen chars!!\n", []string{"user", "add", "dave", "--password-stdin", "--min-password-length", "16"}, "at least 16 characters"},
		{"add: minimum below NIST's", "a long enough password\n", []string{"user", "add", "dave", "--password-stdin", "--min-password-length", "6"}, "--min-password-length 6: want 8 to 128"},
		{"passwd: short", "short\n", []string{"user", "passwd", "carol", "--password-stdin"}, "at least 12 characters"},
		{"passwd: breached", "qwerty123456\n", []string{"user", "passwd", "carol", "--password-stdin"}, "common breached passwords"},
		{"passwd: the email", "carol@EXAMPLE.com\n", []string{"user", "passwd", "carol", "--password-stdin"}, "must not be your username or email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCLI(in, tc.stdin, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %v (output %q), want one containing %q", err, out, tc.wantErr)
			}
		})
	}
	users, err := store.ListUsers(ctx)
	if err != nil || len(users) != 1 {
		t.Errorf("users after refused adds: got %d (%v), want only carol", len(users), err)
	}
	after, err := store.GetUserByUsername(ctx, "carol")
	if err != nil || after.PasswordHash != before.PasswordHash {
		t.Errorf("carol's password hash after refused passwds: changed (%v), want unchanged", err)
	}

	// A lowered minimum admits what the default refuses.
	mustCLI(t, in, "ten chars!\n", "user", "passwd", "carol", "--password-stdin", "--min-password-length", "8")
	mustCLI(t, in, "eleven char\n", "user", "add", "dave", "--password-stdin", "--min-password-length", "11")
}
