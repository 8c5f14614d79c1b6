package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, where python3-authlib installs;
// a pyenv or virtualenv python on PATH would not see those packages.
const systemPython = "/usr/bin/python3"

const authlibHint = "install Debian's packages: apt-get install -y python3-authlib python3-requests"

// needAuthlib skips the test when the system Python lacks Authlib and
// requests, except in CI, where a missing dependency must fail loudly.
func needAuthlib(t *testing.T) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import authlib, requests").CombinedOutput()
	if err == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	msg := fmt.Sprintf("%s cannot import authlib and requests (%v: %s); %s", systemPython, err, lines[len(lines)-1], authlibHint)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestAuthlibRelyingParty runs an independent certified relying-party
// library, Python's Authlib, through the whole flow against `twostep
// serve`: discovery, code + PKCE S256 + nonce, the pages filled by their
// autocomplete attributes, ID token validation, userinfo, refresh rotation,
// and a second login with remembered consent (testdata/rp_authlib.py).
func TestAuthlibRelyingParty(t *testing.T) {
	needAuthlib(t)
	in := startServer(t, "", nil)
	const password = "correct horse battery staple"
	addUser(t, in, "alice", password)
	out, err := in.cli(t, "", "client", "add", "--id", "authlib-app", "--redirect-uri", testRedirect,
		"--name", "Authlib App", "--json")
	if err != nil {
		t.Fatalf("client add: %v: %s", err, out)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.ClientSecret == "" {
		t.Fatalf("client add --json printed %q (%v), want client_id and client_secret", out, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, "testdata/rp_authlib.py")
	cmd.Env = append(os.Environ(),
		"ISSUER="+in.issuer,
		"CLIENT_ID="+creds.ClientID,
		"CLIENT_SECRET="+creds.ClientSecret,
		"REDIRECT_URI="+testRedirect,
		"USERNAME=alice",
		"PASSWORD="+password,
		"PYTHONDONTWRITEBYTECODE=1",
	)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rp_authlib.py: %v\n%s\nserver log:\n%s", err, got, in.stderr)
	}
	if !strings.Contains(string(got), "2 logins ok") {
		t.Fatalf("rp_authlib.py exited 0 without its summary line:\n%s", got)
	}
	t.Logf("%s", got)
}
